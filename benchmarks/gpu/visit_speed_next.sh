#!/usr/bin/env bash
# One H200, the next held-out speed visit (predictions: docs/validation/speed_next/predictions.json, recorded before
# it; benchmarks/speed_next.py): vlmctl plan -> vlmctl serve --plan (vLLM 0.26.0, dummy weights) -> vlmctl bench
# --plan --distinct-media, for Qwen2.5-VL-7B (640x480 images with 200 text / 32 output tokens at c=1/8/32; 1920x1080
# with 48 / 160 at c=1/8) and Qwen3-VL-8B (1280x720, 48 / 96 at c=1/8/32); the bench flags come from
# `python3 benchmarks/speed_next.py --bench-args TAG`, so the script and the predictions cannot drift.
#   bash benchmarks/gpu/visit_speed_next.sh END_EPOCH ["7B Q3-8B"]
# END_EPOCH: the time (date +%s) by which the call must be done; a model that would not finish by then is skipped.
# Needs vLLM installed in this lease (`. benchmarks/gpu/install_vllm.sh` earlier in the same command or lease),
# .gpu/visit/qwen25.tar.xz (7B folder) and .gpu/visit/fam.tar.xz (8B folder: benchmarks/gpu/family_folders.py),
# .gpu/visitwheels (vlmctl's dependency wheels). Every call adds to /tmp/speednext and packs it into
# $OUT/speednext.tar.gz. SPEED_DRY=1: CPU rehearsal with vlmctl's demo engine.
set -u
END=${1:?END_EPOCH}; MODELS=${2:-"7B Q3-8B"}
REPO=$(pwd); G=$REPO/benchmarks/gpu; V=${SPEED_VISIT_DIR:-$REPO/.gpu/visit}; W=${SPEED_WHEELS:-$REPO/.gpu/visitwheels}
OUT=${OUT:-/tmp/speednext_out}; mkdir -p "$OUT"
R=${SPEED_ROOT:-/tmp/speednext}; S=$R/runs; mkdir -p $S $R/models /tmp/wheels
if [ -z "${SPEED_DRY:-}" ]; then . "$G/vllm_env.sh" || exit 1; fi
export PYTHONPATH=$REPO/src:${PYTHONPATH:-} VLMCTL_CALIBRATION_DIR=$R/no-calibration PYTHONUNBUFFERED=1
cp "$W"/*.whl /tmp/wheels/ 2>/dev/null
. "$G/common.sh"
. "$G/speed_visit.sh"
python3 -c 'import click, rich, yaml, httpx, PIL, vlmctl; print("vlmctl ok")' || exit 1
[ -f $R/models/7B/config.json ] || tar -C $R/models -xJf "$V/qwen25.tar.xz" 7B || exit 1
[ -f $R/models/8B/config.json ] || tar -C $R/models -xJf "$V/fam.tar.xz" ./8B || exit 1
VLMCTL="python3 -m vlmctl.cli.main"; DUMMY="python3 $G/vllm_dummy.py"; P=${SPEED_PORT:-8000}
DRYMODEL=""; [ -n "${SPEED_DRY:-}" ] && DRYMODEL="--model vlmctl-demo-qwen2.5-vl-tiny"
PACK() { tar -C $R -czf "$OUT/speednext.tar.gz" runs; }
smi --query-gpu=name,memory.used,memory.total,driver_version --format=csv,noheader | tee -a $S/gpu.txt
log "models $MODELS; $(left)s left"

bench() {  # TAG
  log "bench $1 ($(left)s left)"
  timeout 150 $VLMCTL bench --api-base http://127.0.0.1:$P/v1 --plan $S/plan_$M.json $DRYMODEL \
    $(python3 benchmarks/speed_next.py --bench-args "$1") --out $S/bench_$1.json > $S/bench_$1.txt 2>&1
  echo "rc=$?" >> $S/bench_$1.txt
  grep -E "c=[0-9]+ |rc=" $S/bench_$1.txt | head -12
}

for M in $MODELS; do
  case $M in 7B) dir=$R/models/7B; benches="7B_640x480 7B_1920x1080"; need=${SPEED_NEED_S:-230};;
             Q3-8B) dir=$R/models/8B; benches="Q3-8B_1280x720"; need=${SPEED_NEED_S:-200};;
             *) log "unknown model $M"; continue;; esac
  if grep -q "rc=0" $S/bench_${benches##* }.txt 2>/dev/null; then log "$M already measured in this lease"; continue; fi
  if [ "$(left)" -lt "$need" ]; then log "skip $M: $(left)s left, it needs about ${need}s"; echo "$M skipped" >> $S/skipped.txt; continue; fi
  serve_planned $M $dir $need || continue
  grep -E "GPU KV cache size|Maximum concurrency|Model loading took" $S/engine_$M.log | head -4
  for b in $benches; do bench $b; done
  stop $pid; PACK
done
PACK
log "done: $OUT/speednext.tar.gz ($(left)s left)"
