"""The speed model re-predicts every measured `vlmctl bench` run (CPU-only): 19 with cached media, 21 with new.

All 40 runs (docs/validation.md § 11) are the fit set of the committed constants (revision 4): two held-out reports
used the 19 cached-media runs, the 13 fresh-media runs and the 8 of the next visit were each a held-out test of the
revision before (their blind scores, from the predictions recorded before they ran, are checked below). None is held
out any more; the next held-out test is docs/validation/speed_held/ (tests/gpu/test_speed_held.py). The rows outside
the targets (output tokens/s and TPOT ±15 %, TTFT ±25 %) are listed here with their reason, so a change that fixes or
breaks a row shows up. The rows are predicted as the bench ran them: media repeated (prefix-cache hits) or new,
measured prompt and output lengths, the API server's host factor of the machine they ran on.
"""
from __future__ import annotations

import sys
from pathlib import Path

from vlmctl.engines.vllm.speed import speed_constants

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from speed_fit import (FITTED, HOST_FACTOR, TARGETS, all_measured, errors, fit, fresh_rows,  # noqa: E402
                       next_rows, table)

#: (row, metric) pairs outside the targets, and why.
KNOWN_MISSES = {
    # TTFT with cached media is the API server's time per request and how the closed loop groups the arrivals: the
    # requests of a level run in waves that start together (the per-request records), and 3B's waves queue longer
    # than 7B's on the same host: one time per request fits neither (7B over); the shorter predicted TTFT overstates
    # 3B's throughput
    ("H200", "3B", "image@1280x720", 32, "output_tokens_per_s"),
    ("H200", "7B", "image@1280x720", 8, "ttft_ms"), ("H200", "7B", "image@1280x720", 32, "ttft_ms"),
    # cached video at c=1: two videos recur, each of 8 frames: the event loop's fixed cost per item was fitted on
    # single images (-28 %)
    ("H200", "7B", "video@640x360x8", 1, "ttft_ms"),
    # the field report's eager launch: a step is the host CPU launching kernels; per-request TPOT spans 21-45 ms
    # within every level whatever the batch, so one per-layer cost sits between the levels' medians
    ("H100 field", "7B", "image@1280x720", 1, "ttft_ms"), ("H100 field", "7B", "image@1280x720", 8, "ttft_ms"),
    ("H100 field", "7B", "image@1280x720", 8, "tpot_ms"), ("H100 field", "7B", "image@1280x720", 32, "tpot_ms"),
    ("H100 field", "7B", "image@1280x720", 8, "output_tokens_per_s"),
    # new media at c=8: the model spreads the others' prefills evenly over time; in a wave most of them run before
    # the median request's first token (TPOT over, TTFT under)
    ("H200 fresh", "32B", "image@1280x720 new", 8, "tpot_ms"), ("H200 fresh", "3B", "image@1280x720 new", 8, "tpot_ms"),
    ("H200 fresh", "7B", "image@1280x720 new", 8, "tpot_ms"), ("H200 next", "7B", "image@640x480 new", 8, "tpot_ms"),
    ("H200 next", "Q3-8B", "image@1280x720 new", 8, "ttft_ms"),
    # text at c=32: 53 ms in the fresh visit, 107 ms in the cached one (same GPU kind, model and workload): the
    # grouping of arrivals differed between the two runs; the fit sits between them
    ("H200 fresh", "7B", "text new", 32, "ttft_ms"),
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


def test_every_measured_row_is_repredicted_and_the_misses_are_the_known_ones():
    result = table(all_measured(), speed_constants("0.26.0"))
    assert len(result) == 40 and all(t["set"] == "fit" for t in result)
    misses = {(t["gpu"], t["model"], t["workload"], t["concurrency"], m)
              for t in result for m, tol in TARGETS.items() if abs(t["error"][m]) > tol}
    assert misses == KNOWN_MISSES
    assert 3 * len(result) - len(misses) == 105  # of 120 figures
    for t in result:
        if t["gpu"] == "H200":  # TPOT with cached media is memory traffic: within 15 % on every H200 row
            assert abs(t["error"]["tpot_ms"]) < 0.15, t
        assert abs(t["error"]["output_tokens_per_s"]) < 0.20, t


def test_the_committed_constants_are_the_fit_of_all_measured_rows():
    """Refitting from the committed constants (rounded to 3 digits) lowers the fit's loss by under 1 %."""
    import math

    data, k = all_measured(), speed_constants("0.26.0")

    def loss(c, hosts) -> float:
        return sum(math.log1p(e) ** 2 for r in data for e in errors(r, c, hosts).values())

    refit, hosts = fit(data, k, step=0.05)
    assert loss(k, HOST_FACTOR) <= 1.01 * loss(refit, hosts)
    assert set(FITTED) <= set(vars(k))
    assert 1.4 < HOST_FACTOR["h100-host"] < 2.2  # the H100 host's API server, slower than the H200 host's


def test_the_fresh_rows_keep_what_was_designated_before_they_ran():
    designated = [r["designated"] for r in fresh_rows()]
    assert len(designated) == 13 and designated.count("fit") == 2
    designated = [r["designated"] for r in next_rows()]
    assert len(designated) == 8 and designated.count("fit") == 2


def test_the_recorded_predictions_scored_before_any_fit():
    """The blind score: the file recorded before the visit against what it measured (no constant fitted yet)."""
    import json

    from speed_fresh import compare

    fresh = ROOT / "docs/validation/speed_fresh"
    _, summary = compare(json.loads((fresh / "predictions.json").read_text()), fresh)
    assert summary == {"fit": [4, 6], "held out": [19, 33]}


def test_the_next_visit_scored_before_any_fit():
    """The next visit's blind score (recorded predictions of revision 3 against what it measured)."""
    import json

    from speed_next import compare

    nxt = ROOT / "docs/validation/speed_next"
    _, summary = compare(json.loads((nxt / "predictions.json").read_text()), nxt)
    assert summary == {"fit": [6, 6], "held out": [10, 18]}


def test_a_new_image_costs_a_fixed_time_besides_its_pixels():
    """Revision 4's reason, on the records: at c = 1 a 0.31 MP new image (7B) took over a third of the time of a
    2.07 MP one, far more than its share of pixels (0.15), and more than 4 times a text request's first token."""
    import json
    import statistics

    def ttft(path, c=1):
        level = next(lv for lv in json.loads(path.read_text())["levels"] if lv["concurrency"] == c)
        return statistics.median(r["ttft"] for r in level["requests_detail"] if r["ok"])

    nxt, fresh = ROOT / "docs/validation/speed_next", ROOT / "docs/validation/speed_fresh"
    small, large = ttft(nxt / "bench_7B_640x480.json"), ttft(nxt / "bench_7B_1920x1080.json")
    text = ttft(fresh / "bench_7B_text.json")
    assert small / large > 0.33 and small > 4 * text
    k = speed_constants("0.26.0")
    assert k.media_new_item_ms > 10 and k.media_new_latency_ms > 10
