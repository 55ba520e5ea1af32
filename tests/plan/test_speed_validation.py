"""The speed model re-predicts every measured `vlmctl bench` run (CPU-only): 19 with cached media, 37 with new.

All 56 runs are the fit set of the committed constants (revision 6, the default, chosen over revision 5 by
leave-one-visit-out cross-validation: tests/plan/test_speed_cv.py). The first 48 runs (docs/validation.md § 11) are
the fit set of revision 5: two held-out reports
used the 19 cached-media runs; the 13 fresh-media runs, the 8 of the next visit and the 8 of the held-out visit
after revision 4 were each a held-out test of the revision before (their blind scores, from the predictions
recorded before they ran, are checked below and in tests/gpu/test_speed_visits.py). None is held out any more; the
last held-out test, docs/validation/speed_final/, is scored in tests/gpu/test_speed_visits.py. The rows outside
the targets (output tokens/s and TPOT ±15 %, TTFT ±25 %) are listed here with their reason, so a change that fixes or
breaks a row shows up. The rows are predicted as the bench ran them: media repeated (prefix-cache hits) or new,
measured prompt and output lengths, the API server's host factor of the machine they ran on.
"""
from __future__ import annotations

import sys
from pathlib import Path

from vlmctl.engines.vllm.speed import SPEED_V026_REV5, speed_constants

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from speed_fit import (CANDIDATE_FITTED, HOST_FACTOR, TARGETS, all_56, all_measured, errors,  # noqa: E402
                       final_rows, fit, fresh_rows, held_rows, next_rows, score, table)

