#!/usr/bin/env bash
# Prove the light core: a fresh venv with `pip install .` (no extras) loads and applies an adapter, and commands that
# need an extra say which one. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
rm -rf .venv-core
"$python" -m venv .venv-core
.venv-core/bin/python -m pip install --disable-pip-version-check -q . pytest
cd tests && exec ../.venv-core/bin/python -m pytest -q -p no:cacheprovider test_core_install.py
