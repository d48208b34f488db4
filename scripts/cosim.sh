#!/usr/bin/env bash
# Co-simulates a model's accelerator on a whole test set under several foldings, free-running
# and with three stall seeds, and prints one line per run. Used for docs/hardware.md and
# docs/benchmarks.md.
# Usage: bash scripts/cosim.sh MODEL.json DATASET OUT_DIR FOLD [FOLD ...]
#   FOLD is a --fold spec, "default", or "auto:N" (--fold auto --target-cycles N).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cbnn=${CBNN:-./target/release/cbnn}
model="$1"; data="$2"; out="$3"; shift 3
mkdir -p "$out"
i=0
for fold in "$@"; do
  dir="$out/fold$i"
  if [ "$fold" = default ]; then
    $cbnn rtl "$model" -o "$dir" >/dev/null
  elif [ "${fold%%:*}" = auto ]; then
    $cbnn rtl "$model" -o "$dir" --fold auto --target-cycles "${fold#auto:}" >/dev/null
  else
    $cbnn rtl "$model" -o "$dir" --fold "$fold" >/dev/null
  fi
  for seed in free 1 2 3; do
    args=()
    [ "$seed" = free ] || args=(--stall-seed "$seed")
    line=$($cbnn sim "$dir" --dataset "$data" "${args[@]}" --json "$dir/sim-$seed.json" 2>/dev/null | tr '\n' ' ')
    echo "fold [$fold] schedule $seed: $line"
  done
  i=$((i + 1))
done
