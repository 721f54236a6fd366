#!/usr/bin/env bash
# Create .venv (if needed) and install qadapter with the given extras. Safe to re-run.
# Usage: scripts/setup.sh [EXTRAS]   e.g. scripts/setup.sh dev,serve
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  if ! "$python" -m venv .venv 2>/dev/null; then
    # Debian ships venv separately; install it when we can.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      rm -rf .venv && "$python" -m venv .venv
    else
      echo "error: '$python -m venv' failed; install your distribution's python3-venv package and re-run" >&2
      exit 1
    fi
  fi
fi
pip=(.venv/bin/python -m pip install --disable-pip-version-check -q)
"${pip[@]}" --upgrade pip
# The CPU build of PyTorch first: a bare 'torch' requirement can pull a multi-GB CUDA build.
.venv/bin/python -c "import torch" 2>/dev/null || "${pip[@]}" "torch==2.13.0"
if [ -n "$extras" ]; then
  "${pip[@]}" -e ".[${extras}]"
else
  "${pip[@]}" -e .
fi
