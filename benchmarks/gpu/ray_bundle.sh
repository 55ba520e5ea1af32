#!/usr/bin/env bash
# Build the Ray bundle for the GPU machine (Python 3.12, no network, no Ray): Ray (same version as here) unpacked
# without its Java jars and RLlib, plus the four small packages it needs that the machine lacks. One file, ~32 MB,
# that travels in one call beside the vLLM bundle parts. On the machine: . benchmarks/gpu/install_ray.sh DIR
#   bash benchmarks/gpu/ray_bundle.sh .gpu/ray
set -euo pipefail
out=${1:-.gpu/ray}
ver=${RAY_VERSION:-$(python3 -c 'import ray; print(ray.__version__)' 2>/dev/null || .venv/bin/python -c 'import ray; print(ray.__version__)')}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out" "$work/wheels" "$work/site"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$work/dl" "ray==$ver" jsonschema referencing jsonschema-specifications rpds-py
unzip -q "$work"/dl/ray-*.whl -d "$work/site"   # unzip keeps the raylet/gcs_server execute bits
mv "$work"/dl/jsonschema* "$work"/dl/referencing* "$work"/dl/rpds* "$work/wheels/"
rm -rf "$work/site/ray/jars" "$work/site/ray/rllib"
tar -C "$work" -cf - site wheels | xz -T2 -6 > "$out/ray-bundle.tar.xz"
(cd "$out" && sha256sum ray-bundle.tar.xz > SHA256SUMS.ray)
ls -l "$out/ray-bundle.tar.xz"
