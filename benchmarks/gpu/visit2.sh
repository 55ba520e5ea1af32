#!/usr/bin/env bash
# GPU machine, visit 2: end to end through vlmctl (plan -> serve (vLLM, dummy 7B) -> API requests -> bench),
# the field report's launch for comparison, the issue-9 reproduction through the API, and the gpu tests.
#   bash benchmarks/gpu/visit2.sh plan|field|repro|tests   (after `. benchmarks/gpu/install_vllm.sh`)
# Models in /tmp/models (materialized), the worst-case video in /tmp/worst.mp4; logs in /tmp/v2; results in $OUT.
set -u
REPO=$(pwd)
export PYTHONPATH=$REPO/src:${PYTHONPATH:-}
V2=/tmp/v2; mkdir -p $V2
VLMCTL="python3 -m vlmctl.cli.main"
DUMMY="python3 $REPO/benchmarks/gpu/vllm_dummy.py"
BENCH_ARGS="--mix image@1280x720 --concurrency 1,8,32 --requests 32 --warmup 2 --max-tokens 64 --prompt-words 48 --ignore-eos"
PACK() { tar -C /tmp -czf $OUT/v2_$1.tar.gz v2; }
GPUS=h100-80gb:1; nvidia-smi -L | grep -q H200 && GPUS=h200:1
. "$REPO/benchmarks/gpu/common.sh"
python3 -c "import pytest_timeout" 2>/dev/null || python3 -m pip install -q --no-index --no-deps --target /tmp/site_pt /tmp/wheels/pytest_timeout*.whl
[ -d /tmp/site_pt ] && export PYTHONPATH=$PYTHONPATH:/tmp/site_pt

stop() { kill -TERM -- -"$1" 2>/dev/null; sleep 5; kill -KILL -- -"$1" 2>/dev/null; sleep 3; nvidia-smi --query-gpu=memory.used --format=csv,noheader; }

phase_plan() {  # PLAN_U=0.76 overrides the plan's gpu_memory_utilization (recorded in the plan file used)
  log "plan"
  $VLMCTL plan /tmp/models/7B --gpus $GPUS --json > $V2/plan7b.json || { log "plan failed"; return 1; }
  $VLMCTL plan /tmp/models/7B --gpus $GPUS > $V2/plan7b.txt 2>&1
  tag=plan; planfile=$V2/plan7b.json
  if [ -n "${PLAN_U:-}" ]; then
    tag=plan_u$PLAN_U; planfile=$V2/plan7b_u$PLAN_U.json
    python3 -c "import json; d=json.load(open('$V2/plan7b.json')); d['plan']['gpu_memory_utilization']=$PLAN_U; json.dump(d, open('$planfile','w'))"
  fi
  $VLMCTL serve --plan $planfile --dry-run --vllm-bin "$DUMMY" > $V2/serve_${tag}_dryrun.txt 2>&1
  log "serve ($tag)"
  setsid $VLMCTL serve --plan $planfile --vllm-bin "$DUMMY" --port 8000 --log-file $V2/serve_${tag}_engine.log \
    > $V2/serve_${tag}_cli.log 2>&1 &
  pid=$!
  if ! wait_up 8000 300 $pid; then log "planned server did not come up"; stop $pid; return 1; fi
  log "ready"
  python3 benchmarks/gpu/api_requests.py --base http://127.0.0.1:8000/v1 --steps image --out $V2/api_${tag}_image.json
  log "bench ($tag)"
  timeout 150 $VLMCTL bench --api-base http://127.0.0.1:8000/v1 $BENCH_ARGS --out $V2/bench_$tag.json > $V2/bench_$tag.txt 2>&1
  log "decode batch 1"
  timeout 60 $VLMCTL bench --api-base http://127.0.0.1:8000/v1 --mix text --concurrency 1 --requests 4 --warmup 1 \
    --max-tokens 512 --prompt-words 16 --ignore-eos --out $V2/decode_$tag.json > $V2/decode_$tag.txt 2>&1
  PACK $tag
  log "worst video + normal mix ($tag)"
  python3 benchmarks/gpu/api_requests.py --base http://127.0.0.1:8000/v1 --steps worst_video,normal_mix \
    --video /tmp/worst.mp4 --out $V2/api_$tag.json
  stop $pid
  PACK $tag
}

phase_plan_auto() {  # the planned configuration; if the worst-case video failed, the planfix variant too
  phase_plan
  python3 -c "import json,sys; sys.exit(json.load(open('$V2/api_plan.json'))['worst_video']['status']!=200)" 2>/dev/null || phase_planfix
}

phase_planfix() {  # the planned configuration with utilization 0.02 lower (CUDA-graph memory outside the budget)
  python3 -c "import json; d=json.load(open('$V2/plan7b.json')); p=d['plan']; p['gpu_memory_utilization']=round(p['gpu_memory_utilization']-0.02,2); json.dump(d, open('$V2/plan7b_fix.json','w'))"
  setsid $VLMCTL serve --plan $V2/plan7b_fix.json --vllm-bin "$DUMMY" --port 8000 --log-file $V2/serve_planfix_engine.log \
    > $V2/serve_planfix_cli.log 2>&1 &
  pid=$!
  if ! wait_up 8000 300 $pid; then log "planfix server did not come up"; stop $pid; return 1; fi
  python3 benchmarks/gpu/api_requests.py --base http://127.0.0.1:8000/v1 --steps worst_video,normal_mix \
    --video /tmp/worst.mp4 --out $V2/api_planfix.json
  stop $pid
}

phase_field() {
  log "serve (field report launch)"
  setsid $DUMMY serve /tmp/models/7B --served-model-name 7B --port 8001 --enforce-eager --gpu-memory-utilization 0.5 \
    --max-num-seqs 2 --max-model-len 4096 --dtype float16 > $V2/serve_field_engine.log 2>&1 &
  pid=$!
  if ! wait_up 8001 240 $pid; then log "field server did not come up"; stop $pid; return 1; fi
  log "bench (field)"
  timeout 200 $VLMCTL bench --api-base http://127.0.0.1:8001/v1 $BENCH_ARGS --out $V2/bench_field.json > $V2/bench_field.txt 2>&1
  stop $pid
  PACK field
}

phase_repro() {
  log "serve (vLLM defaults, V2 runner)"
  setsid $DUMMY serve /tmp/models/7B --served-model-name 7B --port 8002 --enforce-eager --gpu-memory-utilization 0.9 \
    > $V2/serve_default_engine.log 2>&1 &
  pid=$!
  if ! wait_up 8002 240 $pid; then log "default server did not come up"; stop $pid; return 1; fi
  python3 benchmarks/gpu/api_requests.py --base http://127.0.0.1:8002/v1 --steps image,worst_video,image \
    --video /tmp/worst.mp4 --out $V2/api_default.json
  sleep 3
  stop $pid
  PACK repro
}

phase_tests() {
  log "gpu tests"
  python3 -m pytest -q -m gpu tests/gpu -p no:cacheprovider > $V2/pytest_gpu.txt 2>&1; tail -5 $V2/pytest_gpu.txt
}

for phase in "$@"; do "phase_$phase"; done
PACK all
log "done"
for f in $V2/api_*.json; do echo "== $f"; cat $f | head -c 1500; echo; done
for f in $V2/bench_*.txt $V2/decode_*.txt; do echo "== $f"; tail -n 14 $f; done
[ -f $V2/bench_plan.json ] && [ -f $V2/bench_field.json ] && $VLMCTL bench compare $V2/bench_field.json $V2/bench_plan.json 2>&1 | tail -25
