#!/usr/bin/env bash
# One H200, the last held-out speed visit (revision 5; predictions: docs/validation/speed_final/predictions.json,
# recorded before it; benchmarks/speed_final.py): vlmctl plan -> vlmctl serve --plan (vLLM 0.26.0, dummy weights) ->
# vlmctl bench --plan --distinct-media, ONE engine: Qwen2.5-VL-7B (first 960x720 at c=1, the one fit row: `vlmctl
# calibrate --from-bench` fits the host factor on it into runs/cal_7B.json; then 1024x576, 80 / 64 tokens, and
# 1440x1080, 64 / 96, at c=2/12/24; text, 256 / 128, at c=16); benches, flags and the fit bench come from
# benchmarks/speed_final.py, so the script and the predictions cannot drift (speed_visit.sh: visit_main).
#   bash benchmarks/gpu/visit_speed_final.sh END_EPOCH
# END_EPOCH: the time (date +%s) by which the call must be done; the engine is skipped if it would not finish by
# then, and each bench is cut at END. Needs vLLM installed in this lease (`. benchmarks/gpu/install_vllm.sh` earlier
# in the same command), .gpu/visit/qwen25.tar.xz (7B folder) and vlmctl's dependency wheels (SPEED_WHEELS). Packs
# /tmp/speedfinal/runs into $OUT/speedfinal.tar.gz after the engine. SPEED_DRY=1: CPU rehearsal with vlmctl's demo
# engine.
set -u
VISIT=speedfinal; PY=benchmarks/speed_final.py; MODELS=7B
ENGINES="7B=qwen25.tar.xz:7B:250"
. "$(dirname "$0")/speed_visit.sh"
visit_main "${1:?END_EPOCH}"
