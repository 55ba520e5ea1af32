#!/usr/bin/env bash
# GPU machine: Qwen3-VL and Qwen3.5 engine starts (dummy weights) for the families fit, one process per
# configuration (benchmarks/gpu/families_configs.json, via calibrate.py and probe_engine.py with PROBE_KV_DUMP=1).
#   bash visit_families.sh VISIT_DIR DEADLINE_S     (after install_vllm.sh, then `. vllm_env.sh`)
# VISIT_DIR holds gpu/ (these scripts) and fam.tar.xz (family_folders.py output). Results in $OUT:
# results_F.json, logs_F.tar.gz (full DEBUG logs), the console log is the caller's tee.
set -u
V=$(cd "$1" && pwd); DEADLINE=${2:-480}
G=$V/gpu
log() { echo "[$(date +%T) ${SECONDS}s] $*"; }
mkdir -p /tmp/fam && tar -C /tmp/fam -xJf "$V/fam.tar.xz" && ls /tmp/fam
nvidia-smi --query-gpu=name,memory.used,memory.total,driver_version --format=csv,noheader
log "families: deadline ${DEADLINE}s"
python3 "$G/calibrate.py" --batch F --models /tmp/fam --out "$OUT" --configs "$G/families_configs.json" \
  --deadline-s "$DEADLINE"
log "done"
