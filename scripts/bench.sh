#!/usr/bin/env bash
# Reproduces docs/benchmarks.md: `cbnn bench` on real MNIST with the models of
# scripts/reproduce.sh (runs/mnist/base.json, runs/mnist/compact.json) and the full-precision
# counterpart (trained here with `cbnn train --float` when runs/mnist/float.json is missing).
# Usage: bash scripts/bench.sh [DATASET [NAME]]   (default ../shared/datasets/mnist mnist)
# Run it on an otherwise idle machine; every number it prints is a median over repeats.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
cbnn=./target/release/cbnn
data="${1:-../shared/datasets/mnist}"
name="${2:-mnist}"
out="runs/$name"
if [ ! -f "$out/base.json" ] || [ ! -f "$out/compact.json" ]; then
  echo "no $out/base.json or $out/compact.json: run scripts/reproduce.sh first" >&2
  exit 2
fi
if [ ! -f "$out/float.json" ]; then
  $cbnn train --float --dataset "$data" -o "$out/float.json" --json "$out/float-train.json"
fi
$cbnn bench --dataset "$data" --baseline "$out/base.json" --compact "$out/compact.json" \
  --float "$out/float.json" --work "$out/bench" --json "$out/bench.json"
