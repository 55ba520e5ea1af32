"""Logs that lack the deciding line: a title instead of the message, a cut traceback, context that implies the cause.

Every log here is synthetic, written from the wording of the source that prints it (vLLM, Ray, torch, transformers);
none is taken from the corpus, so these tests say nothing about its held-out part.
"""
from __future__ import annotations

import re

import pytest

from vlmctl.doctor.explain import explain
from vlmctl.failures.context import read_context
from vlmctl.plan import make_plan


@pytest.mark.parametrize(("log", "expected"), [
    ("[Usage]: vLLM v0.9.1 Free Memory on device on startup is less than desired GPU memory utilization",
     "free-memory-startup"),
    ("[Bug]: To serve at least one request with the models's max seq len", "kv-max-seq-len-v1"),
    ("ValueError: The model's max seq len is larger than the maximum number of tokens that can be stored in KV cache",
     "kv-max-seq-len-v0"),
    ("ValueError: Prompt length of 40000 is longer than the maximum model length of 32768.", "prompt-too-long"),
    ("The encoder prompt (length 9000) is longer than the maximum model length of 8192.", "prompt-too-long"),
    ("This model's maximum context length is 32768 tokens. However, you requested 1024 output tokens and your prompt "
     "contains at least 31745 input tokens", "prompt-too-long"),
    ("[Bug]: error 'image(s) may be provided in one request' with Qwen2.5-VL", "mm-limit-exceeded"),
    ("Bfloat16 is only supported on GPUs with compute capability of at least 8.0 (issue title)", "bf16-unsupported"),
    ("Value error, Total number of attention heads must be divisible by tensor parallel size", "tp-heads"),
    ("the quantization method awq is not supported for the current GPU", "quant-capability"),
    ("AssertionError: Error in memory profiling. Initial free memory 70.1 GiB, current free memory 40.2 GiB.",
     "gpu-memory-in-use"),
    ("RuntimeError: Unexpected error from cudaGetDeviceCount(). Error 803: system has unsupported display driver / "
     "cuda driver combination", "cuda-driver-too-old"),
])
def test_a_message_without_its_numbers_still_names_its_cause(log, expected):
    assert explain(log).primary == expected


RAY_V1 = ("INFO worker.py:1654 -- Connecting to existing Ray cluster at address: 10.0.0.1:6379...\n"
          "(EngineCore pid=630) WARNING [ray_utils.py:556] Tensor parallel size (2) exceeds available GPUs (1).\n")


def test_the_local_gpu_count_warning_is_no_failure_under_ray():
    # vllm/v1/executor/ray_utils.py compares TP with the GPUs of THIS node: normal on a multi-node cluster
    assert explain(RAY_V1).primary != "world-size-gpus"
    assert explain("Tensor parallel size (2) exceeds available GPUs (1).").primary == "world-size-gpus"


def test_a_node_bundle_nobody_offers_is_an_ip_mismatch_in_either_key_order():
    log = RAY_V1 + ("[autoscaler] Error: No available node types can fulfill resource request "
                    "{'GPU': 1.0, 'node:192.168.50.192': 0.001}.\n")
    assert explain(log).primary == "ray-node-ip-mismatch"


def test_a_cluster_short_of_gpus_is_not_an_ip_mismatch():
    log = ("WARNING 03-03 03:06:13 ray_utils.py:315] The number of required GPUs exceeds the total number of "
           "available GPUs in the placement group.\n(autoscaler +41s) Error: No available node types can fulfill "
           "resource request {'node:172.16.10.33': 0.001, 'GPU': 1.0}.\n")
    assert explain(log).primary == "ray-placement-group"


def test_rays_memory_monitor_is_host_memory_not_a_cuda_oom():
    log = ("(raylet) node_manager.cc:3040: 1 Workers (tasks / actors) killed due to memory pressure (OOM), 0 Workers "
           "crashed due to other reasons at node (ID: 2c82, IP: 172.31.183.172)")
    assert explain(log).primary == "host-oom-killed"


