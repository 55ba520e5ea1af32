#!/usr/bin/env bash
# Create .venv with everything vlmctl's CPU side needs (idempotent; ~1-3 min the first time).
# torch and torchvision must be a matched pair; 2.14.1/0.29.1 run on CPU here.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/pip install -q torch==2.14.1 torchvision==0.29.1
.venv/bin/pip install -q -e '.[all,test]'
# Browser tests (tests/ui, marker browser) drive Debian's chromium; never a downloaded browser.
if [ "$(id -u)" = 0 ] && [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
    || echo "warning: could not install chromium; browser tests will be skipped" >&2
fi
