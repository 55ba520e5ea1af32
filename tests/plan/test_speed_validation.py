"""The speed model re-predicts every measured `vlmctl bench` run (CPU-only): 19 with cached media, 13 with new.

The 19 runs with cached media (docs/validation.md § 11) are the fit set of the committed constants (two earlier
held-out reports used them, so none is held out any more); the rows outside the targets (output tokens/s and TPOT
±15 %, TTFT ±25 %) are listed here with their reason, so a change that fixes or breaks a row shows up. The rows are
predicted as the bench ran them: media repeated (prefix-cache hits), measured prompt and output lengths, the API
server's host factor of the machine they ran on. The 13 fresh-media runs (every image or video new) were predicted
before they ran (docs/validation/speed_fresh/predictions.json); 2 fit vision_mfu and media_new_ms_per_mpixel, 11
are held out, and the held-out misses are listed below with their reason.
"""
from __future__ import annotations

import sys
from pathlib import Path

from vlmctl.engines.vllm.speed import speed_constants

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from speed_fit import FITTED, FRESH_FITTED, HOST_FACTOR, TARGETS, errors, fit, fresh_rows, rows, table  # noqa: E402,E501

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


#: Held-out fresh-media (row, metric) pairs outside the targets, and why.
FRESH_KNOWN_MISSES = {
    # TPOT at c=32: the model spreads half of the others' prefills over a request's decode and half over its wait
    # for the first token; measured, more of them land before the first token (7B fit row: +33 % before the fit)
    ("H200 fresh", "32B", "image@1280x720 new", 32, "tpot_ms"), ("H200 fresh", "3B", "image@1280x720 new", 32, "tpot_ms"),
    # 3B at c=32 served 16.2 new-image requests/s, more than the serial API time fitted on 7B allows (72 ms): part
    # of a new image's API-server time is not serial, and the two 7B fit rows cannot tell which part
    ("H200 fresh", "3B", "image@1280x720 new", 32, "ttft_ms"),
    # text TTFT: 17 and 53 ms at c=1/32 in this visit, 20 and 107 ms for the same workload in the cached visit (same
    # GPU kind, same model): the closed loop's grouping of arrivals again, and request_ms fitted across two hosts
    ("H200 fresh", "7B", "text new", 1, "ttft_ms"), ("H200 fresh", "7B", "text new", 32, "ttft_ms"),
    # video at c=8: the new-media API time per megapixel was fitted on images; 8 frames of 640x360 are 1.84 MP
    ("H200 fresh", "7B", "video@640x360x8 new", 8, "ttft_ms"),
}


def test_fresh_media_rows_are_repredicted_fit_and_held_out_as_designated_before_the_visit():
    fresh = fresh_rows()
    result = table(fresh, speed_constants("0.26.0"))
    assert len(result) == 13 and sum(t["set"] == "fit" for t in result) == 2
    held = [t for t in result if t["set"] == "held out"]
    misses = {(t["gpu"], t["model"], t["workload"], t["concurrency"], m)
              for t in held for m, tol in TARGETS.items() if abs(t["error"][m]) > tol}
    assert misses == FRESH_KNOWN_MISSES
    assert 3 * len(held) - len(misses) == 27  # of 33 held-out figures
    for t in result:  # what every row met: throughput within 15 %, TPOT at c <= 8 within 16 %
        assert abs(t["error"]["output_tokens_per_s"]) < 0.15, t
        if t["concurrency"] <= 8:
            assert abs(t["error"]["tpot_ms"]) < 0.16, t


def test_the_new_media_constants_are_the_fit_of_the_designated_rows_only():
    import math

    data, k = fresh_rows(), speed_constants("0.26.0")
    fit_rows = [r for r in data if r["fit"]]

    def loss(c) -> float:
        return sum(math.log1p(e) ** 2 for r in fit_rows for e in errors(r, c).values())

    refit, _ = fit(data, k, FRESH_FITTED, fit_hosts=False)
    assert loss(k) <= 1.01 * loss(refit)
    moved, _ = fit([dict(r, fit=not r["fit"]) for r in data], k, FRESH_FITTED, fit_hosts=False)
    assert any(abs(getattr(moved, n) / getattr(k, n) - 1) > 0.05 for n in FRESH_FITTED)  # the held-out rows differ


def test_the_recorded_predictions_scored_before_any_fit():
    """The blind score: the file recorded before the visit against what it measured (no constant fitted yet)."""
    import json

    from speed_fresh import compare

    fresh = ROOT / "docs/validation/speed_fresh"
    _, summary = compare(json.loads((fresh / "predictions.json").read_text()), fresh)
    assert summary == {"fit": [4, 6], "held out": [19, 33]}