OOM_OTHERS = ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 768.00 MiB. GPU 0 has a total capacity "
              "of 79.15 GiB of which 752.31 MiB is free. Process 25252 has 18.65 GiB memory in use. Process 36870 "
              "has 19.11 GiB memory in use.\n")


def test_weights_larger_than_the_gpus_make_the_oom_a_start_up_one_whatever_else_holds_memory():
    one = "python3 -m vllm.entrypoints.openai.api_server --model /data/models/Qwen1.5-72B-Chat --port 8089\n"
    assert read_context(one + OOM_OTHERS).weights_exceed_gpus()
    assert explain(one + OOM_OTHERS).primary == "oom-startup"
    # the same model over four GPUs fits: then the other processes are the cause
    four = "vllm serve /data/models/Qwen1.5-72B-Chat --tensor-parallel-size 4\n"
    assert not read_context(four + OOM_OTHERS).weights_exceed_gpus()
    assert explain(four + OOM_OTHERS).primary == "gpu-memory-in-use"
    # a 4-bit checkpoint of the same size on one GPU fits too
    awq = "vllm serve /data/models/Qwen1.5-72B-Chat-AWQ\n"
    assert not read_context(awq + OOM_OTHERS).weights_exceed_gpus()


OOM = ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 232.00 MiB. GPU 0 has a total capacity of "
       "23.57 GiB of which 154.25 MiB is free.\n")


def test_an_oom_at_utilization_095_outside_start_up_is_a_request_time_one():
    cmd = "vllm serve Qwen/Qwen2.5-VL-3B-Instruct --gpu-memory-utilization 0.95 --max-model-len 32768\n"
    assert explain(cmd + OOM).primary == "oom-runtime"
    startup = cmd + "  File \"vllm/v1/worker/gpu_model_runner.py\", line 2100, in profile_run\n" + OOM
    assert explain(startup).primary != "oom-runtime"
    assert explain(cmd.replace("0.95", "0.85") + OOM).primary != "oom-runtime"


def test_a_v0_multimodal_profile_oom_is_the_dummy_sequences():
    v0 = ("INFO 07-29 17:41:54 model_runner.py:732] Loading model weights took 15.9524 GB\n"
          "[rank0]:   File \"vllm/engine/llm_engine.py\", line 265, in __init__\n"
          "[rank0]:     self._initialize_kv_caches()\n")
    assert explain(v0 + "serving MiniCPM-Llama3-V-2_5 on an A10: CUDA out of memory\n").primary == \
        "oom-startup-dummy-seqs"
    assert explain(v0 + "serving Llama-3-8B on an A10: CUDA out of memory\n").primary != "oom-startup-dummy-seqs"


def test_a_quantized_layer_failing_at_tp_2_is_the_quantized_shape():
    trace = ("  File \"vllm/model_executor/models/qwen2.py\", line 51, in __init__\n"
             "    self.down_proj = RowParallelLinear(\n")
    assert explain("vllm serve Qwen2.5-72B-Instruct-AWQ --tensor-parallel-size 2\n" + trace).primary == \
        "quant-shape-tp"
    assert explain("vllm serve Qwen2.5-72B-Instruct --tensor-parallel-size 2\n" + trace).primary != "quant-shape-tp"


def test_an_unknown_model_type_caught_in_transformers_lookup_is_an_old_transformers():
    trace = ("  File \"transformers/models/auto/configuration_auto.py\", line 989, in from_pretrained\n"
             "    config_class = CONFIG_MAPPING[config_dict[\"model_type\"]]\n"
             "  File \"transformers/models/auto/configuration_auto.py\", line 691, in __getitem__\n")
    assert explain(trace).primary == "transformers-too-old"
    assert explain(trace + "ModuleNotFoundError: Could not import module").primary != "transformers-too-old"


