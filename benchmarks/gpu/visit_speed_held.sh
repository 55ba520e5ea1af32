#!/usr/bin/env bash
# One H200, the held-out speed visit after revision 4 (predictions: docs/validation/speed_held/predictions.json,
# recorded before it; benchmarks/speed_held.py): vlmctl plan -> vlmctl serve --plan (vLLM 0.26.0, dummy weights) ->
# vlmctl bench --plan --distinct-media, for Qwen2.5-VL-3B (first 1024x768 at c=1, the one fit row: `vlmctl calibrate
# --from-bench` fits the host factor on it into runs/cal_3B.json; then 800x600, 120 / 48 tokens, at c=4/16/32) and
# Qwen3-VL-8B (640x360, 300 / 24, at c=1/8; 1600x1200, 64 / 160, at c=4/16); the bench flags come from
# `python3 benchmarks/speed_held.py --bench-args TAG`, so the script and the predictions cannot drift.
#   bash benchmarks/gpu/visit_speed_held.sh END_EPOCH ["3B Q3-8B"]
# END_EPOCH: the time (date +%s) by which the call must be done; a model that would not finish by then is skipped.
# Needs vLLM installed in this lease (`. benchmarks/gpu/install_vllm.sh` earlier in the same command or lease),
# .gpu/visit/qwen25.tar.xz (3B folder) and .gpu/visit/fam.tar.xz (8B folder: benchmarks/gpu/family_folders.py),
# vlmctl's dependency wheels (SPEED_WHEELS). Every call adds to /tmp/speedheld and packs it into
# $OUT/speedheld.tar.gz. SPEED_DRY=1: CPU rehearsal with vlmctl's demo engine.
set -u
END=${1:?END_EPOCH}; MODELS=${2:-"3B Q3-8B"}
REPO=$(pwd); G=$REPO/benchmarks/gpu; V=${SPEED_VISIT_DIR:-$REPO/.gpu/visit}; W=${SPEED_WHEELS:-$REPO/.gpu/visitwheels}
OUT=${OUT:-/tmp/speedheld_out}; mkdir -p "$OUT"
R=${SPEED_ROOT:-/tmp/speedheld}; S=$R/runs; mkdir -p $S $R/models /tmp/wheels
if [ -z "${SPEED_DRY:-}" ]; then . "$G/vllm_env.sh" || exit 1; fi
export PYTHONPATH=$REPO/src:${PYTHONPATH:-} VLMCTL_CALIBRATION_DIR=$R/no-calibration PYTHONUNBUFFERED=1
cp "$W"/*.whl /tmp/wheels/ 2>/dev/null
. "$G/common.sh"
. "$G/speed_visit.sh"
python3 -c 'import click, rich, yaml, httpx, PIL, vlmctl; print("vlmctl ok")' || exit 1
[ -f $R/models/3B/config.json ] || tar -C $R/models -xJf "$V/qwen25.tar.xz" 3B || exit 1
[ -f $R/models/8B/config.json ] || tar -C $R/models -xJf "$V/fam.tar.xz" ./8B || exit 1
VLMCTL="python3 -m vlmctl.cli.main"; DUMMY="python3 $G/vllm_dummy.py"; P=${SPEED_PORT:-8000}
DRYMODEL=""; [ -n "${SPEED_DRY:-}" ] && DRYMODEL="--model vlmctl-demo-qwen2.5-vl-tiny"
PACK() { tar -C $R -czf "$OUT/speedheld.tar.gz" runs; }
smi --query-gpu=name,memory.used,memory.total,driver_version --format=csv,noheader | tee -a $S/gpu.txt
log "models $MODELS; $(left)s left"

bench() {  # TAG: one `vlmctl bench --plan`, cut at the call's end
  local t=$(( $(left) - 4 )); [ $t -gt 150 ] && t=150
  if [ $t -lt 10 ]; then log "skip bench $1: $(left)s left"; echo "bench $1 skipped" >> $S/skipped.txt; return; fi
  log "bench $1 ($(left)s left)"
  timeout $t $VLMCTL bench --api-base http://127.0.0.1:$P/v1 --plan $S/plan_$M.json $DRYMODEL \
    $(python3 benchmarks/speed_held.py --bench-args "$1") --out $S/bench_$1.json > $S/bench_$1.txt 2>&1
  echo "rc=$?" >> $S/bench_$1.txt
  grep -E "c=[0-9]+ |rc=" $S/bench_$1.txt | head -12
}

calibrate() {  # the fit row: the product's own host-factor flow, on the bench just measured
  log "calibrate --from-bench bench_$1"
  $VLMCTL calibrate --from-bench $S/bench_$1.json --plan $S/plan_$M.json -o $S/cal_$M.json > $S/cal_$M.txt 2>&1
  echo "rc=$?" >> $S/cal_$M.txt; cat $S/cal_$M.txt | tail -8
}

for M in $MODELS; do
  case $M in 3B) dir=$R/models/3B; benches="3B_1024x768 3B_800x600"; need=${SPEED_NEED_S:-185};;
             Q3-8B) dir=$R/models/8B; benches="Q3-8B_640x360 Q3-8B_1600x1200"; need=${SPEED_NEED_S:-195};;
             *) log "unknown model $M"; continue;; esac
  if grep -q "rc=0" $S/bench_${benches##* }.txt 2>/dev/null; then log "$M already measured in this lease"; continue; fi
  if [ "$(left)" -lt "$need" ]; then log "skip $M: $(left)s left, it needs about ${need}s"; echo "$M skipped" >> $S/skipped.txt; continue; fi
  serve_planned $M $dir $need || continue
  grep -E "GPU KV cache size|Maximum concurrency|Model loading took" $S/engine_$M.log | head -4
  for b in $benches; do
    bench $b
    [ "$b" = 3B_1024x768 ] && calibrate $b
  done
  stop $pid; PACK
done
PACK
log "done: $OUT/speedheld.tar.gz ($(left)s left)"
