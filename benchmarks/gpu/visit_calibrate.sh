#!/usr/bin/env bash
# GPU machine: `vlmctl calibrate` end to end with vLLM 0.26 from deliberately wrong starting constants, in one call
# of at most about 7.5 minutes: the 7B's five runs plus the 32B's LM and sampler runs (calibrate budget 330 s;
# install, when needed, about 1 more minute). docs/validation.md's engines span 3B/7B/32B, so one size alone would
# fit the shape-dependent constants (sampler, weight overhead) to the 7B.
#
#   run(carry=[".gpu/visitwheels"], command="bash benchmarks/gpu/visit_calibrate.sh", timeout_s=600)
#
# Before it: the four bundle parts in /tmp/stage (one transfer each, back to back; ../shared/reference/gpu-box.md),
# or vLLM already installed by an earlier call on the same machine (install_vllm.sh keeps a marker). Writes under
# $OUT (5 files): calibration.json (the calibration file, with its before/after table), calibrate_table.txt (what
# the command printed), plan_calibrated.txt (`vlmctl plan` reading that file), compare_validation.txt (the 20
# engines of docs/validation.md re-predicted with the fitted constants, and how many stay within their published
# error), calibrate_logs.tar.gz (every engine log, the wrong starting constants, stderr).
# CPU rehearsal (no GPU): CAL_LAUNCHER="python3 tests/calibrate/standin_engine.py" CAL_VLLM=0.26.0 CAL_MORE=
#   CAL_MODEL=Qwen/Qwen2.5-VL-7B-Instruct CAL_RUNS=runs.json OUT=/tmp/out bash benchmarks/gpu/visit_calibrate.sh
set -u
REPO=$(pwd)
OUT=${OUT:-/tmp/calibrate_out}; mkdir -p "$OUT"
W=/tmp/calv; rm -rf $W; mkdir -p $W
VLMCTL="python3 -m vlmctl.cli.main"
export NO_COLOR=1 COLUMNS=200
if [ -z "${CAL_LAUNCHER:-}" ]; then
  . "$REPO/benchmarks/gpu/install_vllm.sh" "$@" || { echo "vLLM install failed"; exit 1; }
  [ -d /tmp/wheels ] || { [ -d "$REPO/.gpu/visitwheels" ] && cp -r "$REPO/.gpu/visitwheels" /tmp/wheels; }
fi
export PYTHONPATH=$REPO/src:${PYTHONPATH:-}
[ -d /tmp/wheels ] && . "$REPO/benchmarks/gpu/common.sh"
type log >/dev/null 2>&1 || log() { echo "[$(date +%T) ${SECONDS}s] $*"; }

VERSION=${CAL_VLLM:-$(python3 -c 'from importlib.metadata import version; print(version("vllm"))')}
MODEL=${CAL_MODEL:-/tmp/models/7B}
GPU=h100-80gb; nvidia-smi -L 2>/dev/null | grep -q H200 && GPU=h200
MORE=${CAL_MORE-/tmp/models/32B}
if [ -z "${CAL_MODEL:-}" ]; then
  for size in 7B 32B; do
    [ -f /tmp/models/$size/config.json ] && continue
    log "materialize $size"
    $VLMCTL models materialize Qwen/Qwen2.5-VL-$size-Instruct /tmp/models/$size >> $W/materialize.txt 2>&1 \
      || { log "materialize $size failed"; cat $W/materialize.txt; }
  done
fi

# Deliberately wrong starting constants: every constant the runs measure, far off (the fit does not start from them;
# the 'before' column shows how far off they predict).
python3 - "$VERSION" > $W/wrong.json <<'PY'
import json, sys
common = {"weight_overhead_gib": 1.5, "non_torch_gib": 1.0, "cuda_context_gib": 2.0, "lm_activation_factor": 2.5}
print(json.dumps({"vllm_version": sys.argv[1], "gpu": "deliberately wrong", "measured_at": "-", "engines": [],
                  "runners": {"v2": {"constants": common},
                              "v1": {"constants": common | {"sampler_bytes_per_logit": 20.0, "vit_factor": 3.0,
                                                            "cudagraph_gib": 2.0}}}}, indent=1))
PY

log "calibrate (vLLM $VERSION, $MODEL)"
extra=()
[ -n "${CAL_LAUNCHER:-}" ] && extra+=(--launcher "$CAL_LAUNCHER" --vllm-version "$VERSION")
[ -n "${CAL_RUNS:-}" ] && extra+=(--runs "$CAL_RUNS")
timeout 400 $VLMCTL calibrate $MODEL $MORE --start-from $W/wrong.json --budget-s 330 --timeout-s 120 --logs $W/logs \
  -o $OUT/calibration.json "${extra[@]}" > $OUT/calibrate_table.txt 2> $W/calibrate_stderr.txt
echo "calibrate exit code $?" | tee -a $OUT/calibrate_table.txt
tail -5 $W/calibrate_stderr.txt
cat $OUT/calibrate_table.txt

log "plan with the calibration"
$VLMCTL plan $MODEL --gpus $GPU:1 --vllm-version $VERSION --calibration $OUT/calibration.json > $OUT/plan_calibrated.txt 2>&1
tail -15 $OUT/plan_calibrated.txt
log "docs/validation.md's 20 engines with the fitted constants"
python3 $REPO/benchmarks/gpu/compare_plan.py --calibration $OUT/calibration.json --out $W/compare_validation.json \
  > $OUT/compare_validation.txt 2>&1
tail -6 $OUT/compare_validation.txt
tar -C $W -czf $OUT/calibrate_logs.tar.gz .
log "done"