def test_a_flash_attention_kernel_failing_on_a_pre_ampere_gpu_is_the_arch_check():
    trace = ("  File \"vllm/vllm_flash_attn/flash_attn_interface.py\", line 168, in _flash_attn_varlen_forward\n"
             "    out, softmax_lse = torch.ops.vllm_flash_attn_c.varlen_fwd(\n")
    assert explain("GPU 0: Tesla V100-SXM2-32GB\n" + trace).primary == "flash-attn-ampere"
    assert explain("GPU 0: NVIDIA A100-SXM4-80GB\n" + trace).primary != "flash-attn-ampere"


def test_a_kv_error_without_numbers_gets_the_planners_max_model_len():
    log = ("vllm serve Qwen/Qwen2.5-VL-7B-Instruct --max-model-len 128000 on an NVIDIA A10G\n"
           "ValueError: To serve at least one request with the models's max seq len")
    change = {k: v["to"] for k, v in explain(log).plan_change.items()}
    assert 0 < change["max_model_len"] < 128000
    result = make_plan("Qwen/Qwen2.5-VL-7B-Instruct", gpus="a10g:1", max_model_len=change["max_model_len"],
                       gpu_memory_utilization=change["gpu_memory_utilization"])
    assert result.ok, result


def test_a_bf16_engine_on_a_pre_ampere_gpu_is_the_dtype_check_even_when_the_message_is_cut():
    config = ("INFO llm_engine.py:249] Initializing an LLM engine (v0.6.4.post1) with config: "
              "model='Qwen/Qwen2-VL-7B-Instruct', dtype=torch.bfloat16, tensor_parallel_size=1\n"
              "ERROR engine.py:366] Traceback (most recent call last):\n")
    assert explain("GPU 0: Tesla T4\n" + config).primary == "bf16-unsupported"
    assert explain("GPU 0: NVIDIA L4\n" + config).primary != "bf16-unsupported"
    assert explain("GPU 0: Tesla T4\n" + config.replace("bfloat16", "float16")).primary != "bf16-unsupported"


def test_an_oom_after_the_v1_engine_core_started_is_a_request_time_one():
    log = ("(EngineCore_DP0 pid=413) ERROR 11-10 12:30:57 [core.py:710] EngineCore encountered a fatal error.\n"
           "(EngineCore_DP0 pid=413) ERROR 11-10 12:30:57 [core.py:710] Traceback (most recent call last):\n" + OOM)
    assert explain(log).primary == "oom-runtime"
    assert explain(log.replace("encountered a fatal error", "failed to start")).primary != "oom-runtime"


def test_a_request_time_oom_of_an_unknown_model_lowers_the_utilization_it_launched_with():
    cmd = "vllm serve /models/krypton3-4b --gpu-memory-utilization 0.95 --max-model-len 32768\n"
    change = explain(cmd + OOM).plan_change
    assert change["gpu_memory_utilization"]["to"] == 0.9
    assert change["gpu_memory_utilization"]["from"] == 0.95


def test_sglangs_graph_capture_oom_is_a_cuda_graph_oom():
    log = ("Exception: Capture cuda graph failed: CUDA out of memory. Tried to allocate 2.00 GiB.\n"
           "Possible solutions:\n1. set --mem-fraction-static to a smaller value (e.g., 0.8 or 0.7)\n")
    assert explain(log).primary == "oom-cudagraph"


def test_an_oom_under_v1s_capture_progress_bar_is_a_cuda_graph_oom_until_capture_finished():
    bar = ("(EngineCore_DP0 pid=7) INFO 10-06 15:57:53 [kv_cache_utils.py:1087] GPU KV cache size: 100,752 tokens\n"
           "Capturing CUDA graphs (mixed prefill-decode, PIECEWISE):  61%|######    | 41/67 [00:07<00:04,  5.66it/s]\n")
    oom = ("(EngineCore_DP0 pid=7) ERROR 10-06 15:58:01 [core.py:708] torch.OutOfMemoryError: CUDA out of memory. "
           "Tried to allocate 20.00 MiB. GPU 0 has a total capacity of 23.55 GiB of which 11.00 MiB is free.\n")
    assert explain(bar + oom).primary == "oom-cudagraph"
    served = ("(EngineCore_DP0 pid=7) INFO 10-06 15:58:00 [gpu_model_runner.py:2] Graph capturing finished in 12 secs, "
              "took 0.46 GiB\n(APIServer pid=1) INFO:     Application startup complete.\n")
    assert explain(bar + served + oom).primary != "oom-cudagraph"


