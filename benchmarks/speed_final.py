"""The speed model's predictions for the last held-out H200 visit (revision 5), written down before it is measured.

ONE engine: Qwen2.5-VL-7B, planned by `vlmctl plan --gpus h200:1 --vllm-version 0.26.0`, served by `vlmctl serve
--plan` (vLLM 0.26.0, dummy weights) and measured by `vlmctl bench --plan` (`benchmarks/gpu/visit_speed_final.sh`).
None of these rows had run: 1024×576 images (80 text / 64 output tokens) and 1440×1080 images (64 / 96) at
c = 2, 12, 24, and text (256 / 128) at c = 16; every request its own image (`--distinct-media`), `--ignore-eos`,
6 s per level, each row predicted as such a level.

The fit row, designated before the visit and fitting only the host factor (a host visit: Visit in
speed_visits.py): 7B with 960×720 images (64 / 64) at c = 1, benched first; `vlmctl calibrate --from-bench`
writes its host factor to runs/cal_7B.json; the rest is held out, scored blind and with it:

    python benchmarks/speed_final.py --compare docs/validation/speed_final   # blind
    python benchmarks/speed_final.py --host docs/validation/speed_final      # with the fit row's host factor
"""
from __future__ import annotations

import sys

from speed_visits import Visit, main

VISIT = Visit(
    name="speed_final",
    models={"7B": "Qwen/Qwen2.5-VL-7B-Instruct"},
    benches=(("7B", "image@960x720", 64, 64, (1,)), ("7B", "image@1024x576", 80, 64, (2, 12, 24)),
             ("7B", "image@1440x1080", 64, 96, (2, 12, 24)), ("7B", "text", 256, 128, (16,))),
    fit=frozenset({("7B", "image@960x720", 1)}),
    fit_constants=("host_factor",),
    duration_s=6, timed_levels=True,
    note="written before the visit measured any of these rows; the FIT row only sets the host factor (vlmctl "
         "calibrate --from-bench), the others are held out")

if __name__ == "__main__":
    sys.exit(main(VISIT, __doc__.splitlines()[0]))
