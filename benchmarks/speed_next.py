"""The speed model's predictions for the next held-out H200 visit, written down before it is measured.

None of these rows had run: Qwen2.5-VL-7B at image sizes and prompt/output lengths no earlier run used (640×480
with 200 text tokens and 32 output tokens; 1920×1080 with 48 and 160) and Qwen3-VL-8B (a family no speed run used)
with 1280×720 images; every request its own image (`--distinct-media`), `--ignore-eos`, 8 s per level; planned by
`vlmctl plan --gpus h200:1 --vllm-version 0.26.0`, served by `vlmctl serve --plan`, measured by `vlmctl bench
--plan` (`benchmarks/gpu/visit_speed_next.sh`). Fit rows (designated before it ran): 7B 1920×1080 c=1 and Qwen3-VL-8B
c=1, on which the vision encoder's MFU and the renderer's time per new megapixel are refitted (--fit); the other six
are held out.

    python benchmarks/speed_next.py --compare docs/validation/speed_next   # blind
    python benchmarks/speed_next.py --fit docs/validation/speed_next       # the designated fit, then held out once

(and the other commands of benchmarks/speed_visits.py).
"""
from __future__ import annotations

import sys

from speed_visits import Visit, main

VISIT = Visit(
    name="speed_next",
    models={"7B": "Qwen/Qwen2.5-VL-7B-Instruct", "Q3-8B": "Qwen/Qwen3-VL-8B-Instruct"},
    benches=(("7B", "image@640x480", 200, 32, (1, 8, 32)), ("7B", "image@1920x1080", 48, 160, (1, 8)),
             ("Q3-8B", "image@1280x720", 48, 96, (1, 8, 32))),
    fit=frozenset({("7B", "image@1920x1080", 1), ("Q3-8B", "image@1280x720", 1)}),
    fit_constants=("vision_mfu", "media_new_ms_per_mpixel"),
    duration_s=8,
    note="written before the visit measured any of these rows; FIT rows are fitted after it, the others held out")
compare = VISIT.compare

if __name__ == "__main__":
    sys.exit(main(VISIT, __doc__.splitlines()[0]))