def test_a_scheduler_budget_below_the_context_gets_the_budget_raised_to_it():
    log = ("ValueError: max_num_batched_tokens (4096) is smaller than max_model_len (4608). This effectively limits "
           "the maximum sequence length to max_num_batched_tokens and makes vLLM reject longer sequences.")
    result = explain(log)
    assert result.primary == "batched-tokens-below-max-len"
    assert result.plan_change["max_num_batched_tokens"]["to"] == 4608
    assert explain("CUDA error: invalid device ordinal").primary == "world-size-gpus"


# Round 8: the releases a log shows decide between the causes that share vLLM's registry messages
# (vlmctl.engines.vllm.architectures), and wordings of older releases / other tools, written from their sources.
INSPECT = "ValueError: Model architectures ['Qwen2_5_VLForConditionalGeneration'] failed to be inspected. " \
          "Please check the logs for more details."


@pytest.mark.parametrize(("log", "expected", "needs"), [
    ("vllm==0.6.3\nValueError: Model architectures ['Qwen3ForCausalLM'] are not supported for now. Supported "
     "architectures: ['LlamaForCausalLM', 'Qwen2ForCausalLM']", "vllm-arch-unsupported", "vLLM >= 0.8.4"),
    (f"vllm 0.7.2\ntransformers 4.49.0\n{INSPECT}", "vllm-arch-unsupported", "vLLM >= 0.7.3"),
    (f"[pip3] transformers==4.48.2\nvLLM Version: 0.7.3\n{INSPECT}", "transformers-too-old", "transformers >= 4.49.0"),
    (f"vllm 0.7.3\ntransformers 4.49.0\n{INSPECT}", "stale-checkpoint", None),
    (f"{INSPECT}\npip install --upgrade transformers", "transformers-too-old", "transformers >= 4.49.0"),
    # no release on the page: the registry has the architecture (it inspected it), so not a vLLM too old for it;
    # the one inspection failure recorded for Qwen2.5-VL is vLLM 0.7.2 under the transformers 4.49.0 release
    (INSPECT, "vllm-arch-unsupported", "vLLM >= 0.7.3 with transformers >= 4.49.0"),
    (INSPECT.replace("Qwen2_5_VL", "Qwen2VL"), "transformers-too-old", "transformers >= 4.45.0"),
    (f"vLLM API server version 0.8.5\n{INSPECT}", "transformers-too-old", "transformers >= 4.49.0"),
    ("ERROR registry.py:306] Error in inspecting model architecture 'Qwen3VLForConditionalGeneration'",
     "transformers-too-old", "transformers >= 4.57.0"),
    ("vllm==0.7.2\ntransformers==4.49.0\nImportError: cannot import name 'Qwen2_5_VLImageProcessor' from "
     "'transformers.models.qwen2_5_vl'", "vllm-arch-unsupported", "vLLM >= 0.7.3"),
    ("ImportError: cannot import name 'Qwen2_5_VLForConditionalGeneration' from 'transformers'",
     "transformers-too-old", "transformers >= 4.49.0"),
    ("KeyError: 'qwen2_vl'", "transformers-too-old", "transformers >= 4.45.0"),
    ("ValueError: Model architecture MPTForCausalLM was supported in vLLM until v0.10.2, and is not supported "
     "anymore. Please use an older version of vLLM if you want to use this model architecture.",
     "vllm-arch-unsupported", None),
    ("You can update Transformers with the command `pip install --upgrade transformers`. If this does not work, and "
     "the checkpoint is very new, then there may not be a release version that supports this model yet.",
     "transformers-too-old", None),
])
def test_the_installed_releases_decide_the_loading_cause(log, expected, needs):
    result = explain(log)
    assert result.primary == expected
    match = next(m for m in result.matches if m.id == expected)
    if needs:
        assert needs in match.values["needs"] and match.fix.startswith(f"This log needs {match.values['needs']}")
        assert re.search(r"`vlmctl doctor` prints the installed versions?\.$", match.fix)


