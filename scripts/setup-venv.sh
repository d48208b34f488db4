#!/usr/bin/env bash
# Installs the Python tools some tests drive into a virtual environment, target/venv: cocotb 2.x
# (the cocotb testbench) and qonnx with onnxruntime (executing exported QONNX graphs). Safe to
# run again: it installs only what is missing. About 350 MB.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv=target/venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pip=("$venv/bin/pip" install --quiet --disable-pip-version-check)
[ -x "$venv/bin/cocotb-config" ] || "${pip[@]}" "cocotb==2.1.0"
if ! "$venv/bin/python" -c "import qonnx, onnxruntime" 2>/dev/null; then
  "${pip[@]}" "qonnx==1.0.0" "onnx==1.23.2" "onnxruntime==1.32.0" "numpy==2.4.6"
fi
