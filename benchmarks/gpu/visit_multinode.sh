#!/usr/bin/env bash
# GPU machine, several Ray nodes on ONE GPU (issue 8 when no multi-GPU machine is lent).
#   bash benchmarks/gpu/visit_multinode.sh pp2;  bash benchmarks/gpu/visit_multinode.sh up4 tp2 tp1pp4 tp2pp2 tp4 down4
# (after `. benchmarks/gpu/install_vllm.sh` and `. benchmarks/gpu/install_ray.sh .gpu/ray`)
#
# Each "node" is a Ray node with its own loopback address (127.0.0.2, .3, …), its own temp dir and
# CUDA_VISIBLE_DEVICES=0: all of them share the one GPU. NCCL refuses two ranks on one GPU of one host
# ("Duplicate GPU detected"); NCCL_HOSTID, set per node before `ray start`, makes each node a host of its
# own to NCCL, so ranks talk over its socket transport on lo. What this exercises for real: cluster
# up/join/status/verify, the plan, vlmctl serve's argv and env, vLLM's Ray executor across Ray nodes,
# TP and PP over NCCL, the API and bench. What it cannot show: multi-GPU memory per GPU (every process
# sees the others' memory in cudaMemGetInfo, so vLLM's non-torch and KV figures include the other
# ranks) and NVLink speed. Weights and torch activation peaks per rank are per process and stay exact.
# NVLink multicast stays off in every process (NCCL_NVLS_ENABLE=0 …).
set -u
REPO=$(pwd)
export PYTHONPATH=$REPO/src:${PYTHONPATH:-}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 VLLM_ALLREDUCE_USE_SYMM_MEM=0
export RAY_DEDUP_LOGS=0  # Ray folds lines that differ only in numbers ("Model loading took 4.48 GiB" of each stage)
export VLLM_LOGGING_LEVEL=DEBUG NO_COLOR=1 COLUMNS=160 VLMCTL_STATE_ROOT=/tmp/mn/state
MN=/tmp/mn; mkdir -p $MN
VLMCTL="python3 -m vlmctl.cli.main"
DUMMY="python3 $REPO/benchmarks/gpu/vllm_dummy.py"
BENCH_ARGS="--mix image@1280x720 --concurrency 1,8,32 --requests 32 --warmup 2 --max-tokens 64 --prompt-words 48 --ignore-eos"
GPU=h100-80gb; nvidia-smi -L | grep -q H200 && GPU=h200
PACK() { tar -C /tmp -czf $OUT/mn_$1.tar.gz mn; }
. "$REPO/benchmarks/gpu/common.sh"

cluster_file() {  # N -> /tmp/mn/cN.yaml: N nodes 127.0.0.2.., each the one GPU
  f=$MN/c$1.yaml
  { echo "name: one$1"; echo "model_path: /tmp/models/7B"; echo "nodes:"
    for i in $(seq 1 "$1"); do
      echo "  - {name: n$i, address: 127.0.0.$((i + 1)), gpu: $GPU, gpu_ids: [0]}"
    done; } > $f
  echo $f
}

cluster_up() {  # N: up + join + status + verify, NCCL_HOSTID per node
  c=$(cluster_file "$1")
  log "cluster up ($1 nodes)"
  NCCL_HOSTID=vlmctl-n1 $VLMCTL cluster up --cluster $c --node n1 --no-dashboard > $MN/c$1_up.txt 2>&1 || { cat $MN/c$1_up.txt; return 1; }
  for i in $(seq 2 "$1"); do
    NCCL_HOSTID=vlmctl-n$i $VLMCTL cluster join 127.0.0.2 --cluster $c --node n$i > $MN/c$1_join$i.txt 2>&1 || { cat $MN/c$1_join$i.txt; return 1; }
  done
  $VLMCTL cluster status --cluster $c --node n1 > $MN/c$1_status.txt 2>&1; cat $MN/c$1_status.txt
  [ "${2:-}" = verify ] || return 0
  $VLMCTL cluster verify --cluster $c --node n1 > $MN/c$1_verify.txt 2>&1; echo "verify rc=$?" >> $MN/c$1_verify.txt
  $VLMCTL cluster verify --cluster $c --node n1 --json > $MN/c$1_verify.json 2>/dev/null
  tail -n 25 $MN/c$1_verify.txt
}

cluster_down() { $VLMCTL cluster down --cluster $MN/c$1.yaml --node n1 > $MN/c$1_down.txt 2>&1; sleep 2; pgrep -fc raylet || true; }

stop() {  # the driver's process group; then wait until its Ray workers have let go of the GPU
  kill -TERM -- -"$1" 2>/dev/null; sleep 6; kill -KILL -- -"$1" 2>/dev/null
  for _ in $(seq 1 30); do
    [ "$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)" -lt 1024 ] && break; sleep 1
  done
  nvidia-smi --query-gpu=memory.used --format=csv,noheader
}

