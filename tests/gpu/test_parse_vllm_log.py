"""The calibration log parser on real vLLM 0.26.0 log excerpts from the GPU machine (CPU-only test)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "docs" / "validation" / "logs"
sys.path.insert(0, str(ROOT / "benchmarks" / "gpu"))
from parse_vllm_log import parse_log  # noqa: E402


def _parse(name: str) -> dict:
    return parse_log((LOGS / f"{name}.log").read_text())


def test_v2_runner_profile_and_runtime_oom_in_vision_encoder():
    row = _parse("A1_v2_7b_bf16_eager_u90_default_worstvideo")
    assert row["runner"] == "v2" and row["verdict"] == "ready"
    assert (row["weights_gib"], row["torch_peak_gib"], row["non_torch_gib"]) == (15.67, 1.06, 0.23)
    assert (row["available_kv_gib"], row["kv_tokens"], row["max_concurrency"]) == (54.3, 1016672, 7.94)
    assert row["requested_gib"] == 71.26 and row["max_model_len"] == 128000
    assert "encoder_budget_tokens" not in row  # the V2 runner does not profile the encoder
    assert row["requests"]["worst_video"].startswith("FAILED")
    assert row["request_oom_in_vision_encoder"] is True


def test_v1_runner_profiles_worst_case_video():
    row = _parse("A2_v1_7b_bf16_eager_u90_default_worstvideo")
    assert row["runner"] == "v1"
    assert row["encoder_budget_tokens"] == 114688 and row["encoder_profile"] == "1 video"
    assert row["torch_peak_gib"] == 13.23 and row["kv_tokens"] == 788864
    assert row["requests"]["worst_video"].startswith("ok") and row["request_oom_in_vision_encoder"] is False


def test_cuda_graph_estimate_and_capture():
    row = _parse("A5_v1_7b_fp16_graphs_u92_L32k_img4_vid0")
    assert row["cudagraph_estimate_gib"] == 0.46 and row["graph_capture_gib"] == 0.59


def test_start_failure_is_recognised():
    row = _parse("B4_v1_32b_bf16_eager_u90_default")
    assert row["verdict"] == "start_failed"
    assert "No available memory for the cache blocks" in row["failure"]
    assert row["available_kv_gib"] == -4.73 and "kv_tokens" not in row


@pytest.mark.parametrize("text,verdict", [("nothing useful", "unknown"),
                                          ("PROBE START FAILED after 9.1s ModuleNotFoundError: x", "start_failed")])
def test_verdict_without_figures(text, verdict):
    assert parse_log(text)["verdict"] == verdict
