#!/usr/bin/env bash
# Checks that `cbnn train`'s defaults fit small datasets of small images: on each dataset
# directory given, trains with the defaults and with every setting of a small grid
# (augmentation 0/1 x learning rate 0.003/0.01/0.03), and prints the test accuracy of each and
# how far the defaults are from the grid's best (a Markdown table).
#
#   bash scripts/defaults_grid.sh DIR...     (see scripts/small_datasets.py to make them)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CBNN=${CBNN:-target/release/cbnn}
[ -x "$CBNN" ] || cargo build --release --quiet
W=$(mktemp -d /tmp/cbnn-grid.XXXXXX)
trap 'rm -rf "$W"' EXIT
acc() { # test accuracy of one training run
    "$CBNN" train --dataset "$1" -o "$W/m.json" "${@:2}" 2>/dev/null | awk '/^test/ {print $2}' | tr -d '%'
}
echo "| dataset | defaults | $(for a in 0 1; do for lr in 0.003 0.01 0.03; do printf 'aug %s lr %s | ' $a $lr; done; done)best | defaults - best |"
echo "|---|---|$(for i in 1 2 3 4 5 6; do printf -- '---|'; done)---|---|"
for d in "$@"; do
    def=$(acc "$d")
    row="| $(basename "$d") | $def |"
    best=0
    for a in 0 1; do
        for lr in 0.003 0.01 0.03; do
            v=$(acc "$d" --augment $a --lr $lr)
            row="$row $v |"
            best=$(python3 -c "print(max($best, $v))")
        done
    done
    echo "$row $best | $(python3 -c "print(f'{$def - $best:+.2f}')") |"
done
