"""Plan → `vllm serve` argv + env (the launch spec's head part): snapshots for the planner's scenarios, and
each plan field's flag.

Regenerate the snapshots with ``UPDATE_SNAPSHOT=1 pytest tests/launch/test_argv.py``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from vlmctl.plan import make_plan
from vlmctl.plan.schema import GpuMemory, MediaLimits, NodePlacement, Plan
from vlmctl.launch import build_launch


def vllm_argv(plan, host="127.0.0.1", port=8000):
    return build_launch(plan, host=host, port=port).vllm_argv


def vllm_env(plan, api_key=None):
    return build_launch(plan).driver_env(api_key=api_key)

SNAPSHOTS = Path(__file__).parent / "snapshots"
SCENARIOS = {
    "7b-1xh100": ("Qwen/Qwen2.5-VL-7B-Instruct", "h100-80gb:1"),
    "72b-2x8-2080ti": ("Qwen/Qwen2.5-VL-72B-Instruct", "rtx-2080-ti:8,rtx-2080-ti:8"),
    "3b-awq-2x2": ("Qwen/Qwen2.5-VL-3B-Instruct-AWQ", "rtx-2080-ti:2,rtx-2080-ti:2"),
}
#: Layouts pinned so the launch across two nodes stays what the test is about (the planner itself picks replicas).
PINNED = {"3b-awq-2x2": {"tensor_parallel_size": 2, "pipeline_parallel_size": 2}}


#: The snapshots were checked against vLLM 0.26 runs (the release the GPU machine measures).
SNAPSHOT_VLLM = "0.26.0"


def _check_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("UPDATE_SNAPSHOT") == "1" or not path.exists():
        path.write_text(text)
        if os.environ.get("UPDATE_SNAPSHOT") != "1":
            pytest.fail(f"snapshot {path.name} was missing and has been written; re-run")
    assert text == path.read_text(), f"{path.name} changed; UPDATE_SNAPSHOT=1 to accept"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_planner_scenarios_snapshot(name):
    model, gpus = SCENARIOS[name]
    result = make_plan(model, gpus=gpus, vllm_version=SNAPSHOT_VLLM, **PINNED.get(name, {}))
    assert result.ok and result.plan is not None, result.findings
    spec = build_launch(result.plan)
    env = spec.driver_env(api_key="s3cr3t-k")
    _check_snapshot(name, f"# {model} on {gpus}\n{spec.vllm_shell(env)}\n")
    assert env["VLLM_API_KEY"] == "s3cr3t-k" and "s3cr3t-k" not in spec.vllm_argv + [spec.vllm_shell(env)]
    _assert_parses(spec.vllm_argv, result.plan.vllm_version)


def test_two_node_plans_use_ray_and_every_flag_matches_the_plan():
    plan = make_plan(*SCENARIOS["3b-awq-2x2"][:1], gpus=SCENARIOS["3b-awq-2x2"][1], vllm_version=SNAPSHOT_VLLM,
                     **PINNED["3b-awq-2x2"]).plan
    argv = vllm_argv(plan)
    flags = _flags(argv)
    assert flags["--distributed-executor-backend"] == "ray"
    assert flags["--tensor-parallel-size"] == str(plan.tensor_parallel_size) == "2"
    assert flags["--pipeline-parallel-size"] == str(plan.pipeline_parallel_size) == "2"
    assert flags["--max-model-len"] == str(plan.max_model_len)
    assert flags["--max-num-seqs"] == str(plan.max_num_seqs)
    assert flags["--max-num-batched-tokens"] == str(plan.max_num_batched_tokens)
    assert json.loads(flags["--limit-mm-per-prompt"]) == plan.limit_mm_per_prompt
    assert json.loads(flags["--media-io-kwargs"]) == {"video": {"num_frames": plan.media_limits.max_video_frames}}
    assert json.loads(flags["--mm-processor-kwargs"])["max_pixels"] == plan.media_limits.max_pixels
    assert flags["--quantization"] == plan.quantization
    assert flags["--dtype"] == plan.dtype
    if plan.pp_layer_partition:
        assert vllm_env(plan)["VLLM_PP_LAYER_PARTITION"] == ",".join(map(str, plan.pp_layer_partition))


def _hand_plan(**over) -> Plan:
    gpu = GpuMemory(node="n0", gpu_index=0, gpu_type="a100-80gb", stage=0, tp_rank=0, layers=28, total_gib=79.2,
                    requested_gib=71.3, weights_gib=15.6, activation_gib=4.0, non_torch_gib=0.5, cudagraph_gib=0.0,
                    encoder_runtime_gib=0.0, kv_cache_gib=51.2, kv_blocks=1000)
    base = dict(
        model="Qwen/Qwen2.5-VL-7B-Instruct", model_path="/models/qwen7b", served_model_name="qwen7b",
        tensor_parallel_size=1, pipeline_parallel_size=1, dtype="bfloat16", max_model_len=32768,
        gpu_memory_utilization=0.9, max_num_seqs=8, max_num_batched_tokens=8192,
        limit_mm_per_prompt={"image": 2, "video": 0}, nodes=[NodePlacement(name="n0", gpu_type="a100-80gb",
                                                                              gpu_ids=[0], stages=[0])],
        per_gpu=[gpu], kv_cache_tokens=16000, max_concurrency=0.5,
        media_limits=MediaLimits(max_pixels=1003520, max_images=2, max_videos=0, max_video_frames=0,
                                 encoder_tokens=1280),
        decode_tokens_per_s_bound=100.0,
    )
    base.update(over)
    return Plan(**base)


def test_hand_plan_single_gpu_minimal_flags():
    plan = _hand_plan()
    argv = vllm_argv(plan, host="0.0.0.0", port=9000)
    assert argv[:3] == ["vllm", "serve", "/models/qwen7b"]
    flags = _flags(argv)
    assert flags["--host"] == "0.0.0.0" and flags["--port"] == "9000"
    assert "--distributed-executor-backend" not in flags  # one GPU: vLLM's uni executor
    assert "--media-io-kwargs" not in flags  # no video allowed -> no frame setting
    assert "--enforce-eager" not in argv and "--quantization" not in flags and "--kv-cache-memory-bytes" not in flags
    env = vllm_env(plan)
    assert env["VLLM_WORKER_MULTIPROC_METHOD"] == "spawn"
    assert "VLLM_PP_LAYER_PARTITION" not in env and "VLLM_USE_V2_MODEL_RUNNER" not in env and "VLLM_API_KEY" not in env


def test_hand_plan_every_optional_field_reaches_argv_or_env():
    plan = _hand_plan(
        tensor_parallel_size=2, pipeline_parallel_size=2, pp_layer_partition=[15, 13], model_runner="v1",
        kv_cache_memory_bytes=8 * 2**30, enforce_eager=True, quantization="awq_marlin", dtype="float16",
        kv_cache_dtype="fp8", mm_encoder_tp_mode="data", mm_processor_kwargs={"max_pixels": 501760},
        distributed_executor_backend="mp", env={"NCCL_DEBUG": "WARN"},
        limit_mm_per_prompt={"image": 1, "video": 1},
        media_limits=MediaLimits(max_pixels=501760, max_images=1, max_videos=1, max_video_frames=12,
                                 encoder_tokens=2000),
    )
    spec = build_launch(plan, launcher=["python3", "-m", "vllm.entrypoints.cli.main"])
    env = spec.driver_env()
    assert spec.vllm_argv[:4] == ["python3", "-m", "vllm.entrypoints.cli.main", "serve"]
    flags = _flags(spec.vllm_argv)
    assert flags["--kv-cache-memory-bytes"] == str(8 * 2**30)
    assert flags["--kv-cache-dtype"] == "fp8"
    assert flags["--mm-encoder-tp-mode"] == "data"
    assert flags["--distributed-executor-backend"] == "mp"  # one node: the plan's own backend
    assert json.loads(flags["--mm-processor-kwargs"]) == {"max_pixels": 501760}
    assert json.loads(flags["--media-io-kwargs"]) == {"video": {"num_frames": 12}}
    assert "--enforce-eager" in spec.vllm_argv
    assert env["VLLM_PP_LAYER_PARTITION"] == "15,13"
    assert env["VLLM_USE_V2_MODEL_RUNNER"] == "0"
    assert env["NCCL_DEBUG"] == "WARN"
    shell = spec.vllm_shell(env)
    assert "export VLLM_PP_LAYER_PARTITION=15,13" in shell and "--enforce-eager" in shell


def _flags(argv: list[str]) -> dict[str, str]:
    out = {}
    for i, tok in enumerate(argv):
        if tok.startswith("--") and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            out[tok] = argv[i + 1]
    return out


def _assert_parses(argv: list[str], vllm_version: str) -> None:
    from vlmctl.engines.vllm.serve_flags import serve_flags

    unknown = {tok for tok in argv if tok.startswith("--")} - serve_flags(vllm_version).long
    assert not unknown, f"flags not in vLLM 0.26: {unknown}"
    for tok in argv:
        if tok.startswith("{"):
            json.loads(tok)


def test_data_parallel_across_nodes_places_the_heads_replicas_locally_and_the_rest_through_ray():
    nodes = [NodePlacement(name="a", gpu_type="a100-80gb", gpu_ids=[0, 1], stages=[0], dp_ranks=[0, 1]),
             NodePlacement(name="b", gpu_type="a100-80gb", gpu_ids=[0], stages=[0], dp_ranks=[2])]
    plan = _hand_plan(data_parallel_size=3, nodes=nodes, distributed_executor_backend="ray")
    flags = _flags(vllm_argv(plan))
    assert (flags["--data-parallel-size"], flags["--data-parallel-size-local"]) == ("3", "2")
    assert flags["--data-parallel-backend"] == "ray"
    one_node = _flags(vllm_argv(_hand_plan(data_parallel_size=2, nodes=[nodes[0]])))
    assert one_node["--data-parallel-size"] == "2" and "--data-parallel-backend" not in one_node
