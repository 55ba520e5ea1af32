"""The speed model's predictions for the fresh-media H200 visit, written down before it is measured.

The visit (`benchmarks/gpu/visit_speed.sh`): Qwen2.5-VL 7B, 3B and 32B on one H200, each planned by `vlmctl plan
--gpus h200:1 --vllm-version 0.26.0` and served by `vlmctl serve --plan` (vLLM 0.26.0, dummy weights); `vlmctl
bench --distinct-media` (every image or video its own: no prefix-cache or encoder-cache hits), 48 text tokens and 96
output tokens per request (`--ignore-eos`): image@1280x720 at concurrency 1/8/32 on every model, and on 7B text at
1/32 and video@640x360x8 at 1/8. Fit rows (designated before it ran): 7B image c=1 and c=32, on which the vision
encoder's MFU and the API server's time for new media are fitted after the visit; the other 11 are held out.

    python benchmarks/speed_fresh.py --compare docs/validation/speed_fresh   # the runs against the recorded file

(and the other commands of benchmarks/speed_visits.py). The model's structure has changed since this file was
recorded (docs/validation.md § 11, "Revision fitted on all 32 rows"), so --check reports a difference now; the
record is what its commit predicted.
"""
from __future__ import annotations

import sys

from speed_visits import Visit, main

VISIT = Visit(
    name="speed_fresh",
    models={"7B": "Qwen/Qwen2.5-VL-7B-Instruct", "3B": "Qwen/Qwen2.5-VL-3B-Instruct",
            "32B": "Qwen/Qwen2.5-VL-32B-Instruct"},
    benches=(("7B", "image@1280x720", 48, 96, (1, 8, 32)), ("7B", "text", 48, 96, (1, 32)),
             ("7B", "video@640x360x8", 48, 96, (1, 8)), ("3B", "image@1280x720", 48, 96, (1, 8, 32)),
             ("32B", "image@1280x720", 48, 96, (1, 8, 32))),
    fit=frozenset({("7B", "image@1280x720", 1), ("7B", "image@1280x720", 32)}),
    fit_constants=("vision_mfu", "media_new_ms_per_mpixel"),
    duration_s=8, bench_by_kind=True,
    note="written before the fresh-media visit measured any of these rows; FIT rows are fitted after it, the others "
         "held out")
compare = VISIT.compare

if __name__ == "__main__":
    sys.exit(main(VISIT, __doc__.splitlines()[0]))
