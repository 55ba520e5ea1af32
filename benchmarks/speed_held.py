"""The speed model's predictions for the held-out H200 visit after revision 4, written down before it is measured.

None of these rows had run: Qwen2.5-VL-3B with 800×600 images (120 text / 48 output tokens at c = 4, 16, 32) and
Qwen3-VL-8B with 640×360 (300 / 24 at c = 1, 8) and 1600×1200 images (64 / 160 at c = 4, 16); every request its own
image (`--distinct-media`), `--ignore-eos`, 6 s per level; planned by `vlmctl plan --gpus h200:1 --vllm-version
0.26.0`, served by `vlmctl serve --plan`, measured by `vlmctl bench --plan` (`benchmarks/gpu/visit_speed_held.sh`).

The fit row, designated before the visit and fitting only the host factor (a host visit: Visit in
speed_visits.py): 3B with 1024×768 images (64 / 64) at c = 1, benched first; `vlmctl calibrate --from-bench`
writes its host factor to runs/cal_3B.json; the rest is held out, scored blind and with it:

    python benchmarks/speed_held.py --compare docs/validation/speed_held   # blind
    python benchmarks/speed_held.py --host docs/validation/speed_held      # with the fit row's host factor
"""
from __future__ import annotations

import sys

from speed_visits import Visit, main

VISIT = Visit(
    name="speed_held",
    models={"3B": "Qwen/Qwen2.5-VL-3B-Instruct", "Q3-8B": "Qwen/Qwen3-VL-8B-Instruct"},
    benches=(("3B", "image@1024x768", 64, 64, (1,)), ("3B", "image@800x600", 120, 48, (4, 16, 32)),
             ("Q3-8B", "image@640x360", 300, 24, (1, 8)), ("Q3-8B", "image@1600x1200", 64, 160, (4, 16))),
    fit=frozenset({("3B", "image@1024x768", 1)}),
    fit_constants=("host_factor",),
    duration_s=6,
    note="written before the visit measured any of these rows; the FIT row only sets the host factor (vlmctl "
         "calibrate --from-bench), the others are held out")

if __name__ == "__main__":
    sys.exit(main(VISIT, __doc__.splitlines()[0]))
