#!/usr/bin/env bash
# Multi-GPU layouts on one host (nvidia-h200-x4 or -x2): for each model and layout, `vlmctl plan` (layout forced
# by flags, vLLM 0.26.0) -> `vlmctl serve --plan` (dummy weights) -> `vlmctl bench` at concurrency 1/8/32/64 with one
# distinct 1280x720 image per request (--distinct-media) -> per-rank memory from the engine log.
#   bash benchmarks/gpu/visit_multigpu.sh DEADLINE_S MODELS LAYOUTS
#   e.g. bash benchmarks/gpu/visit_multigpu.sh 570 7B DP4,DP2xTP2      (MODELS: 7B, Q3-8B, comma-separated)
# LAYOUTS: DP4 DP2xTP2 TP4 TP2xPP2 (4 GPUs), DP2 TP2 PP2 (2 GPUs: GPUs 0,1 of the machine). A layout is skipped
# when it would not finish by DEADLINE_S seconds after the start (one layout needs MG_NEED_S, default 200 s).
# Before the first call of a lease: the bundle parts in /tmp/stage and `. benchmarks/gpu/install_vllm.sh` (see
# docs/validation.md, "Multi-GPU layouts"); carry .gpu/slim (vlmctl's wheels). Every call adds to the run folder
# /tmp/mg and packs it all into $OUT/multigpu.tar.gz (plans, dry runs, engine logs, bench JSONs, memory JSONs).
# MG_DRY=1: CPU rehearsal (vlmctl's demo engine instead of vLLM, no nvidia-smi; everything else as on the GPU).
set -u
DEADLINE=${1:-570}; MODELS=${2:-7B}; LAYOUTS=${3:-DP4,DP2xTP2,TP4,TP2xPP2}
REPO=$(pwd); G=$REPO/benchmarks/gpu
OUT=${OUT:-/tmp/mg_out}; mkdir -p "$OUT"
R=${MG_ROOT:-/tmp/mg}; mkdir -p $R/models
# NVLink multicast off in every process started from here (the host's GPUs are shared).
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export RAY_DEDUP_LOGS=0 PYTHONUNBUFFERED=1 VLMCTL_CALIBRATION_DIR=$R/no-calibration
# vLLM at INFO (as the single-GPU speed runs), its worker's memory profile at DEBUG (the per-rank torch peak and
# non-torch lines), through a plain logging dictConfig; MG_LOG=debug puts all of vLLM at DEBUG instead.
if [ "${MG_LOG:-}" = debug ]; then
  export VLLM_LOGGING_LEVEL=DEBUG
else
  cat > $R/vllm_logging.json <<'JSON'
{"version": 1, "disable_existing_loggers": false,
 "formatters": {"plain": {"format": "%(levelname)s %(asctime)s [%(filename)s:%(lineno)d] %(message)s",
                          "datefmt": "%m-%d %H:%M:%S"}},
 "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stdout",
                      "level": "DEBUG"}},
 "loggers": {"vllm": {"handlers": ["out"], "level": "INFO", "propagate": false},
             "vllm.v1.worker.gpu_worker": {"level": "DEBUG"}}}
JSON
  export VLLM_LOGGING_CONFIG_PATH=$R/vllm_logging.json
fi
if [ -z "${MG_DRY:-}" ]; then
  . "$G/vllm_env.sh" || exit 1
