"""vLLM 0.33.0: what ``pip install vllm`` gives in late November 2026 (it pins torch 2.14.0).

Read from the 0.33.0 wheel (``vllm-0.33.0-cp38-abi3-manylinux_2_28_x86_64.whl``); every rule below names the file and
function it comes from. Written as the differences from 0.26.0 (``v0_26``); what is not restated here was checked to be
the same in 0.33.0's source. Not measured on a GPU yet: the calibration constants are 0.26's, each marked unmeasured,
and ``vlmctl plan`` says so ("run `vlmctl calibrate`").
"""
from __future__ import annotations

from dataclasses import replace

from vlmctl.engines.vllm import v0_26
from vlmctl.engines.vllm.profile import CONSTANTS, BatchDefaults, BatchTier, MemoryLines, Runner, RunnerChoice

VERSION = "0.33.0"
_WHEEL = "vLLM 0.33.0 wheel"
_NOT_MEASURED = ("0.26.0's constants (fitted 2026-11-24 on an H100 80GB HBM3, docs/validation.md), not measured with "
                 "0.33.0")

# V2 model runner, the default for every Qwen-VL model in 0.33. Its start-up profile now runs the vision encoder on the
# worst-case items (v1/worker/gpu/model_runner.py GPUModelRunner.profile_run -> MultiModalBudget.
# get_dummy_encoder_profile_inputs -> v1/worker/gpu/mm/encoder_runner.py EncoderRunner.profile_encoder_cache, which
# keeps the encoder outputs while the LM dummy runs), so its peak is reserved like 0.26's V1 runner: 0.26 V1's profiled
# ViT factor. The sampler dummy runs twice, the second time with warm-up parameters that pay for the fp32 logits
# pipeline (model_runner.py _dummy_sampler_run): 0.26 V1's bytes per logit. CUDA-graph memory is measured by capturing
# into a throwaway pool and subtracted from the KV budget (gpu/cudagraph_utils.py profile_cudagraph_memory, called by
# v1/worker/gpu_worker.py Worker.determine_available_memory): the 0.89 GiB 0.26's V2 runner took for 7B graphs.
V2 = replace(v0_26.V2, vllm_version=VERSION, source=_NOT_MEASURED, encoder_in_profile=True,
             vit_factor=v0_26.V1.vit_factor, sampler_bytes_per_logit=v0_26.V1.sampler_bytes_per_logit,
             cudagraph_gib=0.89, unmeasured=CONSTANTS)
# V1 model runner (deprecated in 0.33; VLLM_USE_V2_MODEL_RUNNER=0): v1/worker/gpu_model_runner.py profile_run is
# 0.26's (encoder dummy, LM, sampler; "Estimated CUDA graph memory" from profile_cudagraph_memory).
V1 = replace(v0_26.V1, vllm_version=VERSION, source=_NOT_MEASURED, unmeasured=CONSTANTS)

_MEMORY = v0_26.PROFILE.memory_lines
_PATTERNS = {k: v for k, v in _MEMORY.patterns.items() if k != "non_torch_gib"} | {
    # utils/mem_utils.py MemoryProfilingResult.__repr__: "total consumed (from mem_get_info)" replaces
    # "non-torch forward increase memory"; non-KV memory = total consumed + transient peak headroom
    # (mem_utils.py memory_profiling), so non-torch = non-KV - weights - torch peak.
    "total_consumed_gib": (r"total consumed \(from mem_get_info\): ([-\d.,]+)GiB", float),
    # gpu_worker.py Worker.determine_available_memory: the V2 runner logs no "Estimated CUDA graph memory"; the
    # estimate shows as the utilization it is equivalent to.
    "cudagraph_equivalent_util": (r"is equivalent to --gpu-memory-utilization=([\d.]+) without CUDA graph memory", float),
    "utilization": (r"The current --gpu-memory-utilization=([\d.]+) is equivalent", float),
}

