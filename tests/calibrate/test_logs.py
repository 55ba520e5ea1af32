"""vLLM's start-up lines → figures, with each release's patterns (0.26 lines recorded on the H100; 0.33 lines as its
source prints them: utils/mem_utils.py MemoryProfilingResult.__repr__, v1/worker/gpu_worker.py
determine_available_memory, v1/core/kv_cache_utils.py update_kv_cache_capacity)."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.calibrate.conftest import LOGS
from vlmctl.calibrate.logs import logged_config, logged_version, parse_log
from vlmctl.engines.vllm import profile

V033 = """PROBE vllm=0.33.0 torch=2.14.0+cu130 V2_RUNNER_ENV=None
(EngineCore pid=7) INFO 11-29 12:00:01 [v1/worker/gpu/model_runner.py:429] Model loading took 15.67 GiB memory and 0.712000 seconds
(EngineCore pid=7) INFO 11-29 12:00:03 [v1/worker/gpu/mm/encoder_runner.py:132] Encoder cache will be initialized with a budget of 114688 tokens, and profiled with 1 video items of the maximum feature size.
(EngineCore pid=7) INFO 11-29 12:00:09 [v1/worker/gpu/model_runner.py:1164] Graph capturing finished in 6 secs, took 0.91 GiB
(EngineCore pid=7) DEBUG 11-29 12:00:09 [v1/worker/gpu_worker.py:760] Initial free memory: 139.29 GiB; Requested memory: 0.900000 (util), 125.82 GiB
(EngineCore pid=7) DEBUG 11-29 12:00:09 [v1/worker/gpu_worker.py:771] Memory profiling takes 8.10 seconds. Total non KV cache memory: 30.01GiB; torch peak memory increase: 14.05GiB; total consumed (from mem_get_info): 16.20GiB; weights memory: 15.67GiB.
(EngineCore pid=7) INFO 11-29 12:00:09 [v1/worker/gpu_worker.py:772] Available KV cache memory: 94.90 GiB
(EngineCore pid=7) INFO 11-29 12:00:09 [v1/worker/gpu_worker.py:786] CUDA graph memory profiling is enabled (default since v0.21.0). The current --gpu-memory-utilization=0.9000 is equivalent to --gpu-memory-utilization=0.8935 without CUDA graph memory profiling. To maintain the same effective KV cache size as before, increase --gpu-memory-utilization to 0.9065. To disable, set VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=0.
(EngineCore pid=7) INFO 11-29 12:00:10 [v1/core/kv_cache_utils.py:1148] GPU KV cache size: 1,776,832 tokens, Maximum concurrency for 128,000 tokens per request: 13.88x
"""


def test_033_lines_give_the_same_figures():
    row = parse_log(V033)
    assert row["vllm_version"] == "0.33.0" and row["runner"] == "v2" and row["verdict"] == "ready"
    assert (row["weights_gib"], row["torch_peak_gib"], row["total_consumed_gib"]) == (15.67, 14.05, 16.2)
    assert row["non_torch_gib"] == 0.29  # non-KV − weights − torch peak: 0.33 no longer logs it
    assert row["cudagraph_estimate_gib"] == 0.91  # (0.9000 − 0.8935) × 125.82 / 0.9
    assert (row["kv_tokens"], row["max_model_len"], row["max_concurrency"]) == (1776832, 128000, 13.88)
    assert row["encoder_budget_tokens"] == 114688 and row["encoder_profile"] == "1 video"
    assert profile("0.33.0").kv_tokens_in(V033) == 1776832


def test_026_log_with_its_config_line():
    text = (LOGS / "A5_v1_7b_fp16_graphs_u92_L32k_img4_vid0.log").read_text()
    assert logged_version(text) == "0.26.0"
    assert logged_config(text)["engine"]["gpu_memory_utilization"] == 0.92
    row = parse_log(text)
    assert row["cudagraph_estimate_gib"] == 0.46 and row["non_torch_gib"] == 0.23 and row["runner"] == "v1"


def test_the_gpu_line_of_the_probe():
    row = parse_log("PROBE gpu=NVIDIA H200 total_bytes=150109880320 cc=9.0 free_bytes=149560000000\n")
    assert (row["gpu_name"], row["total_gib"], row["compute_capability"]) == ("NVIDIA H200", 139.8, "9.0")


@given(st.text(max_size=400))
def test_any_text_parses_to_a_verdict(text):
    assert parse_log(text)["verdict"] in ("ready", "start_failed", "unknown")
