#!/usr/bin/env bash
# GPU machine, one call: what the families work still lacks, in this order, each skipped when it no longer fits
# before the deadline (and not run again when an earlier call of the same lease ran it):
#   N01  Qwen3-VL-8B, V1, eager, 16 sequences, the 16,384-token image: a profile whose peak the ViT pass sets
#        (the held-out check of the Qwen3 tower's ViT factor; ~30-50 s)
#   S    `vlmctl serve --plan` of Qwen2-VL-7B (folder from `vlmctl models materialize`), one image and one video
#        request through the API (visit_q35_serve.sh Q2VL-7B; ~80-100 s)
#   Q05  Qwen3.5-35B-A3B, V1, eager, 1,024 sequences (never started; its first start compiles the Triton
#        gated-DeltaNet and fused-MoE kernels: ~220-250 s; last, so a late finish only costs its layout dump)
# Predictions: docs/validation/families/next_visit_predictions.json (recorded before the visit; all held out).
#
#   run(carry=[".gpu/p5/vllm-bundle.tar.xz.part_04", ".gpu/p5/SHA256SUMS", ".gpu/extra", ".gpu/slim",
#              ".gpu/visit/families_next.tar.xz"], timeout_s=420,
#       command="bash benchmarks/gpu/visit_families_next.sh 410 2>&1 | tee $OUT/console.log")
#
# Before it: bundle parts 00-03 in /tmp/stage (one transfer each; part 04 travels with this call). The folders:
#   python benchmarks/gpu/family_folders.py .gpu/famnext --only 8B,35B-A3B,Q2VL-7B
#   tar -C .gpu/famnext -cJf .gpu/visit/families_next.tar.xz .
# Writes under $OUT after every step: families_next.tar.gz (results_N.json, results_Q.json, the probes' logs, the
# serve's plan, API answers, engine log and summary.jsonl), so a call cut short still returns what ran.
# Then, here: benchmarks/gpu/families_results.py --merge (probes) and docs/validation.md § 13.
# CPU rehearsal (no vLLM: the probes fail at its import, the serve fails fast; exercises order, deadline, packing):
#   FN_DRY=1 PATH=$PWD/.venv/bin:$PATH OUT=/tmp/fn bash benchmarks/gpu/visit_families_next.sh 120
set -u
REPO=$(pwd)
OUT=${OUT:-/tmp/famnext_out}; mkdir -p "$OUT"
END=$(( $(date +%s) + ${1:-410} ))
W=/tmp/famnext; mkdir -p "$W"
log() { echo "[$(date +%T) ${SECONDS}s] $*"; }
left() { echo $(( END - $(date +%s) )); }
pack() { tar -C /tmp -czf "$OUT/families_next.tar.gz" famnext $(cd /tmp && ls -d calib/logs_N calib/logs_Q serve_q2vl 2>/dev/null); }

if [ -z "${FN_DRY:-}" ]; then
  mkdir -p /tmp/wheels && cp "$REPO"/.gpu/slim/*.whl /tmp/wheels/
  log "install (bundle parts from /tmp/stage + the carried part, extra wheels; no import check)"
  if ! VLLM_CHECK=0 . "$REPO/benchmarks/gpu/install_vllm.sh" "$REPO/.gpu/p5" > "$W/install.log" 2>&1; then
    cat "$W/install.log"; echo "STOP: the vLLM bundle did not install (parts 00-03 in /tmp/stage?)"; exit 2
  fi
  tail -4 "$W/install.log"
  . "$REPO/benchmarks/gpu/common.sh"
  nvidia-smi --query-gpu=name,memory.used,memory.total,driver_version --format=csv,noheader | tee "$W/gpu.txt"
  PY=python3
else
  PY=${FN_PY:-python3}
  log "dry run: no install, no GPU"
fi
mkdir -p /tmp/fam && tar -C /tmp/fam -xJf "$REPO/.gpu/visit/families_next.tar.xz"
for m in 8B 35B-A3B Q2VL-7B; do
  [ -f /tmp/fam/$m/config.json ] || { echo "STOP: /tmp/fam/$m missing from families_next.tar.xz"; exit 2; }
done

probe() {  # batch config-name est_s
  local batch=$1 name=$2 est=$3
  if [ -f "$W/done_$name" ]; then log "$name ran earlier in this lease"; return; fi
  local l=$(( $(left) - 8 ))
  if [ "$l" -lt "$est" ]; then log "skip $name: ${l}s left < ${est}s"; return; fi
  log "$name (${l}s left)"
  $PY "$REPO/benchmarks/gpu/calibrate.py" --batch "$batch" --only "$name" --models /tmp/fam --out "$W/$batch" \
    --configs "$REPO/benchmarks/gpu/families_configs.json" --deadline-s "$l" 2>&1 | tail -4
  touch "$W/done_$name"
  grep -h "PROBE KVCFG\|GPU KV cache size\|Maximum concurrency\|Actual usage\|Setting attention block size\|padding\|Padding" \
    /tmp/calib/logs_"$batch"/"$name".log 2>/dev/null | cut -c1-600 | head -12
  pack
}

mkdir -p "$W/N" "$W/Q"
probe N N01_8b_v1_eager_u90_L32k_s16_img1_vid0 40

Q05_S=200  # what Q05 keeps: its memory lines come ~200-230 s after it starts
up=$(( $(left) - 8 - Q05_S - 45 )); [ -f "$W/done_Q05_q35_35ba3b_default_eager_u90_L32k_s1024" ] && up=$(( $(left) - 50 ))
[ "$up" -gt 120 ] && up=120
if [ -f "$W/done_serve" ]; then
  log "serve Q2VL-7B ran earlier in this lease"
elif [ "$up" -lt 45 ]; then
  log "skip serve Q2VL-7B: ${up}s to wait for its API is too short (Q05 keeps ${Q05_S}s)"
else
  log "serve Q2VL-7B (waits up to ${up}s for the API)"
  FAM_TAR="$REPO/.gpu/visit/families_next.tar.xz" SERVE_TAG=q2vl SERVE_UP_S=$up SERVE_REQ_S=40 Q35_DRY=${FN_DRY:-} \
    bash "$REPO/benchmarks/gpu/visit_q35_serve.sh" Q2VL-7B 2>&1 | grep -v '^ *[{}"]' | tail -12
  touch "$W/done_serve"
  pack
fi

probe Q Q05_q35_35ba3b_default_eager_u90_L32k_s1024 "$Q05_S"
pack
log "done: $(ls "$OUT" | wc -l) files under \$OUT"