PROFILE = replace(
    v0_26.PROFILE,
    version=VERSION,
    source=f"{_WHEEL}: vllm/engine/arg_utils.py, vllm/config/vllm.py, vllm/config/cache.py, vllm/envs.py, "
           "vllm/v1/worker/gpu_worker.py, vllm/v1/worker/gpu/model_runner.py, vllm/utils/mem_utils.py, "
           "vllm/multimodal/encoder_budget.py, vllm/v1/core/kv_cache_planning.py",
    measured="not measured: read from source; constants are 0.26.0's (run `vlmctl calibrate`)",
    # config/vllm.py VllmConfig.use_v2_model_runner: V2 for every model unless an unsupported feature is on
    # (_get_v2_model_runner_unsupported_features: external_launcher PP, some speculative methods, ubatching).
    runner_choice=RunnerChoice(default="v2", hybrid="v2", moe="v2",
                               source=f"{_WHEEL}: vllm/config/vllm.py VllmConfig.use_v2_model_runner"),
    runners={
        "v2": Runner("v2", {}, profiles_encoder=True, profiles_sampler=True, estimates_cudagraphs=True,
                     source="v1/worker/gpu/model_runner.py GPUModelRunner.profile_run (encoder via "
                            "EncoderRunner.profile_encoder_cache, LM dummy, sampler twice); "
                            "v1/worker/gpu/cudagraph_utils.py profile_cudagraph_memory"),
        "v1": replace(v0_26.PROFILE.runners["v1"],
                      source="v1/worker/gpu_model_runner.py GPUModelRunner.profile_run (deprecated runner)"),
    },
    calibrations={"v2": V2, "v1": V1},
    # config/cache.py CacheConfig.gpu_memory_utilization: still 0.92; --device-memory-utilization is an alias.
    utilization_source="vllm/config/cache.py CacheConfig.gpu_memory_utilization (0.92)",
    # engine/arg_utils.py EngineArgs.get_batch_defaults: a new top tier for >= 160 GiB GPUs (B200/B300), and GB10
    # (compute capability 12.1) stays on the small tier.
    batch_defaults=BatchDefaults(
        tiers=(BatchTier(160, 16384, 1024),
               BatchTier(70, 8192, 1024, excluded_names=("a100",), excluded_cc=((12, 1),))),
        fallback=(2048, 256),
        source="vllm/engine/arg_utils.py EngineArgs.get_batch_defaults (OpenAI API server usage context)"),
    # FrontendArgs moved to entrypoints/common/cli_args.py; flag names vlmctl emits are unchanged
    # (engine/arg_utils.py EngineArgs.add_cli_args).
    flags=replace(v0_26.PROFILE.flags,
                  source=f"{_WHEEL}: vllm/engine/arg_utils.py EngineArgs.add_cli_args, "
                         "vllm/entrypoints/common/cli_args.py FrontendArgs, vllm/config/multimodal.py "
                         "MultiModalConfig._validate_limit_per_prompt, vllm/config/model.py ModelConfig.max_model_len"),
    env=replace(v0_26.PROFILE.env, source=f"{_WHEEL}: vllm/envs.py"),
    # The V2 runner captures graphs once while profiling (profile_cudagraph_memory -> capture_model(profile_only=True)
    # logs "Graph capturing finished" before "Available KV cache memory"), so graph capture counts only after the KV
    # budget is logged.
    log_phases=(
        v0_26.PROFILE.log_phases[0],
        v0_26.PROFILE.log_phases[1],
        ("graph capture", r"(?:Available KV cache memory|GPU KV cache size)[\s\S]*"
                          r"(?:Capturing CUDA graph|Graph capturing finished)"),
        v0_26.PROFILE.log_phases[3],
    ),
    # v1/core/kv_cache_utils.py update_kv_cache_capacity: one line "GPU KV cache size: N tokens, Maximum concurrency
    # for L tokens per request: Xx" (0.26 logged two lines); the token pattern is unchanged.
    memory_lines=MemoryLines(
        patterns=_PATTERNS, v2_runner_marker=_MEMORY.v2_runner_marker, v1_runner_marker=_MEMORY.v1_runner_marker,
        failures=_MEMORY.failures, encoder_profile=_MEMORY.encoder_profile),
)
