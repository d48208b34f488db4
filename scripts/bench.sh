#!/usr/bin/env bash
# Reproduces docs/benchmarks.md: `cbnn bench` on real MNIST with the models of
# scripts/reproduce.sh (runs/mnist/base.json, runs/mnist/compact.json) and the full-precision
# counterpart (trained here with `cbnn train --float` when runs/mnist/float.json is missing);
# with `conv` as the third argument, the convnets of scripts/reproduce-conv.sh
# (runs/NAME/conv.json, conv-compact.json) and their float counterpart (conv-float.json).
# Usage: bash scripts/bench.sh [DATASET [NAME [conv]]]   (default ../shared/datasets/mnist mnist)
# Run it on an otherwise idle machine; every number it prints is a median over repeats.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
cbnn=./target/release/cbnn
data="${1:-../shared/datasets/mnist}"
name="${2:-mnist}"
out="runs/$name"
if [ "${3:-}" = "conv" ]; then
  base="$out/conv.json"; compact="$out/conv-compact.json"; float="$out/conv-float.json"
  arch=(--arch conv); tag="conv-"
else
  base="$out/base.json"; compact="$out/compact.json"; float="$out/float.json"
  arch=(); tag=""
fi
if [ ! -f "$base" ] || [ ! -f "$compact" ]; then
  echo "no $base or $compact: run scripts/reproduce.sh (or reproduce-conv.sh) first" >&2
  exit 2
fi
if [ ! -f "$float" ]; then
  $cbnn train --float "${arch[@]}" --dataset "$data" -o "$float" --json "$out/${tag}float-train.json"
fi
$cbnn bench --dataset "$data" --baseline "$base" --compact "$compact" \
  --float "$float" --work "$out/${tag}bench" --json "$out/${tag}bench.json"
