#!/usr/bin/env bash
# Builds the convolutional designs the streaming cores' terms of the resource model are fitted
# on (src/synth/estimate.rs, docs/hardware.md) and fits them: small binary convnets trained for
# one epoch on 2000 Fashion-MNIST images (the weights' values barely matter to the LUT count;
# the shapes and the folding do), each generated under two foldings and synthesized with Yosys
# (xilinx). The dense terms keep their coefficients; the streaming ones are fitted.
# About 15 minutes on 2 cores. Usage: bash scripts/calibrate_conv.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cbnn=./target/release/cbnn
out="${1:-runs/calibrate-conv}"
mkdir -p "$out"
designs=()
i=0
for spec in "c8k3,p2,d16:2000 6000" "c16k5,p2,c16,p2,d32:3000 12000" "c4v,c8v,p2,d10:2500 5000" \
    "c12k3,p2,c12k3v,p3,d24:2500 8000" "c24k5,p2,d16:4500 2500" "c6k5v,p2,c12k3v,p2,d20:2000 6000"; do
  arch="${spec%%:*}"; targets="${spec#*:}"
  model="$out/m$i.json"
  [ -f "$model" ] || $cbnn train --dataset fashion-mnist --arch "$arch" --limit 2000 --epochs 1 \
    --seed "$((i + 1))" -o "$model" >/dev/null
  for t in $targets; do
    d="$out/m$i-t$t"
    if [ ! -f "$d.synth.json" ]; then
      $cbnn rtl "$model" --fold auto --target-cycles "$t" -o "$d" >/dev/null
      $cbnn synth "$d" --target xilinx --json "$d.synth.json" >/dev/null
    fi
    designs+=("$d")
  done
  i=$((i + 1))
done
python3 scripts/calibrate_estimate.py --fit shift_reg,lutram,window,pool,stream "${designs[@]}"
