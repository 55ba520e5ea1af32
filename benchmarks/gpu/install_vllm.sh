#!/usr/bin/env bash
# On the GPU machine: copy the carried bundle parts into /tmp/stage, unpack and install vLLM 0.26.0
# (as ../shared/reference/gpu-box.md says), then print the versions. Source it: it exports PYTHONPATH etc.
#   . benchmarks/gpu/install_vllm.sh .gpu/p3
# Wheels in a carried .gpu/extra (or $VLLM_EXTRA_WHEELS) go into /tmp/site too, --no-deps: packages the bundle
# lacks (compressed-tensors 0.17.0, which vLLM 0.26's gated-DeltaNet layers import, and loguru, which it needs).
# VLLM_CHECK_IMPORT=module.a,module.b: import them in the version check and print one line per module;
# VLLM_CHECK=0 skips the check (it imports vLLM: about 20 s).
stage=/tmp/stage
mkdir -p "$stage"
for d in "$@"; do cp "$d"/vllm-bundle.tar.xz.part_* "$d"/SHA256SUMS "$stage"/ 2>/dev/null; done
if [ ! -d /tmp/site/vllm_installed_marker ]; then
  (cd "$stage" && sha256sum -c SHA256SUMS) || return 1 2>/dev/null || exit 1
  mkdir -p /tmp/vllm && cat "$stage"/vllm-bundle.tar.xz.part_* | xz -T0 -d | tar -x -C /tmp/vllm
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site /tmp/vllm/wheels/*.whl 2>&1 | tail -3
  mkdir -p /tmp/site/vllm_installed_marker
fi
extra=${VLLM_EXTRA_WHEELS:-.gpu/extra}
if ls "$extra"/*.whl >/dev/null 2>&1 && [ ! -d /tmp/site/extra_installed_marker ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$extra"/*.whl 2>&1 | tail -3
  mkdir -p /tmp/site/extra_installed_marker
  echo "extra wheels: $(cd "$extra" && ls *.whl | tr '\n' ' ')"
fi
export PYTHONPATH=/tmp/vllm/vllm-site:/tmp/site
export VLLM_USE_FLASHINFER_SAMPLER=0 VLLM_NO_USAGE_STATS=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
[ "${VLLM_CHECK:-1}" = 0 ] || python3 - <<'PY'
import importlib, os
import torch, vllm, transformers
print("vllm", vllm.__version__, "torch", torch.__version__, "transformers", transformers.__version__)
for name in filter(None, os.environ.get("VLLM_CHECK_IMPORT", "").split(",")):
    try:
        importlib.import_module(name)
        print(f"import check: {name} OK")
    except Exception as exc:  # noqa: BLE001 - the line is the report
        print(f"IMPORT CHECK FAILED: {name}: {type(exc).__name__}: {exc} (engines of this model will not start)")
PY
