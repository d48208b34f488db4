#!/usr/bin/env bash
# Installs what cbnn needs from Debian when it is missing, and builds the release binary.
# Sourced by run.sh and test.sh; safe to run again (it only installs what is absent).
set -euo pipefail

need=()
[ -d /usr/share/datasets/fashion-mnist ] || need+=(dataset-fashion-mnist)
command -v verilator >/dev/null || need+=(verilator)
command -v iverilog >/dev/null || need+=(iverilog)
command -v yosys >/dev/null || need+=(yosys)
command -v nextpnr-ice40 >/dev/null || need+=(nextpnr-ice40)
command -v g++ >/dev/null || need+=(g++ make)
python3 -c "import ensurepip, venv" 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${need[*]}" >&2; exit 2; }
    sudo=sudo
  fi
  echo "setup: installing ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --quiet
