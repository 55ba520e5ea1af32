#!/usr/bin/env bash
# Final H200 visit: vlmctl calibrate end to end (vLLM 0.26, wrong start) + Qwen3-VL-8B served by `vlmctl serve --plan`
# answering an image and a video request, in one call of about 400 s (docs/validation.md § 10).
# Before it: the bundle parts in /tmp/stage (one transfer each); carry .gpu/slim (vlmctl's wheels without av),
# .gpu/visit/fam.tar.xz (benchmarks/gpu/family_folders.py output).
#   run(carry=[".gpu/slim", ".gpu/visit"], command="bash benchmarks/gpu/visit_final.sh 2>&1 | tee $OUT/console.log")
set -u
REPO=$(pwd); export OUT
log() { echo "[$(date +%T) ${SECONDS}s] $*"; }
mkdir -p /tmp/wheels && cp .gpu/slim/*.whl /tmp/wheels/
log "calibrate (budget 250 s instead of the script's 285 s, to leave time for the Qwen3-VL engine)"
sed -e 's/timeout 340/timeout 290/; s/--budget-s 285/--budget-s 250/' benchmarks/gpu/visit_calibrate.sh > /tmp/cal.sh
bash /tmp/cal.sh 2>&1 | tail -60
. benchmarks/gpu/install_vllm.sh >/dev/null 2>&1
export PYTHONPATH=$REPO/src:$PYTHONPATH
. benchmarks/gpu/common.sh
F=$OUT/fam; mkdir -p $F /tmp/fam && tar -C /tmp/fam -xJf .gpu/visit/fam.tar.xz
VL="python3 -m vlmctl.cli.main"
$VL plan /tmp/fam/8B --gpus h200:1 --vllm-version 0.26.0 --enforce-eager --max-model-len 16384 \
   --limit-mm-per-prompt '{"image":2,"video":1}' --json -o $F/plan_q3vl8b.json > /dev/null 2> $F/plan.err; echo "plan rc=$?"
$VL plan /tmp/fam/8B --gpus h200:1 --vllm-version 0.26.0 --enforce-eager --max-model-len 16384 \
   --limit-mm-per-prompt '{"image":2,"video":1}' > $F/plan_q3vl8b.txt 2>&1; tail -25 $F/plan_q3vl8b.txt
python3 - <<'PY'
import cv2, numpy as np
w = cv2.VideoWriter("/tmp/v.mp4", cv2.VideoWriter_fourcc(*"mp4v"), 2, (640, 480))
for i in range(8):
    img = np.zeros((480, 640, 3), np.uint8); img[:, :, 0] = (np.arange(640) + 20 * i) % 256; w.write(img)
w.release()
PY
log "serve Qwen3-VL-8B"
setsid $VL serve --plan $F/plan_q3vl8b.json --vllm-bin "python3 benchmarks/gpu/vllm_dummy.py" --port 8011 \
  --log-file $F/engine.log > $F/serve.log 2>&1 &
pid=$!
if wait_up 8011 150 $pid; then
  log "up"
  timeout 60 python3 benchmarks/gpu/api_requests.py --base http://127.0.0.1:8011/v1 --steps image,worst_video \
     --video /tmp/v.mp4 --out $F/api.json
else
  log "did not come up"; tail -30 $F/serve.log
fi
grep -E "GPU KV cache size|Maximum concurrency|Model loading took|KV cache|predicted|plan" $F/engine.log $F/serve.log | head -20
kill -TERM -- -$pid 2>/dev/null; sleep 5; kill -KILL -- -$pid 2>/dev/null
grep -v "^$" $F/engine.log | grep -E "INFO|WARN|ERROR" | head -400 > $F/engine_excerpt.log
tar -C $OUT -czf $OUT/fam.tar.gz fam && rm -rf $F
log "done"
