#!/usr/bin/env bash
# One H200, the last held-out speed visit (revision 5; predictions: docs/validation/speed_final/predictions.json,
# recorded before it; benchmarks/speed_final.py): vlmctl plan -> vlmctl serve --plan (vLLM 0.26.0, dummy weights) ->
# vlmctl bench --plan --distinct-media, ONE engine: Qwen2.5-VL-7B (first 960x720 at c=1, the one fit row: `vlmctl
# calibrate --from-bench` fits the host factor on it into runs/cal_7B.json; then 1024x576, 80 / 64 tokens, and
# 1440x1080, 64 / 96, at c=2/12/24; text, 256 / 128, at c=16); the bench flags come from
# `python3 benchmarks/speed_final.py --bench-args TAG`, so the script and the predictions cannot drift.
#   bash benchmarks/gpu/visit_speed_final.sh END_EPOCH
# END_EPOCH: the time (date +%s) by which the call must be done; the engine is skipped if it would not finish by
# then, and each bench is cut at END. Needs vLLM installed in this lease (`. benchmarks/gpu/install_vllm.sh` earlier
# in the same command), .gpu/visit/qwen25.tar.xz (7B folder) and vlmctl's dependency wheels (SPEED_WHEELS). Packs
# /tmp/speedfinal/runs into $OUT/speedfinal.tar.gz after the engine. SPEED_DRY=1: CPU rehearsal with vlmctl's demo
# engine.
set -u
END=${1:?END_EPOCH}; M=7B
REPO=$(pwd); G=$REPO/benchmarks/gpu; V=${SPEED_VISIT_DIR:-$REPO/.gpu/visit}; W=${SPEED_WHEELS:-$REPO/.gpu/visitwheels}
OUT=${OUT:-/tmp/speedfinal_out}; mkdir -p "$OUT"
R=${SPEED_ROOT:-/tmp/speedfinal}; S=$R/runs; mkdir -p $S $R/models /tmp/wheels
if [ -z "${SPEED_DRY:-}" ]; then . "$G/vllm_env.sh" || exit 1; fi
export PYTHONPATH=$REPO/src:${PYTHONPATH:-} VLMCTL_CALIBRATION_DIR=$R/no-calibration PYTHONUNBUFFERED=1
cp "$W"/*.whl /tmp/wheels/ 2>/dev/null
. "$G/common.sh"
. "$G/speed_visit.sh"
python3 -c 'import click, rich, yaml, httpx, PIL, vlmctl; print("vlmctl ok")' || exit 1
[ -f $R/models/7B/config.json ] || tar -C $R/models -xJf "$V/qwen25.tar.xz" 7B || exit 1
VLMCTL="python3 -m vlmctl.cli.main"; DUMMY="python3 $G/vllm_dummy.py"; P=${SPEED_PORT:-8000}
DRYMODEL=""; [ -n "${SPEED_DRY:-}" ] && DRYMODEL="--model vlmctl-demo-qwen2.5-vl-tiny"
PACK() { tar -C $R -czf "$OUT/speedfinal.tar.gz" runs; }
smi --query-gpu=name,memory.used,memory.total,driver_version --format=csv,noheader | tee -a $S/gpu.txt
log "model $M; $(left)s left"

bench() {  # TAG: one `vlmctl bench --plan`, cut at the call's end
  local t=$(( $(left) - 4 )); [ $t -gt 150 ] && t=150
  if [ $t -lt 10 ]; then log "skip bench $1: $(left)s left"; echo "bench $1 skipped" >> $S/skipped.txt; return; fi
  log "bench $1 ($(left)s left)"
  timeout $t $VLMCTL bench --api-base http://127.0.0.1:$P/v1 --plan $S/plan_$M.json $DRYMODEL \
    $(python3 benchmarks/speed_final.py --bench-args "$1") --out $S/bench_$1.json > $S/bench_$1.txt 2>&1
  echo "rc=$?" >> $S/bench_$1.txt
  grep -E "c=[0-9]+ |rc=" $S/bench_$1.txt | head -12
}

calibrate() {  # the fit row: the product's own host-factor flow, on the bench just measured
  log "calibrate --from-bench bench_$1"
  $VLMCTL calibrate --from-bench $S/bench_$1.json --plan $S/plan_$M.json -o $S/cal_$M.json > $S/cal_$M.txt 2>&1
  echo "rc=$?" >> $S/cal_$M.txt; cat $S/cal_$M.txt | tail -8
}

need=${SPEED_NEED_S:-250}
if [ "$(left)" -lt "$need" ]; then
  log "skip $M: $(left)s left, it needs about ${need}s"; echo "$M skipped" >> $S/skipped.txt; PACK; exit 0
fi
if serve_planned $M $R/models/7B $need; then
  grep -E "GPU KV cache size|Maximum concurrency|Model loading took" $S/engine_$M.log | head -4
  for b in 7B_960x720 7B_1024x576 7B_1440x1080 7B_text; do
    bench $b
    [ "$b" = 7B_960x720 ] && calibrate $b
  done
  stop $pid
fi
PACK
log "done: $OUT/speedfinal.tar.gz ($(left)s left)"
