#!/usr/bin/env bash
# One H200, the next held-out speed visit (predictions: docs/validation/speed_next/predictions.json, recorded before
# it; benchmarks/speed_next.py): vlmctl plan -> vlmctl serve --plan (vLLM 0.26.0, dummy weights) -> vlmctl bench
# --plan --distinct-media, for Qwen2.5-VL-7B (640x480 images with 200 text / 32 output tokens at c=1/8/32; 1920x1080
# with 48 / 160 at c=1/8) and Qwen3-VL-8B (1280x720, 48 / 96 at c=1/8/32); benches and flags come from
# benchmarks/speed_next.py, so the script and the predictions cannot drift (speed_visit.sh: visit_main).
#   bash benchmarks/gpu/visit_speed_next.sh END_EPOCH ["7B Q3-8B"]
# END_EPOCH: the time (date +%s) by which the call must be done; a model that would not finish by then is skipped.
# Needs vLLM installed in this lease (`. benchmarks/gpu/install_vllm.sh` earlier in the same command or lease),
# .gpu/visit/qwen25.tar.xz (7B folder) and .gpu/visit/fam.tar.xz (8B folder: benchmarks/gpu/family_folders.py),
# .gpu/visitwheels (vlmctl's dependency wheels). Every call adds to /tmp/speednext and packs it into
# $OUT/speednext.tar.gz. SPEED_DRY=1: CPU rehearsal with vlmctl's demo engine.
set -u
VISIT=speednext; PY=benchmarks/speed_next.py; MODELS=${2:-"7B Q3-8B"}
ENGINES="7B=qwen25.tar.xz:7B:230 Q3-8B=fam.tar.xz:./8B:200"
. "$(dirname "$0")/speed_visit.sh"
visit_main "${1:?END_EPOCH}"
