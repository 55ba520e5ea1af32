#!/usr/bin/env bash
# GPU machine: the Qwen3.5 engine starts (batch Q of benchmarks/gpu/families_configs.json: four Qwen3.5-27B and one
# Qwen3.5-35B-A3B, dummy weights, one process each via calibrate.py and probe_engine.py with PROBE_KV_DUMP=1), in one
# call of at most 480 s including the install.
#
#   run(carry=[".gpu/extra", ".gpu/visit"], command="bash benchmarks/gpu/visit_q35.sh 2>&1 | tee $OUT/console.log",
#       timeout_s=480)
#
# Before it: the bundle parts in /tmp/stage (or vLLM installed by an earlier call on the same machine). .gpu/extra
# holds the wheels the bundle lacks for Qwen3.5 (compressed-tensors 0.17.0 and loguru; install_vllm.sh installs
# them); .gpu/visit/fam.tar.xz the weight-less folders (family_folders.py). The import check stops the visit before
# any engine starts when vllm.model_executor.models.qwen3_5 does not import.
# Writes under $OUT: results_Q.json, logs_Q.tar.gz (full DEBUG logs), kvcfg_Q.txt (the KV/state layout lines).
# Then, here: python benchmarks/gpu/families_results.py results_Q.json LOGS --out docs/validation/families
#
# CPU rehearsal (no vLLM: every probe fails at its import, which exercises the wiring and the deadline):
#   Q35_DRY=1 Q35_PY=.venv/bin/python OUT=/tmp/q35 bash benchmarks/gpu/visit_q35.sh   (needs .gpu/visit/fam.tar.xz)
set -u
REPO=$(pwd)
OUT=${OUT:-/tmp/q35_out}; mkdir -p "$OUT"
BUDGET=${Q35_BUDGET_S:-455}
log() { echo "[$(date +%T) ${SECONDS}s] $*"; }
PY=python3
if [ -z "${Q35_DRY:-}" ]; then
  log "install (bundle from /tmp/stage, extra wheels from .gpu/extra) and import check"
  VLLM_CHECK_IMPORT=vllm.model_executor.models.qwen3_5 . "$REPO/benchmarks/gpu/install_vllm.sh" > /tmp/install_q35.log 2>&1
  cat /tmp/install_q35.log
  if ! grep -q "import check: vllm.model_executor.models.qwen3_5 OK" /tmp/install_q35.log; then
    echo "STOP: vLLM cannot import its Qwen3.5 model (line above); no engine started. Fix the bundle, then rerun."
    exit 2
  fi
else
  PY=${Q35_PY:-python3}
  log "dry run: no install, no GPU"
fi
mkdir -p /tmp/fam && tar -C /tmp/fam -xJf "$REPO/.gpu/visit/fam.tar.xz" && ls /tmp/fam
for m in 27B 35B-A3B; do [ -f /tmp/fam/$m/config.json ] || { echo "STOP: /tmp/fam/$m missing from fam.tar.xz"; exit 2; }; done
nvidia-smi --query-gpu=name,memory.used,memory.total,driver_version --format=csv,noheader 2>/dev/null
LEFT=$((BUDGET - SECONDS))
log "Qwen3.5 probes: ${LEFT}s left"
$PY "$REPO/benchmarks/gpu/calibrate.py" --batch Q --models /tmp/fam --out "$OUT" \
  --configs "$REPO/benchmarks/gpu/families_configs.json" --deadline-s "$LEFT"
grep -h "PROBE KVCFG\|PROBE START FAILED\|GPU KV cache size\|Maximum concurrency\|Setting attention block size\|mamba\|Mamba\|padding layers" \
  /tmp/calib/logs_Q/*.log 2>/dev/null | cut -c1-1500 > "$OUT/kvcfg_Q.txt"
cut -c1-400 "$OUT/kvcfg_Q.txt" | head -40
log "done"