fi
export PYTHONPATH=$REPO/src:${PYTHONPATH:-}
mkdir -p /tmp/wheels; [ -d .gpu/slim ] && cp .gpu/slim/*.whl /tmp/wheels/
. "$G/common.sh"
VLMCTL="python3 -m vlmctl.cli.main"
HELP="python3 $G/multigpu_visit.py"
DUMMY="python3 $G/vllm_dummy.py"
D=${MG_DURATION:-10}; P=${MG_PORT:-8000}; NEED=${MG_NEED_S:-200}
WORK="--workload image@1280x720 --prompt-tokens 48 --output-tokens 96 --vllm-version 0.26.0"
BENCH="--mix image@1280x720 --concurrency 1,8,32,64 --duration $D --warmup 2 --max-tokens 96 --prompt-tokens 48 --ignore-eos --distinct-media"
DRYMODEL=""; [ -n "${MG_DRY:-}" ] && DRYMODEL="--model vlmctl-demo-qwen2.5-vl-tiny"  # the demo's one name
PACK() { tar -C "$(dirname $R)" --exclude="$(basename $R)/models" -czf "$OUT/multigpu.tar.gz" "$(basename $R)"; }
smi() { command -v nvidia-smi >/dev/null && nvidia-smi "$@"; }
gpus_used_mib() { smi --query-gpu=memory.used --format=csv,noheader,nounits | sort -n | tail -1; }

smi --query-gpu=index,name,memory.used,memory.total,driver_version --format=csv,noheader | tee -a $R/gpu.txt
smi topo -m > $R/topo.txt 2>&1
NGPU=$(smi -L 2>/dev/null | grep -c GPU); [ -n "${MG_DRY:-}" ] && NGPU=4
log "GPUs: $NGPU; models $MODELS; layouts $LAYOUTS; deadline ${DEADLINE}s"

stop() {  # the serve CLI's process group, then until every GPU is free
  kill -TERM -- -"$1" 2>/dev/null; sleep 5; kill -KILL -- -"$1" 2>/dev/null
  [ -n "${MG_DRY:-}" ] && return
  for _ in $(seq 1 40); do [ "$(gpus_used_mib)" -lt 1024 ] && return; sleep 1; done
  log "GPU memory still in use after stop: $(gpus_used_mib) MiB"
}

flags() {  # layout -> "GPUS DP TP PP"
  case $1 in
    DP4) echo "4 4 1 1";; DP2xTP2) echo "4 2 2 1";; TP4) echo "4 1 4 1";; TP2xPP2) echo "4 1 2 2";;
    DP2) echo "2 2 1 1";; TP2) echo "2 1 2 1";; PP2) echo "2 1 1 2";; *) return 1;;
  esac
}

for M in ${MODELS//,/ }; do
  case $M in 7B) ID=Qwen/Qwen2.5-VL-7B-Instruct;; Q3-8B) ID=Qwen/Qwen3-VL-8B-Instruct;;
    *) log "unknown model $M (7B or Q3-8B)"; continue;; esac
  MD=$R/models/$M
  [ -f $MD/config.json ] || $VLMCTL models materialize $ID $MD > /dev/null || { log "materialize $M failed"; continue; }
  for N in 4 2; do  # the planner's own pick at each concurrency (no layout flags)
    [ -f $R/pick_${M}_${N}.txt ] && continue
    for C in 1 8 32 64; do
      $VLMCTL plan $MD --gpus h200:$N $WORK --concurrency $C --json -o $R/pick_${M}_${N}_c$C.json > /dev/null 2>&1
      echo "$C $($HELP layout $R/pick_${M}_${N}_c$C.json)" >> $R/pick_${M}_${N}.txt
    done
    log "planner's pick for $M on $N GPUs (concurrency layout): $(tr '\n' ' ' < $R/pick_${M}_${N}.txt)"
  done
  for L in ${LAYOUTS//,/ }; do
    spec=$(flags $L) || { log "unknown layout $L (DP4 DP2xTP2 TP4 TP2xPP2 DP2 TP2 PP2)"; continue; }
    read -r N DP TP PP <<< "$spec"
    T=${M}_$L; S=$R/$T; mkdir -p $S
    if [ "$N" -gt "$NGPU" ]; then log "skip $T: needs $N GPUs, the machine has $NGPU"; continue; fi
    if [ $((SECONDS + NEED)) -gt "$DEADLINE" ]; then log "skip $T: ${SECONDS}s used of ${DEADLINE}s"; continue; fi
    VIS=$(seq -s, 0 $((N - 1)))
    # The planner's own plan when it picks this layout at some concurrency, else the forced one.
    SRC=forced
    for C in 64 32 8 1; do
      if grep -qx "$C $L" $R/pick_${M}_${N}.txt 2>/dev/null; then cp $R/pick_${M}_${N}_c$C.json $S/plan.json; SRC=pick_c$C; break; fi
    done
    $VLMCTL plan $MD --gpus h200:$N -dp $DP -tp $TP -pp $PP $WORK --concurrency 64 --json -o $S/plan_forced.json \
      > /dev/null 2> $S/plan.err || { log "plan $T failed: $(tail -2 $S/plan.err)"; continue; }
    $VLMCTL plan $MD --gpus h200:$N -dp $DP -tp $TP -pp $PP $WORK --concurrency 64 > $S/plan.txt 2>&1
    [ $SRC = forced ] && cp $S/plan_forced.json $S/plan.json
    echo "served_from=$SRC" > $S/info.txt
    $VLMCTL serve --plan $S/plan.json --dry-run --vllm-bin "$DUMMY" --port $P > $S/serve_dryrun.txt 2>&1
    log "serve $T ($SRC) on GPUs $VIS"
    t0=$SECONDS
    up=$((DEADLINE - SECONDS - 100)); [ $up -gt 330 ] && up=330
    if [ -n "${MG_DRY:-}" ]; then
      setsid timeout $((up + 200)) python3 -m vlmctl.serve.demo --port $P --no-ui > $S/engine.log 2>&1 &
    else
      CUDA_VISIBLE_DEVICES=$VIS setsid timeout $((up + 200)) $VLMCTL serve --plan $S/plan.json --vllm-bin "$DUMMY" \
        --port $P --log-file $S/engine.log > $S/serve.log 2>&1 &
    fi
    pid=$!
    if ! wait_up $P $up $pid; then
      log "$T did not come up in ${up}s"; tail -n 20 $S/serve.log 2>/dev/null; grep -E "Error|error" $S/engine.log | tail -n 20
      echo "ready=no" >> $S/info.txt; stop $pid; PACK; continue
    fi
    echo "ready_s=$((SECONDS - t0))" >> $S/info.txt
    log "$T ready after $((SECONDS - t0))s"
    smi --query-gpu=index,memory.used --format=csv > $S/smi_gpus.csv
    smi --query-compute-apps=pid,used_memory --format=csv > $S/smi.csv
    log "bench $T"
    timeout $((8 * D + 120)) $VLMCTL bench --api-base http://127.0.0.1:$P/v1 --plan $S/plan.json $BENCH $DRYMODEL \
      --out $S/bench.json > $S/bench.txt 2>&1
    echo "bench_rc=$?" >> $S/info.txt
    grep -E "^ *(1|8|32|64) |c=" $S/bench.txt | head -8
    python3 -c "import json,sys; m=json.load(open(sys.argv[1]))['meta']; print(m['media_reuse'], m['media_generation'])" \
      $S/bench.json 2>/dev/null
    stop $pid
    $HELP memory $S/engine.log $S/smi.csv $S/memory.json | head -12
    PACK
  done
done
PACK
log "done: $OUT/multigpu.tar.gz"