@pytest.mark.parametrize(("log", "expected"), [
    # Ray's check_version_info raising, the lines naming the versions cut off
    ("File \"/usr/local/lib/python3.11/dist-packages/ray/scripts/scripts.py\", line 2691, in main\n"
     "RuntimeError: Version mismatch", "ray-version-mismatch"),
    # V1's KV-cache check raising, the message cut
    ("File \"vllm/v1/core/kv_cache_utils.py\", line 943, in get_kv_cache_config\n"
     "    check_enough_kv_cache_memory(vllm_config, kv_cache_spec, available_memory)", "kv-max-seq-len-v1"),
    ("    check_enough_kv_cache_memory(vllm_config, kv_cache_spec, available_memory)\n"
     "ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization`",
     "kv-no-blocks"),
    # vLLM 0.6/0.7's limit wording ("image items", quotes of either kind)
    ("ValueError: You set image=2 (or defaulted to 1) in '--limit-mm-per-prompt', but passed 5 image items in the "
     "same prompt.", "mm-limit-exceeded"),
    ("[Bug]: System memory OOM after upgrading vLLM", "host-oom-killed"),
    ("Failed to download: cannot access gated huggingface model meta-llama/Llama-3.1-8B", "hf-gated"),
    ("[Serve] vLLM in a rayservice on kuberay: RuntimeError: No CUDA GPUs are available", "ray-driver-no-gpu"),
])
def test_source_wordings_of_older_releases_and_wrappers(log, expected):
    assert explain(log).primary == expected


def test_a_v0_vlm_oom_without_its_phase_is_the_dummy_profile_unless_the_weights_fill_the_gpus():
    small = ("vllm==0.6.3\nllm = LLM(model='Qwen/Qwen2-VL-7B-Instruct')\n"
             "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.")
    assert explain(small).primary == "oom-startup-dummy-seqs"
    # 72B in bf16 on one GPU: the weights leave no room, whatever the profile does
    big = small.replace("Qwen2-VL-7B-Instruct", "Qwen2-VL-72B-Instruct")
    assert explain(big).primary == "oom-startup"
    # a V1 release profiles one encoder budget instead: not the V0 dummy batch
    assert explain(small.replace("vllm==0.6.3", "vllm==0.8.5\n(EngineCore_0 pid=1)")).primary != \
        "oom-startup-dummy-seqs"


def test_the_log_context_reads_transformers_and_the_architecture():
    ctx = read_context("[pip3] transformers==4.48.2\nsite-packages/vllm-0.7.2+cpu-py3.12-linux-x86_64.egg/vllm/x.py\n"
                       "Model architectures ['Qwen2_5_VLForConditionalGeneration'] failed to be inspected")
    assert (ctx.transformers_version, ctx.vllm_version, ctx.architecture) == \
        ("4.48.2", "0.7.2", "Qwen2_5_VLForConditionalGeneration")
    assert read_context("transformers-stream-generator 0.0.5").transformers_version is None
    assert read_context("vllm0.7.2 transformers 4.49.0.dev0").transformers_version == "4.49.0.dev0"


def test_not_supported_for_now_stays_a_vllm_limit_whatever_transformers_is_installed():
    log = ("vllm==0.9.0\ntransformers==4.40.0\nValueError: Model architectures ['Qwen3ForCausalLM'] are not supported "
           "for now.")
    assert explain(log).primary == "vllm-arch-unsupported"


def test_one_other_process_holding_gigabytes_is_memory_in_use_but_a_small_one_is_not():
    msg = ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of "
           "23.55 GiB of which 1.87 GiB is free. Process 4242 has {other} memory in use. Including non-PyTorch "
           "memory, this process has 17.29 GiB memory in use.")
    assert explain(msg.format(other="4.37 GiB")).primary == "gpu-memory-in-use"
    assert explain(msg.format(other="412.00 MiB")).primary != "gpu-memory-in-use"


