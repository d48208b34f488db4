#!/usr/bin/env bash
# The main job on real data: the quick flow on Fashion-MNIST (Debian's copy, no network
# needed): train the 8-plane 256,256,256 binary network, analyse its bit planes, prune and
# shrink it, generate both accelerators, co-simulate them in Verilator against the reference
# model, synthesize them with Yosys, and write RUN_DIR/report.md. Run it again and every
# finished stage is reused. The full flow is `cbnn flow --dataset fashion-mnist -o DIR`.
# Usage: bash scripts/run.sh [RUN_DIR]   (default runs/quick-fashion-mnist)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
out="${1:-runs/quick-fashion-mnist}"
./target/release/cbnn flow --quick --dataset fashion-mnist -o "$out"
echo "report: $out/report.md"