phase_pp2() {  # the user's loop on two nodes: plan -> serve (Ray executor, PP 2) -> image -> bench 1/8/32
  cluster_up 2 verify || return 1
  log "plan"
  $VLMCTL plan /tmp/models/7B --cluster $MN/c2.yaml --gpu-memory-utilization 0.42 > $MN/plan_pp2.txt 2>&1
  $VLMCTL plan /tmp/models/7B --cluster $MN/c2.yaml --gpu-memory-utilization 0.42 --json > $MN/plan_pp2.json
  head -n 40 $MN/plan_pp2.txt
  $VLMCTL serve --plan $MN/plan_pp2.json --cluster $MN/c2.yaml --dry-run --vllm-bin "$DUMMY" > $MN/serve_pp2_dryrun.txt 2>&1
  log "serve"
  NCCL_HOSTID=vlmctl-n1 setsid $VLMCTL serve --plan $MN/plan_pp2.json --cluster $MN/c2.yaml --vllm-bin "$DUMMY" --port 8000 \
    --log-file $MN/serve_pp2_engine.log > $MN/serve_pp2_cli.log 2>&1 &
  pid=$!
  if wait_up 8000 360 $pid; then
    log "ready"; nvidia-smi --query-compute-apps=pid,used_memory --format=csv > $MN/pp2_smi.csv
    python3 benchmarks/gpu/api_requests.py --base http://127.0.0.1:8000/v1 --steps image --out $MN/api_pp2.json
    cat $MN/api_pp2.json; log "bench"
    timeout 240 $VLMCTL bench --api-base http://127.0.0.1:8000/v1 $BENCH_ARGS --out $MN/bench_pp2.json > $MN/bench_pp2.txt 2>&1
    tail -n 14 $MN/bench_pp2.txt
  else
    log "serve did not come up"; tail -n 40 $MN/serve_pp2_cli.log; tail -n 60 $MN/serve_pp2_engine.log
  fi
  stop $pid; cluster_down 2; PACK pp2
}

direct() {  # TAG TP PP EXTRA...: vLLM over the 4-node cluster with the driver env vlmctl serve would use
  tag=$1 tp=$2 pp=$3; shift 3
  $VLMCTL plan /tmp/models/7B --cluster $MN/c4.yaml --json -pp 4 -tp 1 --gpu-memory-utilization 0.2 --enforce-eager \
    --max-model-len 8192 > $MN/${tag}_plan.json 2> $MN/${tag}_plan.err
  $VLMCTL serve --plan $MN/${tag}_plan.json --cluster $MN/c4.yaml --dry-run --json --vllm-bin "$DUMMY" > $MN/${tag}_dry.json
  python3 - "$MN/${tag}_dry.json" "$tp" "$pp" "$@" > $MN/${tag}_cmd.sh <<'PY'
import json, shlex, sys
d = json.load(open(sys.argv[1])); argv = d["argv"]; tp, pp, extra = sys.argv[2], sys.argv[3], sys.argv[4:]
for flag, val in (("--tensor-parallel-size", tp), ("--pipeline-parallel-size", pp), ("--port", "8001")):
    if flag in argv: argv[argv.index(flag) + 1] = val
    else: argv += [flag, val]
d["env"].pop("VLLM_PP_LAYER_PARTITION", None)
print("\n".join(f"export {k}={shlex.quote(v)}" for k, v in d["env"].items()))
print("exec " + shlex.join(argv + extra))
PY
  log "$tag: TP $tp x PP $pp over the Ray nodes"; tail -n 1 $MN/${tag}_cmd.sh
  NCCL_HOSTID=vlmctl-n1 setsid bash $MN/${tag}_cmd.sh > $MN/${tag}_engine.log 2>&1 &
  pid=$!
  if wait_up 8001 240 $pid; then
    log "$tag ready"; nvidia-smi --query-compute-apps=pid,used_memory --format=csv > $MN/${tag}_smi.csv
    python3 benchmarks/gpu/api_requests.py --base http://127.0.0.1:8001/v1 --steps image --out $MN/api_${tag}.json
    cat $MN/api_${tag}.json; echo
  else
    log "$tag did not come up"; grep -E "Error|error|rror:" $MN/${tag}_engine.log | tail -n 15
  fi
  stop $pid; PACK $tag
}

KV4=4294967296
phase_up4() { cluster_up 4 > $MN/c4_cluster.txt 2>&1 || { cat $MN/c4_cluster.txt; return 1; }; tail -n 9 $MN/c4_status.txt; }
phase_down4() { cluster_down 4; }
phase_tp2() { direct tp2 2 1 --gpu-memory-utilization 0.42 --disable-custom-all-reduce; }
phase_tp2pp2() { direct tp2pp2 2 2 --kv-cache-memory-bytes $KV4 --disable-custom-all-reduce; }
phase_tp4() { direct tp4 4 1 --kv-cache-memory-bytes $KV4 --disable-custom-all-reduce; }
phase_tp1pp4() { direct tp1pp4 1 4 --kv-cache-memory-bytes $KV4; }
# The same with vLLM's profiling (u 0.45 each): torch activation peaks per rank are logged; the KV figures include
# the other ranks' memory (see the header), and a start may fail on that.
phase_tp4p() { direct tp4p 4 1 --gpu-memory-utilization 0.45 --disable-custom-all-reduce; }
phase_tp2pp2p() { direct tp2pp2p 2 2 --gpu-memory-utilization 0.45 --disable-custom-all-reduce; }
phase_tp1pp4p() { direct tp1pp4p 1 4 --gpu-memory-utilization 0.45; }

for phase in "$@"; do "phase_$phase"; done
PACK all
log "done"
