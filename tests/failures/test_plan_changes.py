"""A fix that names a number is itself valid: computed by the planner for the model and GPUs the log names."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vlmctl.failures import explain
from vlmctl.failures.context import LogContext, read_context
from vlmctl.failures.plan_changes import _pow2_divisor, tp_from_heads
from vlmctl.plan import make_plan

HEADS_7B_TP6 = ("INFO 08-01 10:00:00 api_server.py:1] args: Namespace(model='/models/Qwen2.5-VL-7B-Instruct', "
                "tensor_parallel_size=6)\nGPU 0: NVIDIA A100-SXM4-80GB\n"
                "ValueError: Total number of attention heads (28) must be divisible by tensor parallel size (6).\n")


def _valid(model: str, gpu: str, **settings) -> bool:
    result = make_plan(model, gpus=gpu, **settings)
    return result.ok and not [f for f in result.findings if f.severity == "error"]


def test_tp_advice_for_a_known_model_passes_every_planner_rule():
    result = explain(HEADS_7B_TP6)
    change = {k: v["to"] for k, v in result.plan_change.items()}
    tp, pp = change["tensor_parallel_size"], change["pipeline_parallel_size"]
    assert tp * pp <= 6 and 28 % tp == 0 and 16 % tp == 0  # LM heads and the vision tower's 16 heads
    assert _valid("Qwen/Qwen2.5-VL-7B-Instruct", "a100-80gb:6", tensor_parallel_size=tp, pipeline_parallel_size=pp)
    assert "vlmctl plan Qwen/Qwen2.5-VL-7B-Instruct --gpus a100-80gb:6" in result.matches[0].values["advice"]
    assert result.plan_change["tensor_parallel_size"]["from"] == 6  # read from the log


def test_tp_advice_without_a_known_model_never_proposes_an_odd_split():
    # 28 heads at TP 8: the old rule proposed TP 7, which no 16-head vision tower or 4-KV-head model accepts.
    result = explain("ValueError: Total number of attention heads (28) must be divisible by tensor parallel size (8).")
    change = {k: v["to"] for k, v in result.plan_change.items()}
    assert change == {"tensor_parallel_size": 4, "pipeline_parallel_size": 2}


@given(heads=st.integers(1, 256), tp=st.integers(1, 64))
def test_power_of_two_divisor_divides_and_stays_below_tp(heads, tp):
    d = _pow2_divisor(heads, tp)
    assert heads % d == 0 and 1 <= d <= tp and d & (d - 1) == 0


@settings(max_examples=30, deadline=None)
@given(heads=st.integers(1, 128), tp=st.integers(2, 16))
def test_tp_change_without_planner_fits_the_gpus_the_log_used(heads, tp):
    change = tp_from_heads({"heads": heads, "tp": tp}, None, LogContext())
    new_tp, pp = change["tensor_parallel_size"], change.get("pipeline_parallel_size", 1)
    assert heads % new_tp == 0 and new_tp * pp <= tp


def test_startup_oom_advice_is_the_planners_for_the_gpus_in_the_log():
    log = ("INFO Initializing an LLM engine (v0.6.3) with config: model='Qwen/Qwen2.5-VL-72B-Instruct', "
           "tensor_parallel_size=4, pipeline_parallel_size=1\nGPU 0 has a total capacity of 39.38 GiB\n"
           "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.\n")
    result = explain(log)
    assert result.primary == "oom-startup"
    assert result.context["gpu"] == "a100-40gb" and result.context["tensor_parallel_size"] == 4
    to = {k: v["to"] for k, v in result.plan_change.items()}
    assert _valid("Qwen/Qwen2.5-VL-72B-Instruct", "a100-40gb:4", vllm_version="0.6.3", tensor_parallel_size=4,
                  pipeline_parallel_size=1,
                  max_model_len=to["max_model_len"], gpu_memory_utilization=to["gpu_memory_utilization"],
                  max_num_seqs=to["max_num_seqs"],
                  limit_mm_per_prompt={"image": to["limit_mm_per_prompt.image"],
                                       "video": to["limit_mm_per_prompt.video"]})


def test_mm_limit_advice_raises_the_limit_to_what_the_planner_admits():
    log = ("vllm serve Qwen/Qwen2.5-VL-7B-Instruct on an NVIDIA A100 80GB\n"
           "BadRequestError: Error code: 400 - {'message': 'At most 1 image(s) may be provided in one request.'}\n")
    result = explain(log)
    to = {k: v["to"] for k, v in result.plan_change.items()}
    assert to["limit_mm_per_prompt.image"] == 2
    assert _valid("Qwen/Qwen2.5-VL-7B-Instruct", "a100-80gb:1", limit_mm_per_prompt={"image": 2},
                  max_model_len=to["max_model_len"])


def test_context_reads_model_gpu_layout_version_and_engine():
    ctx = read_context("INFO 02-26 11:14:53 llm_engine.py:234] Initializing a V0 LLM engine (v0.7.3) with config: "
                       "model='Qwen/Qwen2.5-VL-32B-Instruct-AWQ', max_seq_len=8192, tensor_parallel_size=2, "
                       "pipeline_parallel_size=2 ... NVIDIA GeForce RTX 4090")
    assert ctx.as_dict() == {"model": "Qwen/Qwen2.5-VL-32B-Instruct-AWQ", "gpu": "rtx-4090",
                             "tensor_parallel_size": 2, "pipeline_parallel_size": 2, "max_model_len": 8192,
                             "vllm_version": "0.7.3", "engine": "v0", "model_params_b": 32.0, "weight_bytes": 0.5,
                             "launch_gpus": 4}
    assert ctx.gpu_count == 4
    # a GPTQ checkpoint is not the catalogue's model: no planner advice for it
    assert read_context("Qwen2.5-VL-72B-Instruct-GPTQ-Int4 on 4x V100").model is None


@pytest.mark.parametrize("line", [
    "GPU 0 has a total capacity of 79.15 GiB of which 752.31 MiB is free.",
    "GPU 0 has a total capacty of 79.33 GiB of which 351.81 MiB is free.",  # torch 2.1/2.2's spelling
    "Tried to allocate 160.00 MiB (GPU 0; 79.35 GiB total capacity; 78.58 GiB already allocated;",  # torch <= 2.0
])
def test_context_reads_the_gpu_size_from_every_torch_oom_wording(line):
    ctx = read_context(line)
    assert 79 < ctx.gpu_total_gib < 80
    assert ctx.gpu is not None  # an 80 GB GPU of the catalogue, by its size
