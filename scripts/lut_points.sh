#!/usr/bin/env bash
# Builds and synthesizes logic-mapped models and prints the accuracy/LUT table of
# docs/results.md: per model, the one-image-a-clock design (Yosys xilinx: LUTs, flip-flops;
# Yosys ice40: LUT4 cells) and, when its LUT4 cells fit an iCE40-HX8K, the design behind a
# 32-bit deserialized port and registered class scores (--pipe 1) placed and routed by
# nextpnr-ice40 (fmax); every design co-simulated
# on the whole test set, free-running and stalled (a mismatch stops the script). Peak memory
# and time of each Yosys run and of the Verilator build with the first simulation come from
# /usr/bin/time.
# Usage: [ICE40=0] bash scripts/lut_points.sh OUT_DIR LABEL=MODEL.json=DATASET [...]
#   ICE40=0 skips the iCE40 runs (for designs larger than one that did not fit).
#   e.g. bash scripts/lut_points.sh runs/lut-points \
#          "MNIST l1000f6=runs/mnist/lut.json=../shared/datasets/mnist"
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cbnn=${CBNN:-./target/release/cbnn}
out="$1"; shift
mkdir -p "$out"
timed() { /usr/bin/time -f '%e s %M KB' -o "$1" "${@:2}"; }
args=()
for spec in "$@"; do
  IFS='=' read -r label model data <<< "$spec"
  dir="$out/$(echo "$label" | tr ' A-Z' '-a-z')"
  $cbnn rtl "$model" -o "$dir" > "$dir.rtl.txt"
  timed "$dir.xilinx.time" $cbnn synth "$dir" --target xilinx --json "$dir.xilinx.json" > /dev/null
  rm -f "$dir.ice40.json" "$dir.ice40.time" "$dir-narrow.ice40.json" "$dir-narrow.sim-stall.json"
  if [ "${ICE40:-1}" = 1 ]; then
    timed "$dir.ice40.time" $cbnn synth "$dir" --target ice40 --json "$dir.ice40.json" > /dev/null
  fi
  $cbnn eval "$model" --dataset "$data" --json "$dir.eval.json" > /dev/null
  # Every test image, free-running and stalled; the simulator cache lives in OUT_DIR, so the
  # first run builds it and its time and memory are the Verilator build's.
  cache="$(pwd)/$out/sim-cache"
  rm -rf "$cache"
  XDG_CACHE_HOME="$cache" timed "$dir.sim.time" \
    $cbnn sim "$dir" --dataset "$data" --json "$dir.sim-free.json" > /dev/null
  XDG_CACHE_HOME="$cache" \
    $cbnn sim "$dir" --dataset "$data" --stall-seed 1 --json "$dir.sim-stall.json" > /dev/null
  if [ -f "$dir.ice40.json" ] && python3 -c "import json,sys; sys.exit(0 if json.load(open('$dir.ice40.json'))['luts'] <= 7680 else 1)"; then
    $cbnn rtl "$model" -o "$dir-narrow" --bits-per-beat 32 --pipe 1 > "$dir-narrow.rtl.txt"
    timed "$dir-narrow.ice40.time" $cbnn synth "$dir-narrow" --target ice40 --json "$dir-narrow.ice40.json" > /dev/null
    $cbnn sim "$dir-narrow" --dataset "$data" --stall-seed 2 --json "$dir-narrow.sim-stall.json" > /dev/null
  fi
  args+=("$label=$dir")
done
python3 scripts/lut_table.py "${args[@]}"
