#!/usr/bin/env bash
# Distillation's effect on the retraining search: `cbnn prune` of one baseline without a
# teacher and with the baseline as teacher at every (temperature, weight) of a grid, every other
# flag at its default; prints a Markdown table (chosen shape, size reduction, validation and
# test accuracy, test drop, seconds). Long: one search per cell (4-7 minutes each for an MNIST
# perceptron on 2 cores).
#
#   bash scripts/distill_grid.sh BASE.json DATASET OUT_DIR [--data-dir DIR]
#   TEMPERATURES="2 4 8" WEIGHTS="0.1 0.3 0.5" bash scripts/distill_grid.sh ...
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BASE=$1 DATASET=$2 OUT=$3
shift 3
CBNN=${CBNN:-target/release/cbnn}
[ -x "$CBNN" ] || cargo build --release --quiet
mkdir -p "$OUT"
run() { # NAME [FLAGS...]
    local name=$1
    shift
    [ -f "$OUT/$name-report.json" ] && return 0
    echo "search $name ..." >&2
    nice "$CBNN" prune "$BASE" --dataset "$DATASET" "$@" "${EXTRA[@]}" -o "$OUT/$name.json" \
        --report "$OUT/$name-report.json" > "$OUT/$name.log" 2>&1 ||
        { echo "search $name failed: $(tail -n 1 "$OUT/$name.log")" >&2; exit 1; }
}
EXTRA=("$@")
run none
for t in ${TEMPERATURES:-2 4 8}; do
    for w in ${WEIGHTS:-0.1 0.3 0.5}; do
        run "t$t-w$w" --distill "$w" --temperature "$t"
    done
done
python3 - "$OUT" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
print("| teacher | chosen | smaller | validation | test (drop) | seconds |")
print("|---|---|---|---|---|---|")
for f in sorted(out.glob("*-report.json")):
    r = json.loads(f.read_text())
    c, b = r["chosen"], r["baseline"]
    name = f.name[: -len("-report.json")]
    label = "none" if name == "none" else name.replace("t", "T ", 1).replace("-w", ", w ")
    print(f"| {label} | {c['planes']}, {c['hidden']} | {r['size_reduction']:.2f}x | "
          f"{100 * c['val_accuracy']:.2f} % | {100 * c['test_accuracy']:.2f} % "
          f"({100 * (b['test_accuracy'] - c['test_accuracy']):.2f}) | {r['seconds']:.0f} |")
PY
