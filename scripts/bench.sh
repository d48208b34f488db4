#!/usr/bin/env bash
# Speed of the pieces docs/benchmarks.md quotes, on this machine: training throughput of the
# 8-plane 256,256,256 MLP at batch 100, slicing, and reference-model evaluation of the test set.
# Usage: bash scripts/bench.sh [DATASET]   (default ../shared/datasets/mnist)
# Run it on an otherwise idle machine; it prints medians.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
cbnn=./target/release/cbnn
data="${1:-../shared/datasets/mnist}"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

$cbnn train --dataset "$data" --epochs 5 -o "$out/m.json" --json "$out/train.json" >/dev/null 2>"$out/train.log"
for i in 1 2 3 4 5; do
  $cbnn eval "$out/m.json" --dataset "$data" --json "$out/eval$i.json" >/dev/null
done
python3 - "$out" <<'PY'
import json, statistics, sys
d = sys.argv[1]
t = json.load(open(f"{d}/train.json"))
per_epoch = [e["images"] / e["seconds"] for e in t["history"]]
print(f"training, batch 100, 8 planes 256,256,256: median {statistics.median(per_epoch):.0f} images/s "
      f"over {len(per_epoch)} epochs (min {min(per_epoch):.0f}, max {max(per_epoch):.0f})")
print(f"slicing train+validation+test (70000 images, 8 planes): {t['slice_seconds']:.3f} s")
ev = [json.load(open(f"{d}/eval{i}.json"))["seconds"] for i in range(1, 6)]
print(f"reference model, 10000 test images (slicing included): median {statistics.median(ev):.3f} s "
      f"(min {min(ev):.3f}, max {max(ev):.3f})")
PY
