#!/usr/bin/env bash
# Trains a binary MLP with Brevitas and exports it to QONNX (scripts/brevitas_mlp.py), after
# installing torch and Brevitas into their own virtual environment, target/brevitas-venv
# (about 5.6 GB with torch's CUDA libraries, which is why the test command never runs it).
# Safe to run again: it installs only what is missing.
# Usage: bash scripts/brevitas.sh DATASET_DIR OUT_DIR [brevitas_mlp.py options]
# e.g.   bash scripts/brevitas.sh ../shared/datasets/mnist runs/brevitas-mnist --planes 7,6 --hidden 256,256 --epochs 10
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ $# -lt 2 ]; then
  echo "usage: bash scripts/brevitas.sh DATASET_DIR OUT_DIR [brevitas_mlp.py options]" >&2
  exit 2
fi
venv=target/brevitas-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if ! "$venv/bin/python" -c "import torch, brevitas, onnxoptimizer, qonnx, onnxruntime" 2>/dev/null; then
  # onnxoptimizer and onnxscript: Brevitas's QONNX export goes through torch.onnx and
  # qonnx's cleanup, which import them.
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "torch==2.15.0" "brevitas==0.13.4" "onnx==1.23.2" "onnxoptimizer==0.4.2" \
    "onnxscript==0.7.2" "qonnx==1.0.0" "onnxruntime==1.32.0" "numpy==2.4.6"
fi
exec "$venv/bin/python" scripts/brevitas_mlp.py "$@"
