#!/usr/bin/env bash
# On the GPU machine: copy the carried bundle parts into /tmp/stage, unpack and install vLLM 0.26.0
# (as ../shared/reference/gpu-box.md says), then print the versions. Source it: it exports PYTHONPATH etc.
#   . benchmarks/gpu/install_vllm.sh .gpu/p3
stage=/tmp/stage
mkdir -p "$stage"
for d in "$@"; do cp "$d"/vllm-bundle.tar.xz.part_* "$d"/SHA256SUMS "$stage"/ 2>/dev/null; done
if [ ! -d /tmp/site/vllm_installed_marker ]; then
  (cd "$stage" && sha256sum -c SHA256SUMS) || return 1 2>/dev/null || exit 1
  mkdir -p /tmp/vllm && cat "$stage"/vllm-bundle.tar.xz.part_* | xz -T0 -d | tar -x -C /tmp/vllm
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site /tmp/vllm/wheels/*.whl 2>&1 | tail -3
  mkdir -p /tmp/site/vllm_installed_marker
fi
export PYTHONPATH=/tmp/vllm/vllm-site:/tmp/site
export VLLM_USE_FLASHINFER_SAMPLER=0 VLLM_NO_USAGE_STATS=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
python3 -c 'import torch, vllm, transformers; print("vllm", vllm.__version__, "torch", torch.__version__, "transformers", transformers.__version__)'
