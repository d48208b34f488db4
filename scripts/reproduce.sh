#!/usr/bin/env bash
# Reproduces docs/results.md: for each dataset, the 8-plane 256,256,256 baseline, its
# sensitivity analysis and plot, and the pruning search. About 5 minutes for MNIST and 10 for
# Fashion-MNIST on a 2-core machine. The compact models of the perceptron sections (and of the
# hardware and benchmark sections built on them) were chosen by the plain budget, without the
# noise margin that is the default since: `--noise-margin 0` reproduces them, and
# `runs/NAME/compact-margin.json` is what the default margin chooses (docs/results.md).
# Usage: bash scripts/reproduce.sh [MNIST_DIR]   (default ../shared/datasets/mnist)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
cbnn=./target/release/cbnn
mnist="${1:-../shared/datasets/mnist}"
for pair in "mnist:$mnist" "fashion-mnist:fashion-mnist"; do
  name="${pair%%:*}"; data="${pair#*:}"
  out="runs/$name"; mkdir -p "$out"
  $cbnn train --dataset "$data" -o "$out/base.json" --json "$out/train.json"
  $cbnn sensitivity "$out/base.json" --dataset "$data" --json "$out/sensitivity.json" \
    --plot "docs/img/$name-sensitivity.svg"
  $cbnn prune "$out/base.json" --dataset "$data" --max-drop 1.0 --noise-margin 0 \
    -o "$out/compact.json" --report "$out/prune.json"
  $cbnn prune "$out/base.json" --dataset "$data" --max-drop 1.0 \
    -o "$out/compact-margin.json" --report "$out/prune-margin.json"
  $cbnn eval "$out/compact.json" --dataset "$data" --json "$out/compact-eval.json"
  $cbnn train --float --dataset "$data" -o "$out/float.json" --json "$out/float-train.json"
done
