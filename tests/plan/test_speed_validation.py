"""The speed model re-predicts every measured `vlmctl bench` run (CPU-only): fitted rows and held-out rows.

Targets (docs/validation.md § 11): held out, output tokens/s and TPOT within ±15 %, TTFT within ±25 %. The misses
are listed here with their reason, so a change that fixes or breaks a row shows up.
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
    # 3B on the H200 serves ~47 requests/s at c=32: first tokens wait on the API server far more than the model's
    # per-request queue (fitted 0 on 7B and 32B) allows; the throughput follows from the short TTFT
    ("H200", "3B", "image@1280x720", 8, "ttft_ms"), ("H200", "3B", "image@1280x720", 32, "ttft_ms"),
    ("H200", "3B", "image@1280x720", 32, "output_tokens_per_s"),
    # the H100 runs were on another host, whose API server took ~3x longer per queued request than the H200's
    ("H100", "7B", "image@1280x720", 8, "ttft_ms"), ("H100", "7B", "image@1280x720", 32, "ttft_ms"),
    ("H100", "7B", "image@1280x720", 32, "output_tokens_per_s"),
    # the field report's eager launch, max_num_seqs 2: TPOT fell from 34.6 ms alone to 26 ms with a second
    # sequence (eager launch overhead overlapping); the model keeps the alone figure
    ("H100 field", "7B", "image@1280x720", 8, "tpot_ms"), ("H100 field", "7B", "image@1280x720", 32, "tpot_ms"),
    ("H100 field", "7B", "image@1280x720", 8, "output_tokens_per_s"),
    ("H100 field", "7B", "image@1280x720", 32, "output_tokens_per_s"),
}


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
