"""Wordings taken from the projects' sources (torch c10d, NCCL, safetensors, transformers, huggingface_hub), and a
root cause ranked above the failures it sets off. The log lines are written here from those messages (synthetic)."""
from __future__ import annotations

import pytest

from vlmctl.failures import explain

_NCCL_SYSTEM = ("torch.distributed.DistBackendError: NCCL error in: ../torch/csrc/distributed/c10d/NCCLUtils.hpp:317, "
                "unhandled system error (run with NCCL_DEBUG=INFO for details), NCCL version 2.21.5")


@pytest.mark.parametrize("line", [
    "torch.distributed.DistNetworkError: The client socket has timed out after 600000ms while trying to connect to "
    "(172.17.0.9, 46229).",                                                      # torch >= 2.2
    "RuntimeError: The client socket has timed out after 600s while trying to connect to (10.0.0.2, 29500).",
    "RuntimeError: The client socket has failed to connect to any network address of (10.0.0.2, 48247).",
    "torch.distributed.DistStoreError: Timed out after 601 seconds waiting for clients. 1/4 clients joined.",
    "RuntimeError: Timed out initializing process group in store based barrier on rank: 0, for key: "
    "store_based_barrier_key:1 (world_size=8, worker_count=1, timeout=0:30:00)",
])
def test_every_torch_store_wording_names_the_rendezvous(line):
    assert explain(line + "\n").primary == "torch-store-timeout"


def test_a_worker_that_cannot_see_the_model_outranks_the_head_waiting_for_it():
    text = ("worker: huggingface_hub.errors.HFValidationError: Repo id must be in the form 'repo_name' or "
            "'namespace/repo_name': '/models/Qwen2.5-VL-7B-Instruct'. Use `repo_type` argument if needed.\n"
            "head: torch.distributed.DistStoreError: Timed out after 601 seconds waiting for clients. 1/2 clients "
            "joined.\n")
    assert explain(text).primary == "model-path-missing"


@pytest.mark.parametrize("after", [
    "[E ProcessGroupNCCL.cpp:474] [Rank 1] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=5, "
    "OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=600000) ran for 600108 milliseconds before timing out.",
    "RuntimeError: NCCL error: unhandled cuda error (run with NCCL_DEBUG=INFO for details)",
])
def test_an_oom_outranks_the_nccl_failure_it_causes_on_the_other_ranks(after):
    text = (after + "\n" "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total "
            "capacity of 79.10 GiB of which 1.06 GiB is free.\n")
    result = explain(text)
    assert result.primary.startswith("oom-") and all(not m.id.startswith("nccl-") for m in result.matches)


def test_nccl_running_out_of_gpu_memory_is_an_oom():
    text = "node1:123:456 [0] include/alloc.h:103 NCCL WARN Cuda failure 'out of memory'\n" + _NCCL_SYSTEM + "\n"
    assert explain(text).primary.startswith("oom-")


def test_a_bare_nccl_system_error_in_a_container_without_more_shm_is_the_shm():
    docker = "docker run --gpus all vllm/vllm-openai --model Qwen/Qwen2.5-VL-7B-Instruct --tensor-parallel-size 4\n"
    assert explain(docker + _NCCL_SYSTEM + "\n").primary == "nccl-shm-too-small"
    with_shm = docker.replace("--gpus all", "--gpus all --ipc=host")
    assert explain(with_shm + _NCCL_SYSTEM + "\n").primary == "nccl-system-error"
    assert explain(_NCCL_SYSTEM + "\n").primary == "nccl-system-error"


