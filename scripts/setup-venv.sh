#!/usr/bin/env bash
# Installs the Python tools some tests drive (cocotb 2.x, from PyPI) into a virtual
# environment, target/venv; safe to run again (it installs only what is missing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv=target/venv
if [ ! -x "$venv/bin/cocotb-config" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "cocotb==2.1.0"
fi