@pytest.mark.parametrize(("log", "expected"), [
    ("ImportError: /venv/lib/python3.10/site-packages/flash_attn_2_cuda.cpython-310-x86_64-linux-gnu.so: undefined "
     "symbol: _ZN3c104cuda9SetDeviceEi", "torch-abi-mismatch"),
    ("ImportError: libcudart.so.12: cannot open shared object file: No such file or directory", "torch-abi-mismatch"),
    ("RuntimeError: operator torchvision::nms does not exist", "torch-abi-mismatch"),
    ("requests.exceptions.SSLError: HTTPSConnectionPool(host='huggingface.co', port=443): Max retries exceeded",
     "hf-offline"),
    ("ValueError: Image features and image tokens do not match: tokens: 1024, features 980", "mm-placeholder-mismatch"),
])
def test_build_hub_and_processor_wordings(log, expected):
    assert explain(log).primary == expected


def test_an_undefined_c_symbol_that_is_not_torchs_is_not_an_abi_mismatch():
    assert explain("ImportError: libfoo.so: undefined symbol: _Z3barv").primary != "torch-abi-mismatch"


# Round 9: causes told apart by the symbol, the release line or the last frame; triage phrases from the sources.
@pytest.mark.parametrize(("log", "expected"), [
    # a CUDA driver API entry point missing from libcuda is the driver, not a torch/vLLM build mismatch
    ("ImportError: /usr/local/lib/python3.12/dist-packages/vllm/_C.abi3.so: undefined symbol: cuTensorMapEncodeTiled",
     "cuda-driver-too-old"),
    ("ImportError: /usr/local/lib/python3.12/dist-packages/vllm/_C.abi3.so: undefined symbol: "
     "_ZN3c104cuda9SetDeviceEi", "torch-abi-mismatch"),
    # the API server's version line marks a V0 release: a VLM's OOM without its phase is the dummy profile
    ("INFO api_server.py:527] vLLM API server version 0.6.3\nvllm serve meta-llama/Llama-3.2-11B-Vision-Instruct\n"
     "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.00 GiB.", "oom-startup-dummy-seqs"),
    # a traceback ending in FlashAttention's kernel op, nothing after it
    ("  File \"flash_attn/flash_attn_interface.py\", line 86, in _flash_attn_varlen_forward\n"
     "    out, softmax_lse, S_dmask, rng_state = flash_attn_cuda.varlen_fwd(", "flash-attn-ampere"),
    ("[Bug]: RAM OOM when loading a 70B checkpoint", "host-oom-killed"),
    ("[Bug]: killed due to high memory usage", "host-oom-killed"),
    # the hostname mapped to 127.0.1.1 (Debian/Ubuntu's /etc/hosts default): the peer dials its own loopback
    ("RuntimeError: Gloo connectFullMesh failed with [../third_party/gloo/gloo/transport/tcp/pair.cc:144] no error, "
     "remote=[127.0.1.1]:41234", "gloo-loopback"),
    ("RuntimeError: [../third_party/gloo/gloo/transport/tcp/pair.cc:799] connect [127.0.1.1]:29500: Connection refused",
     "gloo-loopback"),
    ("RuntimeError: [../third_party/gloo/gloo/transport/tcp/pair.cc:799] connect [10.0.0.2]:29500: Connection refused",
     "gloo-connect-failed"),
])
def test_round9_wordings(log, expected):
    assert explain(log).primary == expected


def test_a_flash_attention_frame_on_an_ampere_gpu_is_not_the_ampere_check():
    log = ("GPU 0: NVIDIA A100-SXM4-80GB\n  File \"flash_attn/flash_attn_interface.py\", line 86, in fwd\n"
           "    out = flash_attn_cuda.varlen_fwd(")
    assert explain(log).primary != "flash-attn-ampere"


