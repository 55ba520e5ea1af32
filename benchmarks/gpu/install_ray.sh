#!/usr/bin/env bash
# On the GPU machine: unpack the Ray bundle (benchmarks/gpu/ray_bundle.sh) and put a `ray` command on PATH.
# Source it after install_vllm.sh:   . benchmarks/gpu/install_ray.sh .gpu/ray
d=${1:-.gpu/ray}
pkg=/tmp/raypkg   # not /tmp/ray: that is Ray's own default temp dir
if [ ! -d $pkg/site/ray ]; then
  (cd "$d" && sha256sum -c SHA256SUMS.ray) || return 1 2>/dev/null || exit 1
  mkdir -p $pkg && xz -T0 -d < "$d/ray-bundle.tar.xz" | tar -x -C $pkg
  python3 -m pip install -q --no-index --no-deps --no-compile --target $pkg/site $pkg/wheels/*.whl 2>&1 | tail -3
  mkdir -p $pkg/bin
  printf '#!/usr/bin/env python3\nimport sys\nfrom ray.scripts.scripts import main\nsys.exit(main())\n' > $pkg/bin/ray
  chmod +x $pkg/bin/ray
fi
export PATH=$pkg/bin:$PATH PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$pkg/site
python3 -c 'import ray; print("ray", ray.__version__)'
