# Shared by the speed visits (sourced). For visit_speed.sh (after common.sh, with END, R, S, P, VLMCTL and DUMMY set):
# the time left, nvidia-smi where there is one, stopping a served engine, and planning + serving one model. For the
# held-out visits declared in benchmarks/speed_*.py (visit_speed_next.sh, visit_speed_held.sh, visit_speed_final.sh):
# all of the visit, visit_main below.
smi() { command -v nvidia-smi >/dev/null && nvidia-smi "$@"; }
left() { echo $(( END - $(date +%s) )); }

stop() {  # the serve CLI's process group; then until the GPU is free
  kill -TERM -- -"$1" 2>/dev/null; sleep 4; kill -KILL -- -"$1" 2>/dev/null
  [ -n "${SPEED_DRY:-}" ] && return
  for _ in $(seq 1 30); do
    [ "$(smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)" -lt 1024 ] && return; sleep 1
  done
}

serve_planned() {  # M FOLDER NEED: plan (JSON, table, dry run), serve in its own process group, wait until it answers;
  # sets pid; returns 1 (engine stopped, results packed) when the plan fails or the engine does not come up
  local m=$1 dir=$2 need=$3 t0 up
  log "plan $m"
  $VLMCTL plan $dir --gpus h200:1 --vllm-version 0.26.0 --json -o $S/plan_$m.json > /dev/null 2> $S/plan_$m.err \
    || { log "plan $m failed"; cat $S/plan_$m.err; return 1; }
  $VLMCTL plan $dir --gpus h200:1 --vllm-version 0.26.0 > $S/plan_$m.txt 2>&1
  $VLMCTL serve --plan $S/plan_$m.json --dry-run --vllm-bin "$DUMMY" --port $P > $S/serve_${m}_dryrun.txt 2>&1
  log "serve $m"; t0=$SECONDS
  up=$(( $(left) - need + 150 )); [ $up -gt 240 ] && up=240
  if [ -n "${SPEED_DRY:-}" ]; then
    setsid timeout $((up + 300)) python3 -m vlmctl.serve.demo --port $P --no-ui > $S/engine_$m.log 2>&1 &
  else
    setsid timeout $((up + 300)) $VLMCTL serve --plan $S/plan_$m.json --vllm-bin "$DUMMY" --port $P \
      --log-file $S/engine_$m.log > $S/serve_$m.log 2>&1 &
  fi
  pid=$!
  if ! wait_up $P $up $pid; then
    log "$m did not come up in ${up}s"; tail -n 30 $S/serve_$m.log 2>/dev/null; grep -E "Error|error" $S/engine_$m.log | tail -n 20
    stop $pid; PACK; return 1
  fi
  echo "ready_s=$((SECONDS - t0))" > $S/ready_$m.txt; log "$m ready after $((SECONDS - t0))s"
}

visit_bench() {  # TAG: one `vlmctl bench --plan` with the visit's flags for TAG ($PY --bench-args), cut at END
  local t=$(( $(left) - 4 )); [ $t -gt 150 ] && t=150
  if [ $t -lt 10 ]; then log "skip bench $1: $(left)s left"; echo "bench $1 skipped" >> $S/skipped.txt; return; fi
  log "bench $1 ($(left)s left)"
  timeout $t $VLMCTL bench --api-base http://127.0.0.1:$P/v1 --plan $S/plan_$M.json $DRYMODEL \
    $(python3 $PY --bench-args "$1") --out $S/bench_$1.json > $S/bench_$1.txt 2>&1
  echo "rc=$?" >> $S/bench_$1.txt
  grep -E "c=[0-9]+ |rc=" $S/bench_$1.txt | head -12
}

visit_calibrate() {  # TAG: the fit row of a host visit, the product's own host-factor flow on the bench just measured
  log "calibrate --from-bench bench_$1"
  $VLMCTL calibrate --from-bench $S/bench_$1.json --plan $S/plan_$M.json -o $S/cal_$M.json > $S/cal_$M.txt 2>&1
  echo "rc=$?" >> $S/cal_$M.txt; cat $S/cal_$M.txt | tail -8
}

