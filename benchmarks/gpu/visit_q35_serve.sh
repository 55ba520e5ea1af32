#!/usr/bin/env bash
# GPU machine: `vlmctl serve --plan` for Qwen3-VL-30B-A3B and for Qwen3.5-27B (dummy weights), each answering one
# image and one video request through the OpenAI API, in one call of at most 330 s. Each engine is planned on the
# machine with `vlmctl plan … --json` (h200:1, vLLM 0.26.0, eager, 16k, 2 images + 1 video per prompt), served,
# asked, stopped; the plan's KV tokens are printed next to the engine's "GPU KV cache size".
#
#   run(carry=[".gpu/extra", ".gpu/visit", ".gpu/slim"],
#       command="bash benchmarks/gpu/visit_q35_serve.sh 2>&1 | tee $OUT/console.log", timeout_s=330)
#
# After visit_q35.sh on the same machine (vLLM installed; otherwise the parts must be in /tmp/stage). Qwen3.5 is
# served with `-- --gdn-prefill-backend triton`: on Hopper vLLM 0.26 picks FlashInfer's gated-DeltaNet prefill
# kernel by default (model_executor/layers/mamba/gdn/qwen_gdn_linear_attn.py _resolve_gdn_prefill_backend), and the
# machine has no FlashInfer. Writes $OUT/serve_q35.tar.gz (plans, api answers, engine log excerpts, summary.json).
# vLLM logs at INFO: at DEBUG every custom op logs, and the first eager Qwen3.5 request (Triton kernels compiling)
# then ran past a 60 s client timeout (2026-11-29); the requests get 175 s.
# CPU rehearsal (no GPU; plans, then each serve fails fast without vLLM):
#   Q35_DRY=1 PATH=$PWD/.venv/bin:$PATH OUT=/tmp/q35s bash benchmarks/gpu/visit_q35_serve.sh
# Other folders: name them (`bash benchmarks/gpu/visit_q35_serve.sh Q2VL-7B`; Qwen3.5 folders get the Triton flag),
# with FAM_TAR (the tarball holding them), SERVE_TAG (the output name: $OUT/serve_$SERVE_TAG.tar.gz), SERVE_UP_S and
# SERVE_REQ_S (seconds to wait for the API and for the requests); visit_families_next.sh does so.
set -u
REPO=$(pwd)
OUT=${OUT:-/tmp/q35_serve_out}; mkdir -p "$OUT"
log() { echo "[$(date +%T) ${SECONDS}s] $*"; }
if [ -z "${Q35_DRY:-}" ]; then
  mkdir -p /tmp/wheels && cp "$REPO"/.gpu/slim/*.whl /tmp/wheels/
  VLLM_CHECK=0 . "$REPO/benchmarks/gpu/install_vllm.sh" > /tmp/install_serve.log 2>&1; tail -3 /tmp/install_serve.log
  . "$REPO/benchmarks/gpu/common.sh"
  UP_S=${SERVE_UP_S:-170}
else
  wait_up() { for _ in $(seq 1 "$2"); do kill -0 "$3" 2>/dev/null || return 1; sleep 1; done; return 1; }
  UP_S=${SERVE_UP_S:-20}
fi
TAG=${SERVE_TAG:-q35} REQ_S=${SERVE_REQ_S:-175}
export PYTHONPATH=$REPO/src:${PYTHONPATH:-} NO_COLOR=1 COLUMNS=200 VLLM_LOGGING_LEVEL=INFO
S=/tmp/serve_$TAG F=/tmp/serve_$TAG/serve_$TAG; rm -rf $S; mkdir -p $F /tmp/fam
tar -C /tmp/fam -xJf "${FAM_TAR:-$REPO/.gpu/visit/fam.tar.xz}"
VL="python3 -m vlmctl.cli.main"
python3 - <<'PY' || log "no OpenCV: the video request will be skipped"
import cv2, numpy as np
w = cv2.VideoWriter("/tmp/q35_v.mp4", cv2.VideoWriter_fourcc(*"mp4v"), 2, (640, 480))
for i in range(8):
    img = np.zeros((480, 640, 3), np.uint8); img[:, :, 0] = (np.arange(640) + 20 * i) % 256; w.write(img)
w.release()
PY

serve_one() {  # folder name, port, extra vLLM flags...
  local m=$1 port=$2; shift 2
  log "plan $m"
  $VL plan /tmp/fam/$m --gpus h200:1 --vllm-version 0.26.0 --enforce-eager --max-model-len 16384 \
    --limit-mm-per-prompt '{"image":2,"video":1}' --json -o $F/plan_$m.json > /dev/null 2> $F/plan_$m.err
  echo "plan rc=$?"; head -3 $F/plan_$m.err
  log "serve $m"
  setsid $VL serve --plan $F/plan_$m.json --vllm-bin "python3 $REPO/benchmarks/gpu/vllm_dummy.py" --port $port \
    --log-file $F/engine_$m.log "$@" > $F/serve_$m.log 2>&1 &
  local pid=$!
  if wait_up $port $UP_S $pid; then
    log "$m up"
    timeout "$REQ_S" python3 "$REPO/benchmarks/gpu/api_requests.py" --base http://127.0.0.1:$port/v1 \
      --steps image,worst_video --video /tmp/q35_v.mp4 --out $F/api_$m.json
    cat $F/api_$m.json
  else
    log "$m did not come up"; tail -30 $F/serve_$m.log; tail -30 $F/engine_$m.log 2>/dev/null
  fi
  kill -TERM -- -$pid 2>/dev/null; sleep 5; kill -KILL -- -$pid 2>/dev/null
  grep -v "^$" $F/engine_$m.log 2>/dev/null | grep -E "INFO|WARN|ERROR|Traceback|Error" | cut -c1-600 | head -400 > $F/engine_excerpt_$m.log
  python3 - "$F" "$m" <<'PY'
import json, re, sys
from pathlib import Path
f, m = Path(sys.argv[1]), sys.argv[2]
plan = json.loads((f / f"plan_{m}.json").read_text()).get("plan") or {} if (f / f"plan_{m}.json").exists() else {}
log = (f / f"engine_{m}.log").read_text(errors="replace") if (f / f"engine_{m}.log").exists() else ""
got = re.search(r"GPU KV cache size: ([\d,]+) tokens", log)
conc = re.search(r"Maximum concurrency for [\d,]+ tokens per request: ([\d.]+)x", log)
api = json.loads((f / f"api_{m}.json").read_text()) if (f / f"api_{m}.json").exists() else {}
row = {"model": m, "kv_tokens_predicted": plan.get("kv_cache_tokens"),
       "kv_tokens_logged": int(got.group(1).replace(",", "")) if got else None,
       "max_concurrency_predicted": plan.get("max_concurrency"),
       "max_concurrency_logged": float(conc.group(1)) if conc else None,
       "api": {k: v.get("status") for k, v in api.items() if isinstance(v, dict)}}
if row["kv_tokens_predicted"] and row["kv_tokens_logged"]:
    row["kv_err_pct"] = round(100 * (row["kv_tokens_predicted"] - row["kv_tokens_logged"]) / row["kv_tokens_logged"], 2)
print("SERVE SUMMARY " + json.dumps(row), flush=True)
with open(f / "summary.jsonl", "a") as fh:
    fh.write(json.dumps(row) + "\n")
PY
}

if [ $# -eq 0 ]; then set -- 30B-A3B 27B; fi
port=8011
for m in "$@"; do
  case $m in
    27B|35B-A3B) serve_one "$m" $port -- --gdn-prefill-backend triton ;;
    *) serve_one "$m" $port ;;
  esac
  port=$((port + 1))
done
tar -C $S -czf "$OUT/serve_$TAG.tar.gz" serve_$TAG
log "done"
