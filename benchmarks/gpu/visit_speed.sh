#!/usr/bin/env bash
# GPU machine: vlmctl plan -> vlmctl serve --plan (vLLM, dummy weights) -> vlmctl bench, for Qwen2.5-VL 7B, 32B
# and 3B (in that order), image workload at concurrency 1/8/32; on 7B also text-only and video rows.
#   bash visit_speed.sh VISIT_DIR WHEEL_DIR [MODELS]   (after install_vllm.sh, then `. vllm_env.sh`)
# VISIT_DIR holds gpu/ (these scripts) and qwen25.tar.xz (vlmctl models materialize of 3B/7B/32B);
# WHEEL_DIR vlmctl's own wheels and PyAV (bench writes its videos with PyAV). Results: $OUT/speed.tar.gz.
set -u
REPO=$(pwd); V=$(cd "$1" && pwd); W=$(cd "$2" && pwd); MODELS=${3:-"7B 32B 3B"}
G=$V/gpu
export PYTHONPATH=$REPO/src:${PYTHONPATH:-}
R=${SPEED_ROOT:-/tmp}; S=$R/speed; mkdir -p $S $R/models /tmp/wheels
VLMCTL="python3 -m vlmctl.cli.main"
DUMMY="python3 $G/vllm_dummy.py"
D=${BENCH_DURATION:-10}; P=${SPEED_PORT:-8000}
IMG="--mix image@1280x720 --concurrency 1,8,32 --duration $D --warmup 2 --max-tokens 96 --prompt-words 48 --ignore-eos"
TXT="--mix text --concurrency 1,32 --duration $((D - 2)) --warmup 2 --max-tokens 96 --prompt-words 48 --ignore-eos"
VID="--mix video@640x360x8 --concurrency 1,8 --duration $((D - 2)) --warmup 1 --max-tokens 96 --prompt-words 48 --ignore-eos"
GPUS=h100-80gb:1; nvidia-smi -L | grep -q H200 && GPUS=h200:1
PACK() { tar -C $R -czf "$OUT/speed.tar.gz" speed; }
tar -C $R/models -xJf "$V/qwen25.tar.xz"
cp "$W"/*.whl /tmp/wheels/
. "$G/common.sh"
if ! python3 -c "import av" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site_av /tmp/wheels/av-*.whl
  export PYTHONPATH=$PYTHONPATH:/tmp/site_av
fi
python3 -c 'import av, click, rich, yaml, httpx, vlmctl; print("av", av.__version__, "vlmctl ok")' || exit 1
nvidia-smi --query-gpu=name,memory.used,memory.total,driver_version --format=csv,noheader | tee $S/gpu.txt

stop() {  # process group of the serve CLI; then wait until the GPU is free
  kill -TERM -- -"$1" 2>/dev/null; sleep 4; kill -KILL -- -"$1" 2>/dev/null
  for _ in $(seq 1 30); do
    [ "$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)" -lt 1024 ] && break; sleep 1
  done
}

bench() {  # TAG ARGS...
  tag=$1; shift
  log "bench $tag"
  timeout 150 $VLMCTL bench --api-base http://127.0.0.1:$P/v1 "$@" --out $S/bench_$tag.json > $S/bench_$tag.txt 2>&1
  echo "rc=$?" >> $S/bench_$tag.txt
  grep -E "c=|level" $S/bench_$tag.txt | head -8
}

for M in $MODELS; do
  need=150; [ "$M" = 32B ] && need=190
  if [ $((SECONDS + need)) -gt "${SPEED_DEADLINE:-560}" ]; then log "skip $M: ${SECONDS}s used"; continue; fi
  log "plan $M"
  $VLMCTL plan $R/models/$M --gpus $GPUS --json > $S/plan_$M.json 2> $S/plan_$M.err || { log "plan $M failed"; cat $S/plan_$M.err; continue; }
  $VLMCTL plan $R/models/$M --gpus $GPUS > $S/plan_$M.txt 2>&1
  $VLMCTL serve --plan $S/plan_$M.json --dry-run --vllm-bin "$DUMMY" > $S/serve_${M}_dryrun.txt 2>&1
  log "serve $M"
  t0=$SECONDS
  if [ -n "${SPEED_DRY:-}" ]; then  # CPU rehearsal: vlmctl's demo engine instead of vLLM
    setsid python3 -m vlmctl.serve.demo --port $P --no-ui > $S/engine_$M.log 2>&1 &
  else
    setsid $VLMCTL serve --plan $S/plan_$M.json --vllm-bin "$DUMMY" --port $P --log-file $S/engine_$M.log \
      > $S/serve_$M.log 2>&1 &
  fi
  pid=$!
  up=$(( ${SPEED_DEADLINE:-560} - SECONDS - 60 )); [ $up -gt 240 ] && up=240
  if ! wait_up $P $up $pid; then
    log "$M did not come up"; tail -n 30 $S/serve_$M.log; tail -n 40 $S/engine_$M.log; stop $pid; PACK; continue
  fi
  echo "ready_s=$((SECONDS - t0))" > $S/ready_$M.txt
  log "$M ready after $((SECONDS - t0))s"
  nvidia-smi --query-gpu=memory.used --format=csv,noheader >> $S/ready_$M.txt
  grep -E "GPU KV cache size|Maximum concurrency|Available KV cache memory|Model loading took" $S/engine_$M.log | head -5
  bench ${M}_image $IMG
  if [ "$M" = 7B ]; then bench ${M}_text $TXT; bench ${M}_video $VID; fi
  stop $pid
  PACK
done
PACK
log "done"
