#!/usr/bin/env bash
# Installs Ray into its own virtual environment, target/ray-venv, where `cbnn ... --executor ray`
# finds it (or point CBNN_RAY_PYTHON at another Python that has Ray). Optional: nothing else in
# cbnn needs it. Safe to run again: it installs only what is missing. About 400 MB.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv=target/ray-venv
python3 -c "import ensurepip, venv" 2>/dev/null || {
  echo "setup-ray: python3-venv is missing (apt-get install python3-venv)" >&2
  exit 2
}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if ! "$venv/bin/python" -I -c "import ray.cluster_utils" 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check "ray[default]==2.60.0"
fi
"$venv/bin/python" -I -c "import ray; print('setup-ray: Ray', ray.__version__, 'in $venv')"