#: (row, metric) pairs outside the targets with revision 5 on its 48 rows, and why.
KNOWN_MISSES = {
    # cached media at c=32 (7B): the simulation's API server shares its interpreter among the requests in it and
    # their streams; with the image cached it overstates the wait of a burst's requests (TTFT +42 %)
    ("H200", "7B", "image@1280x720", 32, "ttft_ms"),
    # text at c=32: the per-sequence cost per step (fitted on 3B's cached image rows) is too high for 7B's text rows
    # (TPOT +20 % in both visits)
    ("H200", "7B", "text", 32, "tpot_ms"), ("H200 fresh", "7B", "text new", 32, "tpot_ms"),
    # a text request alone: 17-20 ms to its first token; the fixed latency per request, fitted with the image rows,
    # is too long for it (+41 %)
    ("H200 fresh", "7B", "text new", 1, "ttft_ms"),
    # cached video at c=1: two videos recur, each of 8 frames: the event loop's fixed cost per item was fitted on
    # single images (-36 %)
    ("H200", "7B", "video@640x360x8", 1, "ttft_ms"),
    # the field report's eager launch: a step is the host CPU launching kernels; per-request TPOT spans 21-45 ms
    # within every level whatever the batch, so one per-layer cost sits between the levels' medians
    ("H100 field", "7B", "image@1280x720", 1, "ttft_ms"), ("H100 field", "7B", "image@1280x720", 32, "tpot_ms"),
    # new media at c=8-32: the encoder's steps are spread over the decode steps evenly in the simulation; the
    # measured TPOT depends on how the encoder passes fell (video and the large images: TPOT under)
    ("H200 fresh", "7B", "video@640x360x8 new", 8, "tpot_ms"), ("H200 next", "7B", "image@1920x1080 new", 8, "tpot_ms"),
    ("H200 next", "Q3-8B", "image@1280x720 new", 32, "tpot_ms"),
    ("H200 held", "Q3-8B", "image@1600x1200 new", 16, "tpot_ms"),
    # a 2 MP image alone: the host's time per megapixel went into the encoder and the fixed latency (-36 %)
    ("H200 next", "7B", "image@1920x1080 new", 1, "ttft_ms"),
    # Qwen3-VL-8B: its whole-image ViT on 1.9 MP (TTFT +33/+58 %; c=16 is mostly the start-up wave of 16 requests
    # sent together) and a 0.23 MP image with 300 text tokens alone (TTFT +46 %, tok/s -16 %)
    ("H200 held", "Q3-8B", "image@1600x1200 new", 4, "ttft_ms"),
    ("H200 held", "Q3-8B", "image@1600x1200 new", 16, "ttft_ms"),
    ("H200 held", "Q3-8B", "image@640x360 new", 1, "ttft_ms"),
    ("H200 held", "Q3-8B", "image@640x360 new", 1, "output_tokens_per_s"),
    ("H200 next", "Q3-8B", "image@1280x720 new", 8, "output_tokens_per_s"),
    # 3B 800x600 at c=16: measured 16.6 requests/s, between 9.2 at c=4 and 24.8 at c=32; the simulation's API
    # server runs 20 at c=16 (+29 %)
    ("H200 held", "3B", "image@800x600 new", 16, "output_tokens_per_s"),
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


#: Revision 6's misses on all 56 rows: revision 5's (the reasons above) but five, and two of its own.
KNOWN_MISSES_REV6 = KNOWN_MISSES - {
    # inside the targets with revision 6's terms: a text request alone (the latency per media item leaves text a
    # shorter hand-off) and four new-media rows at c=8-16 (the encoder budget)
    ("H200 fresh", "7B", "text new", 1, "ttft_ms"),
    ("H200 fresh", "7B", "video@640x360x8 new", 8, "tpot_ms"), ("H200 next", "7B", "image@1920x1080 new", 8, "tpot_ms"),
    ("H200 held", "Q3-8B", "image@1600x1200 new", 16, "tpot_ms"),
    ("H200 next", "Q3-8B", "image@1280x720 new", 8, "output_tokens_per_s"),
} | {
    # its own: the encoder budget (fitted where 7B's large new images missed) spreads a wave's new 1280x720 images
    # over more steps inside the others' decodes than 3B at c=8 and 32B at c=32 measured (TPOT +18 %, +15 %)
    ("H200 fresh", "3B", "image@1280x720 new", 8, "tpot_ms"),
    ("H200 fresh", "32B", "image@1280x720 new", 32, "tpot_ms"),
}


def test_every_measured_row_is_repredicted_and_the_misses_are_the_known_ones():
    result = table(all_56(), speed_constants("0.26.0"))
    misses = {(t["gpu"], t["model"], t["workload"], t["concurrency"], m)
              for t in result for m, tol in TARGETS.items() if abs(t["error"][m]) > tol}
    assert misses == KNOWN_MISSES_REV6
    assert 3 * len(result) - len(misses) == 153  # of 168 figures (revision 5 on the same 56 rows: 147)
    assert len(misses - KNOWN_MISSES) == 2


def test_revision_5_re_predicts_its_48_rows_with_its_known_misses():
    result = table(all_measured(), SPEED_V026_REV5)
    assert len(result) == 48 and all(t["set"] == "fit" for t in result)
    misses = {(t["gpu"], t["model"], t["workload"], t["concurrency"], m)
              for t in result for m, tol in TARGETS.items() if abs(t["error"][m]) > tol}
    assert misses == KNOWN_MISSES
    assert 3 * len(result) - len(misses) == 126  # of 144 figures (revision 4 on the same 48 rows: 118)
    for t in result:
        if t["gpu"] == "H200" and t["workload"] != "text":  # cached-image TPOT is memory traffic: within 15 %
            assert abs(t["error"]["tpot_ms"]) < 0.15, t
        assert abs(t["error"]["output_tokens_per_s"]) < 0.30, t


def test_the_committed_constants_are_the_fit_of_all_measured_rows():
    """Refitting revision 6 from the committed constants (rounded to 3 digits) on all 56 rows lowers the fit's loss
    by under 1 %."""
    import math

    data, k = all_56(), speed_constants("0.26.0")

    def loss(c, hosts) -> float:
        return sum(math.log1p(e) ** 2 for r in data for e in errors(r, c, hosts).values())

    refit, hosts = fit(data, k, names=CANDIDATE_FITTED, step=0.05)
    assert loss(k, HOST_FACTOR) <= 1.01 * loss(refit, hosts)
    assert set(CANDIDATE_FITTED) <= set(vars(k))
    assert 1.4 < HOST_FACTOR["h100-host"] < 2.2  # the H100 host's API server, slower than the H200 host's
    assert k.gap_ms <= 3  # the bench client's measured gap, not a fitted term


def test_the_fresh_rows_keep_what_was_designated_before_they_ran():
    designated = [r["designated"] for r in fresh_rows()]
    assert len(designated) == 13 and designated.count("fit") == 2
    designated = [r["designated"] for r in next_rows()]
    assert len(designated) == 8 and designated.count("fit") == 2
    designated = [r["designated"] for r in held_rows()]
    assert len(designated) == 8 and designated.count("fit") == 1


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
    assert k.media_new_item_ms + k.media_new_latency_ms > 10


def test_the_revision_6_candidate_against_revision_5_on_all_56_rows():
    """In-sample only (the candidate is fitted on all 56 rows, revision 5 on the first 48): the candidate's two
    terms fix the last visit's large-image TPOT misses; its values are revision 6, the default."""
    import dataclasses
    import math

    from vlmctl.engines.vllm.speed import SPEED_V026, SPEED_V026_CANDIDATE

    data = all_56()
    assert len(data) == 56 and [r["designated"] for r in final_rows()].count("fit") == 1
    assert speed_constants("0.26.0") is SPEED_V026
    assert dataclasses.replace(SPEED_V026, source="") == dataclasses.replace(SPEED_V026_CANDIDATE, source="")
    assert SPEED_V026_REV5.encoder_budget == SPEED_V026_REV5.media_item_latency_ms == 0
    rev5, cand = table(data, SPEED_V026_REV5), table(data, SPEED_V026_CANDIDATE)
    assert (score(rev5), score(cand)) == (147, 153)  # of 168 figures
    final = [t for t in cand if t["gpu"] == "H200 final"]
    assert all(abs(t["error"]["tpot_ms"]) <= 0.15 for t in final)

    def loss(k) -> float:
        return sum(math.log1p(e) ** 2 for r in data for e in errors(r, k).values())

    assert loss(SPEED_V026_CANDIDATE) < 0.85 * loss(SPEED_V026_REV5)
    # without its two terms the candidate's constants lose what they gained: the terms, not the refit, carry it
    bare = dataclasses.replace(SPEED_V026_CANDIDATE, encoder_budget=0.0, media_item_latency_ms=0.0)
    assert score(table(data, bare)) < score(cand)


#: sha256 of revision 5's predictions of the 56 rows (every field, floats to 10 significant digits), as the
#: simulation computed them before the revision-7 candidate's term was added (commit 375973c).
REV5_DIGEST = "d1f5e6c0b95ad4fe96d20456c534bca8c8db73002ef7d9d3171a1b5a3d5fc102"


def _digest(predictions) -> str:
    import dataclasses
    import hashlib

    text = "\n".join(" ".join(f"{v:.10g}" if isinstance(v, float) else str(v) for v in dataclasses.astuple(sp))
                     for sp in predictions)
    return hashlib.sha256(text.encode()).hexdigest()


def test_the_host_spread_at_zero_is_revision_5_exactly():
    """Revision 5's predictions are unchanged, and the seeded path (each request's own factor and latency, the
    host's jobs ending in order with their own latency) at host_spread 0 gives exactly the unseeded path's figures."""
    from speed_fit import constants_for, predict

    from vlmctl.engines.vllm.speed import SPEED_V026_REV7_CANDIDATE
    from vlmctl.plan import speed as spd

    data = all_56()
    assert _digest(predict(r, SPEED_V026_REV5) for r in data) == REV5_DIGEST
    assert SPEED_V026_REV5.host_spread == 0 and SPEED_V026_REV7_CANDIDATE.host_spread > 0
    for r in data:
        k = constants_for(r, SPEED_V026_REV5)
        args = (r["_spec"], r["_replica"], r["plan"].data_parallel_size, r["_work"], r["concurrency"], k, None,
                r["requests"], None)
        plain, seeded = spd._simulate(*args, None), spd._simulate(*args, 0)
        assert plain[:5] == seeded[:5], (r["gpu"], r["workload"], r["concurrency"])


def test_the_revision_7_candidate_is_deterministic_and_rescored():
    """The revision-7 candidate (the revision-6 candidate's terms and a measured spread of each request's host
    time, fitted on all 56 rows, in-sample): the same inputs give the same figures; the spread moves them."""
    import dataclasses

    from speed_fit import predict

    from vlmctl.engines.vllm.speed import SPEED_V026_REV7_CANDIDATE as K7

    data = all_56()
    assert score(table(data, K7)) == 148  # of 168 figures (revision 5 147, the revision-6 candidate 153)
    row = next(r for r in data if r["gpu"] == "H200 final" and r["workload"] == "image@1440x1080" and
               r["concurrency"] == 24)
    again = [predict(row, K7) for _ in range(2)]
    assert again[0] == again[1]
    assert predict(row, dataclasses.replace(K7, host_spread=0.0)).ttft_ms > 1.05 * again[0].ttft_ms
