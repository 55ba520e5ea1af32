#!/usr/bin/env bash
# One H200: vlmctl plan -> vlmctl serve --plan (vLLM 0.26.0, dummy weights) -> vlmctl bench --plan, Qwen2.5-VL 7B,
# 3B and 32B in that order, every image or video its own (--distinct-media: no prefix-cache or encoder-cache hits):
# image@1280x720 at concurrency 1/8/32 on every model; 7B also text at 1/32 and video@640x360x8 at 1/8.
#   bash benchmarks/gpu/visit_speed.sh END_EPOCH "MODELS" [MODELS_TARBALL] [WHEEL_DIR]
#   e.g. bash benchmarks/gpu/visit_speed.sh $(( $(date +%s) + 520 )) "7B 3B"
# A model whose image bench already finished in /tmp/speedfresh (an earlier call of the lease) is not run again.
# END_EPOCH: the time (date +%s) by which the call must be done; a model that would not finish by then is skipped
# and logged. MODELS_TARBALL (default .gpu/visit/qwen25.tar.xz): `vlmctl models materialize` of 3B/7B/32B;
# WHEEL_DIR (default .gpu/visitwheels): vlmctl's dependency wheels and PyAV (the bench encodes its videos with PyAV).
# Before the first call: the bundle parts in /tmp/stage and `. benchmarks/gpu/install_vllm.sh` in the same command.
# Every call adds to the run folder /tmp/speedfresh and packs all of it into $OUT/speedfresh.tar.gz.
# SPEED_DRY=1: CPU rehearsal (vlmctl's demo engine instead of vLLM, no nvidia-smi; everything else as on the GPU).
set -u
END=${1:?END_EPOCH}; MODELS=${2:-"7B 3B 32B"}
REPO=$(pwd); G=$REPO/benchmarks/gpu
TARBALL=${3:-$REPO/.gpu/visit/qwen25.tar.xz}; W=${4:-$REPO/.gpu/visitwheels}
OUT=${OUT:-/tmp/speedfresh_out}; mkdir -p "$OUT"
R=${SPEED_ROOT:-/tmp/speedfresh}; S=$R/runs; mkdir -p $S $R/models /tmp/wheels
if [ -z "${SPEED_DRY:-}" ]; then . "$G/vllm_env.sh" || exit 1; fi
export PYTHONPATH=$REPO/src:${PYTHONPATH:-} VLMCTL_CALIBRATION_DIR=$R/no-calibration PYTHONUNBUFFERED=1
cp "$W"/*.whl /tmp/wheels/
. "$G/common.sh"
. "$G/speed_visit.sh"
if ! python3 -c "import av" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site_av /tmp/wheels/av-*.whl
  export PYTHONPATH=$PYTHONPATH:/tmp/site_av
fi
python3 -c 'import av, click, rich, yaml, httpx, PIL, vlmctl; print("av", av.__version__, "vlmctl ok")' || exit 1
[ -f $R/models/7B/config.json ] || tar -C $R/models -xJf "$TARBALL" || exit 1
VLMCTL="python3 -m vlmctl.cli.main"
DUMMY="python3 $G/vllm_dummy.py"
D=${SPEED_DURATION:-8}; P=${SPEED_PORT:-8000}
COMMON="--duration $D --max-tokens 96 --prompt-tokens 48 --ignore-eos"
IMG="--mix image@1280x720 --concurrency 1,8,32 --warmup 2 --distinct-media $COMMON"
TXT="--mix text --concurrency 1,32 --warmup 2 $COMMON"
VID="--mix video@640x360x8 --concurrency 1,8 --warmup 1 --distinct-media $COMMON"
DRYMODEL=""; [ -n "${SPEED_DRY:-}" ] && DRYMODEL="--model vlmctl-demo-qwen2.5-vl-tiny"  # the demo's one name
PACK() { tar -C $R -czf "$OUT/speedfresh.tar.gz" runs; }
smi --query-gpu=name,memory.used,memory.total,driver_version --format=csv,noheader | tee -a $S/gpu.txt
python3 -c 'import vllm, torch, transformers; print("vllm", vllm.__version__, "torch", torch.__version__, "transformers", transformers.__version__)' >> $S/gpu.txt 2>/dev/null
log "models $MODELS; $(left)s left"

bench() {  # TAG ARGS...
  tag=$1; shift
  log "bench $tag ($(left)s left)"
  timeout 150 $VLMCTL bench --api-base http://127.0.0.1:$P/v1 --plan $S/plan_$M.json $DRYMODEL "$@" \
    --out $S/bench_$tag.json > $S/bench_$tag.txt 2>&1
  echo "rc=$?" >> $S/bench_$tag.txt
  grep -E "c=[0-9]+ |rc=" $S/bench_$tag.txt | head -12
  python3 -c "import json,sys; m=json.load(open(sys.argv[1]))['meta']; print(m.get('media_reuse'), m.get('media_generation'))" \
    $S/bench_$tag.json 2>/dev/null
}

for M in $MODELS; do
  case $M in 3B|7B) need=${SPEED_NEED_S:-170};; 32B) need=${SPEED_NEED_S:-200};; *) log "unknown model $M"; continue;; esac
  [ "$M" = 7B ] && need=$((need + 60))  # text and video levels
  if grep -q "rc=0" $S/bench_${M}_image.txt 2>/dev/null; then log "$M already measured in this lease"; continue; fi
  if [ "$(left)" -lt "$need" ]; then log "skip $M: $(left)s left, it needs about ${need}s"; echo "$M skipped" >> $S/skipped.txt; continue; fi
  serve_planned $M $R/models/$M $need || continue
  smi --query-gpu=memory.used --format=csv,noheader >> $S/ready_$M.txt
  grep -E "GPU KV cache size|Maximum concurrency|Model loading took" $S/engine_$M.log | head -4
  bench ${M}_image $IMG
  if [ "$M" = 7B ]; then bench ${M}_text $TXT; bench ${M}_video $VID; fi
  stop $pid
  PACK
done
PACK
log "done: $OUT/speedfresh.tar.gz ($(left)s left)"
