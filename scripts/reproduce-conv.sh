#!/usr/bin/env bash
# Reproduces the convolutional section of docs/results.md: the `--arch conv` preset on MNIST
# and Fashion-MNIST (about 25 minutes each on a quiet 2-core machine) and the pruning search
# of each and, with --presets, the comparison of candidate architectures on the first 20000
# MNIST and Fashion-MNIST training images that chose the preset (about an hour).
# Usage: bash scripts/reproduce-conv.sh [MNIST_DIR] [--presets]
#        (MNIST_DIR defaults to ../shared/datasets/mnist)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
cbnn=./target/release/cbnn
mnist="${1:-../shared/datasets/mnist}"
if [ "${2:-}" = "--presets" ]; then
  mkdir -p runs/presets
  for arch in c32,p2,c64,p2,d256 c64,p2,c128,p2,d256 c32k5,p2,c64,p2,d256 c32k5,p2,c64k5,p2,d256; do
    $cbnn train --dataset "$mnist" --arch "$arch" --limit 20000 --epochs 6 \
      -o "runs/presets/$arch.json" --json "runs/presets/$arch-train.json"
  done
  for arch in c32k5,p2,c64k5,p2,d256 c48k5,p2,c96k5,p2,d256 c32k5,c32k5,p2,c64k5,p2,d256 \
      c64k5,p2,c128k5,p2,d256 c32k5,p2,c64k5,p2,d64 c32k5,p2,c64k5,p2,d32; do
    $cbnn train --dataset fashion-mnist --arch "$arch" --limit 20000 --epochs 6 \
      -o "runs/presets/fashion-$arch.json" --json "runs/presets/fashion-$arch-train.json"
  done
fi
# The MNIST search of docs/results.md was measured with candidates trained from scratch
# (--from-scratch); the Fashion-MNIST one with the default, warm starts.
for pair in "mnist:$mnist:--from-scratch" "fashion-mnist:fashion-mnist:"; do
  name="${pair%%:*}"; rest="${pair#*:}"; data="${rest%%:*}"; how="${rest#*:}"
  out="runs/$name"; mkdir -p "$out"
  $cbnn train --dataset "$data" --arch conv -o "$out/conv.json" --json "$out/conv-train.json"
  $cbnn prune "$out/conv.json" --dataset "$data" $how -o "$out/conv-compact.json" \
    --report "$out/conv-prune.json"
done
# The MNIST search with every flag at its default (warm starts), the second table of
# docs/results.md's "Pruning the convnet".
$cbnn prune runs/mnist/conv.json --dataset "$mnist" -o runs/mnist/conv-compact-warm.json \
  --report runs/mnist/conv-prune-warm.json
