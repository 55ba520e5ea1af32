#!/usr/bin/env bash
# Install (if needed) and run the main job on the embedded default: no GPU, no download.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh demo
exec .venv/bin/vlmctl "${@:-serve}"
