# Shared by visit_speed.sh and visit_speed_next.sh (sourced after common.sh, with END, R, S, P, VLMCTL and DUMMY set):
# the time left, nvidia-smi where there is one, stopping a served engine, and planning + serving one model.
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
