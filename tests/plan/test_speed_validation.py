"""The speed model re-predicts every measured `vlmctl bench` run (CPU-only).

The 19 runs with cached media (docs/validation.md § 11) are the fit set of the committed constants (two earlier
held-out reports used them, so none is held out any more); the rows outside the targets (output tokens/s and TPOT
±15 %, TTFT ±25 %) are listed here with their reason, so a change that fixes or breaks a row shows up. The rows are
predicted as the bench ran them: media repeated (prefix-cache hits), measured prompt and output lengths, the API
server's host factor of the machine they ran on.
"""
from __future__ import annotations

import sys
from pathlib import Path

from vlmctl.engines.vllm.speed import speed_constants

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from speed_fit import FITTED, HOST_FACTOR, TARGETS, errors, fit, rows, table  # noqa: E402

#: Fit-set (row, metric) pairs outside the targets, and why.
KNOWN_MISSES = {
    # TTFT at c >= 8 is the API server's serial time per request and how the closed loop groups arrivals: 3B's
    # arrive in tighter groups than 7B's on the same host (one serial time fits neither)
    ("H200", "3B", "image@1280x720", 32, "ttft_ms"), ("H200", "7B", "image@1280x720", 8, "ttft_ms"),
    ("H200", "7B", "image@1280x720", 32, "ttft_ms"), ("H200", "7B", "video@640x360x8", 8, "ttft_ms"),
    # the H100 host: one 32-request burst per level; its c=1 TTFT with the host factor fitted on all three levels
    ("H100", "7B", "image@1280x720", 1, "ttft_ms"),
    # the field report's eager launch: a step is the host CPU launching kernels; per-request TPOT spans 21-45 ms
    # within every level whatever the batch, so one per-layer cost sits between the levels' medians
    ("H100 field", "7B", "image@1280x720", 1, "ttft_ms"), ("H100 field", "7B", "image@1280x720", 8, "ttft_ms"),
    ("H100 field", "7B", "image@1280x720", 8, "tpot_ms"), ("H100 field", "7B", "image@1280x720", 32, "tpot_ms"),
    ("H100 field", "7B", "image@1280x720", 8, "output_tokens_per_s"),
}


def test_eager_decode_varies_with_the_host_not_the_batch():
    """The reason given for the eager misses, checked on the records: each level's per-request TPOT spans a wide
    range whatever the batch, and the fit row's median is above the median of all eager requests."""
    import json
    import statistics

    levels = json.loads((ROOT / "docs/validation/serve/bench_field.json").read_text())["levels"]
    per_level = [[(r["e2e"] - r["ttft"]) / (r["completion_tokens"] - 1) for r in lv["requests_detail"]]
                 for lv in levels]
    assert all(max(t) / min(t) > 1.5 for t in per_level)
    assert statistics.median(per_level[0]) > 1.15 * statistics.median([t for lv in per_level for t in lv])


def test_every_cached_media_row_is_repredicted_and_the_misses_are_the_known_ones():
    result = table(rows(), speed_constants("0.26.0"))
    assert len(result) == 19 and all(t["set"] == "fit" for t in result)
    misses = {(t["gpu"], t["model"], t["workload"], t["concurrency"], m)
              for t in result for m, tol in TARGETS.items() if abs(t["error"][m]) > tol}
    assert misses == KNOWN_MISSES
    for t in result:
        if t["gpu"] == "H200":  # TPOT is memory traffic: within 10 % on every H200 row
            assert abs(t["error"]["tpot_ms"]) < 0.10, t
        assert abs(t["error"]["output_tokens_per_s"]) < 0.20, t


def test_the_committed_constants_are_the_fit_of_the_cached_media_rows():
    """Refitting from the committed constants (rounded to 3 digits) lowers the fit's loss by under 1 %."""
    import math

    data, k = rows(), speed_constants("0.26.0")
    fit_rows = [r for r in data if r["fit"]]

    def loss(c, hosts) -> float:
        return sum(math.log1p(e) ** 2 for r in fit_rows for e in errors(r, c, hosts).values())

    refit, hosts = fit(data, k)
    assert loss(k, HOST_FACTOR) <= 1.01 * loss(refit, hosts)
    assert set(FITTED) <= set(vars(k))