@pytest.mark.parametrize(("log", "subsystem"), [
    ("vllm not support W8A8_Int8 deepseek_v2\n  File \"vllm/executor/gpu_executor.py\", line 40, in _init_executor",
     "quantization"),
    # a user's LLM(...) call passing trust_remote_code=True is not transformers asking for it
    ("[Bug]: Gloo cannot communicate between the two computers\n"
     "    llm = LLM(model=\"/mnt/qwen\", trust_remote_code=True, tensor_parallel_size=2)", "network"),
    ("Why CPU Memory Is Used More and More?\n(raylet) A worker died or was killed while executing a task",
     "host-memory"),
    ("llm = LLM(model=\"some/vision-model\")\nit OOMs:\nUsing model weights format ['*.safetensors']\n"
     "Loading safetensors checkpoint shards: 100% Completed | 5/5", "cuda-memory"),
    ("[Bug]: connection to gpu node timeout when initializing multi-node serving\nMy ray version is 2.42.0. "
     "vLLM version 0.7.0.", "network"),
])
def test_round9_triage(log, subsystem):
    from vlmctl.doctor.triage import triage

    assert triage(log).subsystem == subsystem


def test_a_moe_model_type_is_its_dense_rows_release():
    # transformers names Qwen3-MoE's config model_type "qwen3_moe": a vLLM below Qwen3's first release is the cause,
    # however new the transformers (the message is transformers', the fix is vLLM)
    log = ("vLLM 0.6.3\ntransformers 4.46.0\nValueError: The checkpoint you are trying to load has model type "
           "`qwen3_moe` but Transformers does not recognize this architecture.")
    result = explain(log)
    assert result.primary == "vllm-arch-unsupported"
    assert "vLLM >= 0.8.4" in result.matches[0].fix
    assert explain(log.replace("vLLM 0.6.3", "vLLM 0.9.0").replace("4.46.0", "4.50.0")).primary \
        == "transformers-too-old"


@pytest.mark.parametrize(("log", "subsystem"), [
    # vLLM's registry raising for an architecture it lacks, the message line cut (registry.py:_raise_for_unsupported)
    ("  File \"vllm/config.py\", line 408, in _init_multimodal_config\n"
     "    if ModelRegistry.is_multimodal_model(architectures):\n"
     "  File \"vllm/model_executor/models/registry.py\", line 393, in inspect_model_cls\n"
     "    return self._raise_for_unsupported(architectures)\n"
     "'LlavaForConditionalGeneration', 'MiniCPMV', 'PaliGemmaForConditionalGeneration', "
     "'Qwen2VLForConditionalGeneration', 'MllamaForConditionalGeneration'])", "versions"),
    # torch's invalid device ordinal: Ray's per-actor CUDA_VISIBLE_DEVICES under Ray, the process's otherwise
    ("INFO worker.py:1743 -- Connected to Ray cluster. View the dashboard at 10.0.0.1:8265\n"
     "INFO 04-01 10:49:42 selector.py:34] Cannot use FlashAttention backend for Volta and Turing GPUs.\n"
     "RuntimeError: CUDA error: invalid device ordinal", "ray"),
    ("INFO 04-01 10:49:42 selector.py:34] Cannot use FlashAttention backend for Volta and Turing GPUs.\n"
     "torch.AcceleratorError: CUDA error: invalid device ordinal", "process"),
    # version conflicts in words, English and Chinese
    ("ray status 报错: Ray 版本冲突", "versions"),
    ("[Bug]: ray cluster fails: incompatible versions between head and worker", "versions"),
    # an allocation failure inside cuBLAS or NCCL is GPU memory
    ("RuntimeError: CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`", "cuda-memory"),
    ("RuntimeError: CUDA error: CUBLAS_STATUS_NOT_SUPPORTED when calling `cublasGemmEx`", "gpu-arch"),
    # InfiniBand transport errors are the network
    ("NET/IB : Got completion from peer 10.0.0.2<45678> with error 12, opcode 0, len 0, vendor err 129", "network"),
])
def test_round10_triage(log, subsystem):
    from vlmctl.doctor.triage import triage

    assert triage(log).subsystem == subsystem