def test_an_optional_package_missing_under_the_model_inspection_names_the_package():
    # vLLM 0.26 inspecting Qwen3.5 in a bundle without compressed-tensors (the shape of calibration run B9's log)
    text = ("(APIServer pid=1) ERROR 11-24 10:00:00 [registry.py:700] Error in inspecting model architecture "
            "'Qwen3_5ForConditionalGeneration'\n"
            "(APIServer pid=1) ERROR 11-24 10:00:00 [registry.py:700] ModuleNotFoundError: No module named "
            "'compressed_tensors'\n"
            "pydantic_core._pydantic_core.ValidationError: 1 validation error for ModelConfig\n"
            "  Value error, Model architectures ['Qwen3_5ForConditionalGeneration'] failed to be inspected. Please "
            "check the logs for more details.\n")
    result = explain(text)
    assert result.primary == "python-module-missing"
    assert result.matches[0].values["module"] == "compressed_tensors"
    text = ("ImportError: This modeling file requires the following packages that were not found in your "
            "environment: flash_attn. Run `pip install flash_attn`\n")
    assert explain(text).primary == "python-module-missing"


@pytest.mark.parametrize("line", [
    "safetensors_rust.SafetensorError: Error while deserializing header: MetadataIncompleteBuffer",
    "safetensors_rust.SafetensorError: Error while deserializing header: HeaderTooLarge",
    "RuntimeError: PytorchStreamReader failed reading zip archive: failed finding central directory",
    "ValueError: Unrecognized image processor in /models/Qwen2.5-VL-7B-Instruct. Should have a "
    "`image_processor_type` key in its preprocessor_config.json of config.json",
])
def test_a_truncated_or_outdated_checkpoint_says_re_download(line):
    assert explain(line + "\n").primary == "stale-checkpoint"


@pytest.mark.parametrize("line, cause", [
    ("OSError: You are trying to access a gated repo.", "hf-gated"),
    ("zmq.error.ZMQError: Address already in use (addr='tcp://127.0.0.1:5570')", "port-in-use"),
    ("[Fri Mar 1 10:00:00 2024] Out of memory: Kill process 4242 (python) score 901 or sacrifice child",
     "host-oom-killed"),
    ("OSError: /models/qwen is not a local folder and is not a valid model identifier listed on "
     "'https://huggingface.co/models'", "model-path-missing"),
    ("ValueError: The checkpoint you are trying to load has model type qwen2_5_vl but Transformers does not "
     "recognize this architecture.", "transformers-too-old"),
])
def test_other_wordings_the_sources_print(line, cause):
    assert explain(line + "\n").primary == cause


@pytest.mark.parametrize("line, estimate", [
    ("ValueError: To serve at least one request with the models's max seq len (262144), 28.00 GiB KV cache is "
     "needed, which is larger than the available KV cache memory (13.69 GiB). The estimated maximum model length "
     "is 128128.", 128128),
    ("ValueError: To serve at least one request with the model's max seq len (40960), (10.00 GiB KV cache is needed, "
     "which is larger than the available KV cache memory (1.25 GiB). Based on the available memory,  Try increasing "
     "`gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine.", None),
])
def test_v1_kv_wordings_across_releases(line, estimate):
    result = explain(line + "\n")
    assert result.primary == "kv-max-seq-len-v1"
    assert result.matches[0].values.get("estimated_max_model_len") == estimate


@pytest.mark.parametrize("line, cause", [
    ("WARNING ray_utils.py:320] The number of required GPUs exceeds the total number of available GPUs in the "
     "placement group.", "ray-placement-group"),
    ("ValueError: Current node has no GPU available. current_node_resource={'CPU': 8.0}. vLLM engine cannot start "
     "without GPU.", "ray-driver-no-gpu"),
    ("requests.exceptions.ConnectionError: HTTPSConnectionPool(host='huggingface.co', port=443): Max retries "
     "exceeded with url: /api/models/Qwen/Qwen2.5-VL-7B-Instruct (Caused by NameResolutionError(...))",
     "hf-offline"),
    ("RuntimeError: CUDA error: the provided PTX was compiled with an unsupported toolchain.", "cuda-driver-too-old"),
    ("RuntimeError: [../third_party/gloo/gloo/transport/tcp/pair.cc:799] connect [10.0.0.2]:41234: Connection "
     "refused", "gloo-connect-failed"),
])
def test_more_source_wordings(line, cause):
    assert explain(line + "\n").primary == cause
