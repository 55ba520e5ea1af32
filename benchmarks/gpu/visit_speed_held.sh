#!/usr/bin/env bash
# One H200, the held-out speed visit after revision 4 (predictions: docs/validation/speed_held/predictions.json,
# recorded before it; benchmarks/speed_held.py): vlmctl plan -> vlmctl serve --plan (vLLM 0.26.0, dummy weights) ->
# vlmctl bench --plan --distinct-media, for Qwen2.5-VL-3B (first 1024x768 at c=1, the one fit row: `vlmctl calibrate
# --from-bench` fits the host factor on it into runs/cal_3B.json; then 800x600, 120 / 48 tokens, at c=4/16/32) and
# Qwen3-VL-8B (640x360, 300 / 24, at c=1/8; 1600x1200, 64 / 160, at c=4/16); benches, flags and the fit bench come
# from benchmarks/speed_held.py, so the script and the predictions cannot drift (speed_visit.sh: visit_main).
#   bash benchmarks/gpu/visit_speed_held.sh END_EPOCH ["3B Q3-8B"]
# END_EPOCH: the time (date +%s) by which the call must be done; a model that would not finish by then is skipped.
# Needs vLLM installed in this lease (`. benchmarks/gpu/install_vllm.sh` earlier in the same command or lease),
# .gpu/visit/qwen25.tar.xz (3B folder) and .gpu/visit/fam.tar.xz (8B folder: benchmarks/gpu/family_folders.py),
# vlmctl's dependency wheels (SPEED_WHEELS). Every call adds to /tmp/speedheld and packs it into
# $OUT/speedheld.tar.gz. SPEED_DRY=1: CPU rehearsal with vlmctl's demo engine.
set -u
VISIT=speedheld; PY=benchmarks/speed_held.py; MODELS=${2:-"3B Q3-8B"}
ENGINES="3B=qwen25.tar.xz:3B:185 Q3-8B=fam.tar.xz:./8B:195"
. "$(dirname "$0")/speed_visit.sh"
visit_main "${1:?END_EPOCH}"