visit_main() {  # END_EPOCH, with VISIT (name: /tmp/$VISIT, $OUT/$VISIT.tar.gz), PY (the visit's benchmarks/speed_*.py),
  # MODELS (the engines to run, in order) and ENGINES ("MODEL=TARBALL:MEMBER:NEED_S ...": the model folder in
  # .gpu/visit/TARBALL and the seconds an engine needs) set. Per engine: plan, dry run, serve, its benches in the
  # visit's order (`$PY --benches MODEL`), on a host visit `vlmctl calibrate --from-bench` after the fit row's bench
  # (`$PY --fit-bench`), stop, pack. An engine that would not finish by END is skipped; each bench is cut at END.
  # SPEED_DRY=1: CPU rehearsal with vlmctl's demo engine.
  END=${1:?END_EPOCH}
  REPO=$(pwd); G=$REPO/benchmarks/gpu; V=${SPEED_VISIT_DIR:-$REPO/.gpu/visit}; W=${SPEED_WHEELS:-$REPO/.gpu/visitwheels}
  OUT=${OUT:-/tmp/${VISIT}_out}; mkdir -p "$OUT"
  R=${SPEED_ROOT:-/tmp/$VISIT}; S=$R/runs; mkdir -p $S $R/models /tmp/wheels
  if [ -z "${SPEED_DRY:-}" ]; then . "$G/vllm_env.sh" || exit 1; fi
  export PYTHONPATH=$REPO/src:${PYTHONPATH:-} VLMCTL_CALIBRATION_DIR=$R/no-calibration PYTHONUNBUFFERED=1
  cp "$W"/*.whl /tmp/wheels/ 2>/dev/null
  . "$G/common.sh"
  python3 -c 'import click, rich, yaml, httpx, PIL, vlmctl; print("vlmctl ok")' || exit 1
  VLMCTL="python3 -m vlmctl.cli.main"; DUMMY="python3 $G/vllm_dummy.py"; P=${SPEED_PORT:-8000}
  DRYMODEL=""; [ -n "${SPEED_DRY:-}" ] && DRYMODEL="--model vlmctl-demo-qwen2.5-vl-tiny"
  PACK() { tar -C $R -czf "$OUT/$VISIT.tar.gz" runs; }
  local fit_bench engine tarball member need benches b
  fit_bench=$(python3 $PY --fit-bench 2>/dev/null)
  smi --query-gpu=name,memory.used,memory.total,driver_version --format=csv,noheader | tee -a $S/gpu.txt
  log "models $MODELS; $(left)s left"
  for M in $MODELS; do
    engine=""; for e in $ENGINES; do [ "${e%%=*}" = "$M" ] && engine=${e#*=}; done
    [ -z "$engine" ] && { log "unknown model $M"; continue; }
    IFS=: read -r tarball member need <<< "$engine"; need=${SPEED_NEED_S:-$need}
    benches=$(python3 $PY --benches $M) || exit 1
    if grep -q "rc=0" $S/bench_${benches##* }.txt 2>/dev/null; then log "$M already measured in this lease"; continue; fi
    if [ "$(left)" -lt "$need" ]; then log "skip $M: $(left)s left, it needs about ${need}s"; echo "$M skipped" >> $S/skipped.txt; continue; fi
    [ -f $R/models/${member##*/}/config.json ] || tar -C $R/models -xJf "$V/$tarball" $member || exit 1
    serve_planned $M $R/models/${member##*/} $need || continue
    grep -E "GPU KV cache size|Maximum concurrency|Model loading took" $S/engine_$M.log | head -4
    for b in $benches; do
      visit_bench $b
      [ "$b" = "$fit_bench" ] && visit_calibrate $b
    done
    stop $pid; PACK
  done
  PACK
  log "done: $OUT/$VISIT.tar.gz ($(left)s left)"
}
