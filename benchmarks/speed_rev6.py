"""The next held-out H200 visit: revision 5 against the revision-6 and revision-7 candidates, all recorded before it.

ONE engine: Qwen2.5-VL-7B, planned by `vlmctl plan --gpus h200:1 --vllm-version 0.26.0`, served by `vlmctl serve
--plan` (vLLM 0.26.0, dummy weights) and measured by `vlmctl bench --plan` (`benchmarks/gpu/visit_speed_rev6.sh`).
None of these rows had run: 1280×960 images (64 text / 80 output tokens) and 800×600 images on 7B (96 / 64) at
c = 6, 16, 28, and 480×360 videos of 12 frames (64 / 64) at c = 8; every request its own image or video
(`--distinct-media`), `--ignore-eos`, 6 s per level, each row predicted as such a level, twice: with the committed
constants of the time (revision 5, SPEED_V026_REV5) and with the revision-6 candidate (vlmctl.engines.vllm.speed
SPEED_V026_CANDIDATE, fitted on all 56 earlier rows; its values became revision 6, the default, on
cross-validation); the revision-7 candidate's (SPEED_V026_REV7_CANDIDATE, the same 56 rows) were added later,
still before the visit (`--add-candidates`: the file's ``more_candidates`` entry, with its own date and commit; the
two sets before it are unchanged).

The fit row, designated before the visit and fitting only the host factor (a host visit: Visit in
speed_visits.py): 7B with 1120×840 images (64 / 64) at c = 1, benched first; `vlmctl calibrate --from-bench`
writes its host factor to runs/cal_7B.json; the rest is held out, scored blind and with it, for all three:

    python benchmarks/speed_rev6.py --compare docs/validation/speed_rev6   # blind: revision 5, then the candidates
    python benchmarks/speed_rev6.py --host docs/validation/speed_rev6      # with the fit row's host factor
"""
from __future__ import annotations

import sys

from speed_visits import Visit, main

VISIT = Visit(
    name="speed_rev6",
    models={"7B": "Qwen/Qwen2.5-VL-7B-Instruct"},
    benches=(("7B", "image@1120x840", 64, 64, (1,)), ("7B", "image@1280x960", 64, 80, (6, 16, 28)),
             ("7B", "image@800x600", 96, 64, (6, 16, 28)), ("7B", "video@480x360x12", 64, 64, (8,))),
    fit=frozenset({("7B", "image@1120x840", 1)}),
    fit_constants=("host_factor",),
    duration_s=6, timed_levels=True, candidate="SPEED_V026_CANDIDATE",
    more_candidates=("SPEED_V026_REV7_CANDIDATE",),
    note="written before the visit measured any of these rows, with revision 5 (the default) and the revision-6 "
         "candidate; the FIT row only sets the host factor (vlmctl calibrate --from-bench), the others are held out")

if __name__ == "__main__":
    sys.exit(main(VISIT, __doc__.splitlines()[0]))
