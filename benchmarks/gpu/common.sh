# Shared by the GPU visit scripts (sourced): vlmctl's own wheels if the machine lacks them, log lines, wait_up.
# vlmctl's own needs (click, rich, pyyaml, httpx) travel as wheels in /tmp/wheels (from .gpu/p3/wheels)
if ! python3 -c "import click, rich, yaml, httpx" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site_extra /tmp/wheels/*.whl
  export PYTHONPATH=$PYTHONPATH:/tmp/site_extra
fi
log() { echo "[$(date +%T) ${SECONDS}s] $*"; }
wait_up() {  # port timeout_s pid: until /v1/models answers; fails when the process is gone or time is up
  for _ in $(seq 1 "$2"); do
    python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$1/v1/models', timeout=2)" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 1
  done
  return 1
}