def test_info_lines_weigh_less_than_the_failure():
    from vlmctl.doctor.triage import triage

    log = ("INFO 04-01 10:49:42 selector.py:34] Cannot use FlashAttention backend for Volta and Turing GPUs.\n"
           "INFO 04-01 10:49:43 selector.py:34] Using XFormers backend.\n"
           "ncclRemoteError: A call failed possibly due to a network error or a remote process exiting prematurely.")
    assert triage(log).subsystem == "network"


@pytest.mark.parametrize(("log", "expected"), [
    # QuantizationConfig.get_supported_act_dtypes: AWQ / GPTQ take float16 only, MXFP4 bfloat16
    ("ValueError: torch.bfloat16 is not supported for quantization method awq. Supported dtypes: [torch.float16]",
     "quant-dtype"),
    ("Value error, torch.bfloat16 is not supported for quantization method gptq. Supported dtypes: [torch.float16] "
     "[type=value_error, input_value=ArgsKwargs((), {'model_config': ...", "quant-dtype"),
    # torch's FP8 GEMM on an Ampere GPU, and vLLM's CUTLASS W8A8 dispatch below its lowest kernel
    ("RuntimeError: torch._scaled_mm is only supported on CUDA devices with compute capability >= 9.0 or 8.9, or "
     "ROCm MI300+", "quant-capability"),
    ("NotImplementedError: No compiled cutlass_scaled_mm for a compute capability less than CUDA device capability: "
     "70", "quant-capability"),
    # at 7.5 and above the wheel lacks the kernel it has in source
    ("NotImplementedError: No compiled cutlass_scaled_mm for a compute capability less than CUDA device capability: "
     "75", "no-kernel-image"),
    ("RuntimeError: cutlass_scaled_mm, NotImplementedError: No compiled cutlass_scaled_mm for a compute capability "
     "less than CUDA device capability: 121", "no-kernel-image"),
])
def test_round10_quantization_wordings(log, expected):
    assert explain(log).primary == expected


def test_the_dtype_fix_is_the_one_the_message_lists():
    log = "ValueError: torch.float16 is not supported for quantization method mxfp4. Supported dtypes: [torch.bfloat16]"
    assert explain(log).plan_change["dtype"]["to"] == "bfloat16"
    awq = "ValueError: torch.bfloat16 is not supported for quantization method awq. Supported dtypes: [torch.float16]"
    assert explain(awq).plan_change["dtype"]["to"] == "float16"


@pytest.mark.parametrize(("log", "subsystem"), [
    # the English keywords' Chinese counterparts (Qwen, GPUStack and Xinference threads are often Chinese)
    ("多机多卡部署 vllm 失败，两个节点之间一直卡住", "network"),
    ("部署 Qwen2.5-VL-72B 时显存不够", "cuda-memory"),
    ("加载 AWQ 量化模型报错", "quantization"),
    ("张量并行设置为 3 时报错", "parallelism"),
])
def test_round10_chinese_triage(log, subsystem):
    from vlmctl.doctor.triage import triage

    assert triage(log).subsystem == subsystem


@pytest.mark.parametrize(("log", "subsystem"), [
    # torch's c10d socket.cpp when the port is taken, the title cut before "address already in use"
    ("[Bug]: torch.distributed.DistNetworkError: The server socket has failed to listen on any local network "
     "address. port: 29500, useIpv6: false, code: -98, name: EADDRINUSE, message: address already in us", "process"),
    # transformers' AutoConfig advice without the model-type line
    ("You can update Transformers with the command `pip install --upgrade transformers`. If this does not work, "
     "and the checkpoint is very new, then there may not be a release version that supports this model yet.",
     "versions"),
])
def test_round10_source_wordings_decide_triage(log, subsystem):
    from vlmctl.doctor.triage import triage

    assert triage(log).subsystem == subsystem
