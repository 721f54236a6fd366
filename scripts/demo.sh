#!/usr/bin/env bash
# Set up and run qadapter's whole job end to end, offline, on Python's own documentation.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh all
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/qadapter demo --progress "$@"
