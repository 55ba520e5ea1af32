"""The speed model re-predicts every measured `vlmctl bench` run (CPU-only): fitted rows and held-out rows.

Targets (docs/validation.md § 11): held out, output tokens/s and TPOT within ±15 %, TTFT within ±25 %. The misses
are listed here with their reason, so a change that fixes or breaks a row shows up. The rows are predicted as
the bench ran them: media repeated (prefix-cache hits), measured prompt and output lengths.
"""
from __future__ import annotations

import sys
from pathlib import Path

from vlmctl.engines.vllm.speed import speed_constants

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from speed_fit import TARGETS, rows, table  # noqa: E402

#: Held-out (row, metric) pairs outside the targets, and why.
KNOWN_MISSES = {
    # TTFT at c >= 8 is the API server: a cached 1280x720 image request still costs it ~10-17 ms, requests arriving
    # together get their first tokens together, and the closed loop groups 3B's arrivals more than 7B's (the fit
    # rows at c >= 8 show one decode step per other request); the throughput follows from the short TTFT
    ("H200", "3B", "image@1280x720", 8, "ttft_ms"), ("H200", "3B", "image@1280x720", 32, "ttft_ms"),
    ("H200", "3B", "image@1280x720", 32, "output_tokens_per_s"),
    # the H100 levels were 32 requests each: at c=32 one burst of 32 through that host's API server
    ("H100", "7B", "image@1280x720", 8, "ttft_ms"), ("H100", "7B", "image@1280x720", 32, "ttft_ms"),
    ("H100", "7B", "image@1280x720", 32, "output_tokens_per_s"),
    # the field report's eager launch: a step is the host CPU launching kernels; per-request TPOT spans 21-45 ms
    # within every level whatever the batch, and the one fit row (c=1, median 34.6 ms) fell in a slow stretch
    ("H100 field", "7B", "image@1280x720", 8, "tpot_ms"), ("H100 field", "7B", "image@1280x720", 32, "tpot_ms"),
    ("H100 field", "7B", "image@1280x720", 8, "output_tokens_per_s"),
    ("H100 field", "7B", "image@1280x720", 32, "output_tokens_per_s"),
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


def test_every_measured_row_is_repredicted_and_held_out_rows_meet_the_targets():
    result = table(rows(), speed_constants("0.26.0"))
    assert len(result) == 19 and sum(t["set"] == "fit" for t in result) == 5
    misses = {(t["gpu"], t["model"], t["workload"], t["concurrency"], m)
              for t in result if t["set"] == "held out" for m, tol in TARGETS.items() if abs(t["error"][m]) > tol}
    assert misses == KNOWN_MISSES
    met = sum(1 for t in result if t["set"] == "held out" for m in TARGETS) - len(misses)
    assert met >= 32  # of 42 held-out figures
    for t in result:
        if t["gpu"] == "H200":  # TPOT is memory traffic: within 10 % on every H200 row, fitted or not
            assert abs(t["error"]["tpot_ms"]) < 0.10, t
