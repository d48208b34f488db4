#!/usr/bin/env bash
# Builds, synthesizes (Yosys, Xilinx 7-series) and evaluates models at one cycles-per-image
# target, then prints the hardware table of docs/results.md.
# Usage: bash scripts/hardware.sh OUT_DIR CYCLES LABEL=MODEL.json=DATASET[=FOLD] [...]
#   Without FOLD the design is folded with --fold auto --target-cycles CYCLES; with it, FOLD
#   is passed to --fold (to rebuild a design the resource model chose before).
#   e.g. bash scripts/hardware.sh runs/hw 256 \
#          "MNIST baseline=runs/mnist/base.json=../shared/datasets/mnist" \
#          "MNIST compact=runs/mnist/compact.json=../shared/datasets/mnist"
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cbnn=${CBNN:-./target/release/cbnn}
out="$1"; cycles="$2"; shift 2
mkdir -p "$out"
args=()
for spec in "$@"; do
  IFS='=' read -r label model data fold <<< "$spec"
  dir="$out/$(echo "$label" | tr ' A-Z' '-a-z')-$cycles"
  if [ -n "${fold:-}" ]; then
    $cbnn rtl "$model" -o "$dir" --fold "$fold" > "$dir.rtl.txt"
  else
    $cbnn rtl "$model" -o "$dir" --fold auto --target-cycles "$cycles" > "$dir.rtl.txt"
  fi
  $cbnn synth "$dir" --target xilinx --json "$dir/synth.json" > "$dir.synth.txt"
  $cbnn eval "$model" --dataset "$data" --json "$dir/eval.json" > /dev/null
  args+=("$label=$dir")
done
python3 scripts/hardware_table.py "${args[@]}"
