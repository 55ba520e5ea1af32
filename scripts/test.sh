#!/usr/bin/env bash
# Install from scratch (if needed) and run the whole CPU test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh test
exec .venv/bin/python -m pytest "$@"
