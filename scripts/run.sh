#!/usr/bin/env bash
# The main job on real data: train the 8-plane 256,256,256 binary network on Fashion-MNIST,
# export its integer model, evaluate it with the reference model, generate its accelerator and
# co-simulate the accelerator on the test set in Verilator against the reference model.
# Usage: bash scripts/run.sh [RUN_DIR]   (default runs/fashion-mnist)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
out="${1:-runs/fashion-mnist}"
mkdir -p "$out"
./target/release/cbnn data info --dataset fashion-mnist
./target/release/cbnn train --dataset fashion-mnist -o "$out/model.json" --json "$out/train.json"
./target/release/cbnn eval "$out/model.json" --dataset fashion-mnist \
  --predictions "$out/predictions.csv" --json "$out/eval.json"
./target/release/cbnn rtl "$out/model.json" -o "$out/rtl"
./target/release/cbnn sim "$out/rtl" --dataset fashion-mnist --stall-seed 1 --json "$out/sim.json"
echo "results in $out/"
