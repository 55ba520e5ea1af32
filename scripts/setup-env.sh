#!/usr/bin/env bash
# Create .venv with what the demo needs, or (with "test") what the test suite needs too. Idempotent.
#   bash scripts/setup-env.sh        # demo: torch + torchvision, vlmctl[demo,ui]
#   bash scripts/setup-env.sh test   # tests: vlmctl[all,test] and Debian's chromium for the browser tests
# torch and torchvision must be a matched pair; 2.14.1/0.29.1 run on CPU here. TORCH_INDEX_URL picks another
# wheel index for them (e.g. PyTorch's CPU-only builds, see README).
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-demo}
case "$MODE" in demo|test) ;; *) echo "usage: $0 [demo|test]" >&2; exit 2;; esac
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/pip install -q torch==2.14.1 torchvision==0.29.1 ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
if [ "$MODE" = demo ]; then
  .venv/bin/pip install -q -e '.[demo,ui]'
  exit 0
fi
.venv/bin/pip install -q -e '.[all,test]'
# Browser tests (tests/ui, marker browser) drive Debian's chromium; never a downloaded browser.
if [ "$(id -u)" = 0 ] && [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
    || echo "warning: could not install chromium; browser tests will be skipped" >&2
fi
