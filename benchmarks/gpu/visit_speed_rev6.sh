#!/usr/bin/env bash
# One H200, the next held-out speed visit: revision 5 against the revision-6 candidate, the default now (predictions
# of both: docs/validation/speed_rev6/predictions.json, recorded before it; benchmarks/speed_rev6.py): vlmctl plan
# -> vlmctl serve --plan (vLLM 0.26.0, dummy weights) -> vlmctl bench --plan --distinct-media, ONE engine:
# Qwen2.5-VL-7B (first 1120x840 at c=1, the one fit row: `vlmctl calibrate --from-bench` fits the host factor on it
# into runs/cal_7B.json; then 1280x960, 64 / 80 tokens, and 800x600, 96 / 64, at c=6/16/28; 480x360x12 video,
# 64 / 64, at c=8); benches, flags and the fit bench come from benchmarks/speed_rev6.py, so the script and the
# predictions cannot drift (speed_visit.sh: visit_main).
#   bash benchmarks/gpu/visit_speed_rev6.sh END_EPOCH
# END_EPOCH: the time (date +%s) by which the call must be done; the engine is skipped if it would not finish by
# then, and each bench is cut at END. Needs vLLM installed in this lease (`. benchmarks/gpu/install_vllm.sh` earlier
# in the same command), .gpu/visit/qwen25.tar.xz (7B folder) and vlmctl's dependency wheels (SPEED_WHEELS). Packs
# /tmp/speedrev6/runs into $OUT/speedrev6.tar.gz after the engine. SPEED_DRY=1: CPU rehearsal with vlmctl's demo
# engine.
set -u
VISIT=speedrev6; PY=benchmarks/speed_rev6.py; MODELS=7B
ENGINES="7B=qwen25.tar.xz:7B:250"
. "$(dirname "$0")/speed_visit.sh"
visit_main "${1:?END_EPOCH}"
