#!/usr/bin/env bash
# Training speed of the conv preset (`cbnn train --arch conv`) against Larq/TensorFlow (CPU) on
# the same network, one after the other on this machine: REPEATS rounds of one Larq epoch and
# one cbnn epoch of 60000 MNIST images, each round's ratio (the two ran back to back, so the
# ratio is what the noise of a shared machine disturbs least), then the medians.
#
#   bash scripts/conv_speed.sh [MNIST_DIR] [REPEATS]
#
# MNIST_DIR defaults to ../shared/datasets/mnist beside the repository; REPEATS to 3. Larq
# runs from the virtual environment LARQ_VENV (default /work/larq-venv; its setup is in the
# header of scripts/larq_conv_speed.py). cbnn is built in release mode first.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
mnist="${1:-$here/../shared/datasets/mnist}"
repeats="${2:-3}"
venv="${LARQ_VENV:-/work/larq-venv}"
if [ ! -x "$venv/bin/python" ]; then
    echo "conv_speed.sh: no Larq environment at $venv (see scripts/larq_conv_speed.py)" >&2
    exit 2
fi
cargo build --release --quiet --manifest-path "$here/Cargo.toml"
cbnn="$here/target/release/cbnn"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
larq=()
ours=()
ratios=()
for r in $(seq 1 "$repeats"); do
    l=$("$venv/bin/python" "$here/scripts/larq_conv_speed.py" --mnist "$mnist" 2>/dev/null |
        tail -1 | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["images_per_s"]))')
    c=$("$cbnn" train --dataset "$mnist" --arch conv --epochs 1 --validation 100 \
        -o "$tmp/m.json" --json "$tmp/r.json" > /dev/null 2>&1 &&
        python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["train_images_per_second"]))' "$tmp/r.json")
    ratio=$(python3 -c "print(f'{$c/$l:.2f}')")
    echo "round $r: larq $l images/s, cbnn $c images/s, cbnn/larq $ratio"
    larq+=("$l")
    ours+=("$c")
    ratios+=("$ratio")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ml=$(median "${larq[@]}")
mc=$(median "${ours[@]}")
echo "median: larq $ml images/s, cbnn $mc images/s, cbnn/larq per round $(median "${ratios[@]}")"
