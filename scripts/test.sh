#!/usr/bin/env bash
# Set up the test environment and run the whole test suite (unit and integration tests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh all,dev,lancedb,qdrant,llamaindex,langchain,ray,ann
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/mypy src/qadapter
exec .venv/bin/python -m pytest "$@"
