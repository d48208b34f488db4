#!/usr/bin/env bash
# The streaming cores' terms of the resource model (src/vocab/cost.rs, docs/hardware.md)
# and their check on whole convolutional designs:
# 1. each core alone (cbnn_swu, cbnn_pool, cbnn_fifo, cbnn_split) synthesized by Yosys
#    (synth_xilinx) over a range of parameters, its LUTs printed beside its shift-register and
#    distributed-RAM LUTs: the rest is the per-channel and per-core logic the coefficients
#    `window`, `pool` and `stream` stand for;
# 2. small binary convnets trained for one epoch on 2000 Fashion-MNIST images (the weights'
#    values barely matter to the LUT count; shapes and folding do), each generated under two
#    automatic foldings and synthesized; the model's error on each with its coefficients as
#    they are (nothing fitted).
# About 15 minutes on 2 cores. Usage: bash scripts/calibrate_conv.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cbnn=./target/release/cbnn
out="${1:-runs/calibrate-conv}"
mkdir -p "$out"

core() { # core MODULE "P=V ..."
  local m=$1 set="" kv
  for kv in $2; do set="$set -set ${kv%%=*} ${kv#*=}"; done
  yosys -q -p "read_verilog rtl/$m.v; chparam $set $m; synth_xilinx -top $m -flatten; tee -q -o $out/core.stat stat" >/dev/null
  awk -v tag="$m $2" '
    / (LUT[1-6]|SRL16E|SRLC32E|RAM32M|RAM64M) +[0-9]+$/ {
      if ($1 ~ /^LUT/) logic += $2
      if ($1 ~ /^SRL/) srl += $2
      if ($1 ~ /^RAM/) ram += 4 * $2
    }
    END { printf "%-40s LUTs %5d: logic %5d, shift registers %4d, distributed RAM %4d\n", tag, logic + srl + ram, logic, srl, ram }' "$out/core.stat"
}
echo "== the cores alone (Yosys synth_xilinx)"
for p in "H=28 W=28 C=1 K=5 PAD=1" "H=28 W=28 C=8 K=5 PAD=1" "H=14 W=14 C=16 K=5 PAD=1" \
    "H=14 W=14 C=64 K=5 PAD=1" "H=10 W=10 C=4 K=3 PAD=0" "H=7 W=7 C=32 K=3 PAD=1"; do
  core cbnn_swu "$p"
done
for p in "H=10 W=10 C=8 P=2" "H=12 W=12 C=16 P=3" "H=28 W=28 C=64 P=2" "H=14 W=14 C=128 P=2"; do
  core cbnn_pool "$p"
done
for p in "W=8 DEPTH=2" "W=64 DEPTH=2" "W=64 DEPTH=16" "W=64 DEPTH=64" "W=8 DEPTH=200"; do
  core cbnn_fifo "$p"
done
for p in "PPB=2 PW=8 N=784" "PPB=4 PW=8 N=784" "PPB=7 PW=3 N=49"; do
  core cbnn_split "$p"
done

echo "== whole convolutional designs"
designs=()
i=0
for spec in "c8k3,p2,d16:2000 6000" "c16k5,p2,c16,p2,d32:3000 12000" "c4v,c8v,p2,d10:2500 5000" \
    "c12k3,p2,c12k3v,p3,d24:2500 8000" "c24k5,p2,d16:4500 2500" "c6k5v,p2,c12k3v,p2,d20:2000 6000"; do
  arch="${spec%%:*}"; targets="${spec#*:}"
  model="$out/m$i.json"
  [ -f "$model" ] || $cbnn train --dataset fashion-mnist --arch "$arch" --limit 2000 --epochs 1 \
    --seed "$((i + 1))" -o "$model" >/dev/null 2>&1
  for t in $targets; do
    d="$out/m$i-t$t"
    if [ ! -f "$d.synth.json" ]; then
      $cbnn rtl "$model" --fold auto --target-cycles "$t" -o "$d" >/dev/null
      $cbnn synth "$d" --target xilinx --json "$d.synth.json" >/dev/null 2>&1
    fi
    designs+=("$d")
  done
  i=$((i + 1))
done
python3 scripts/calibrate_estimate.py --check "${designs[@]}"
