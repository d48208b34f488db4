#!/usr/bin/env bash
# Sets everything up and runs the whole test suite (unit, CLI, real-data subsets).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
bash scripts/setup-venv.sh
cargo test --release
