"""vLLM 0.26.0: the release the GPU machine runs (it pins torch 2.11.0).

Read from the 0.26.0 wheel (``vllm/engine/arg_utils.py``, ``vllm/envs.py``, ``vllm/v1/worker/gpu_worker.py``,
``vllm/v1/worker/gpu/model_runner.py``) and measured on an H100 80GB HBM3 and an H200 (docs/validation.md).
"""
from __future__ import annotations

from dataclasses import replace

from vlmctl.engines.vllm.profile import (BatchDefaults, BatchTier, Calibration, EnvNames, Flags, MemoryLines,
                                          Runner, RunnerChoice, VllmProfile)

VERSION = "0.26.0"

# V2 model runner (the default for Qwen2.5-VL in 0.26): the start-up profile covers the language model only.
# Initial values from the shared reference (vllm-memory.md §2.4, §5); refitted against the GPU machine.
V2 = Calibration(
    vllm_version=VERSION, model_runner="v2",
    source="fitted 2026-11-24 on one H100 80GB HBM3, vLLM 0.26.0, torch 2.11.0+cu130, dummy weights, "
           "8 of 20 runs (docs/validation.md; vlmctl.calibrate.fit), V2 vit_factor from the "
           "worst-case-video runs through vlmctl serve (docs/validation.md § 2); "
           "LM activation split from the TP runs on several Ray nodes sharing one GPU (docs/validation.md § 7); "
           "non_torch_tp_gib and nccl_init_gib are still reference estimates (no multi-GPU machine lent)",
    weight_overhead_gib=0.18, non_torch_gib=0.23, non_torch_tp_gib=0.25, cuda_context_gib=0.52,
    nccl_init_gib=0.25, cudagraph_gib=0.0, lm_activation_factor=1.091, lm_hidden_buffers=9.72, lm_mlp_buffers=1.52,
    sampler_bytes_per_logit=0.0, vit_factor=1.70, encoder_in_profile=False,
    unmeasured=("non_torch_tp_gib", "nccl_init_gib"),
)
# lm_hidden_buffers / lm_mlp_buffers: the single-GPU runs fix only their weighted sum (I/H is 5.3-5.4 for 3B, 7B and
# 32B); the split comes from the TP runs (Ray nodes sharing one H100, docs/validation.md § 7): torch peak
# 1.06 GiB at TP 1, 0.82 at TP 2 (fitted), 0.75 at TP 4 (predicted 0.70). The earlier 2·H + 3·I/t gave 0.59 and
# 0.36 at TP 2 and 4. Single-GPU predictions move by under 1.3 %.
# vit_factor on the V2 runner only sizes the encoder's run-time reserve (its profile has no encoder). Measured
# through `vlmctl serve` with CUDA graphs (docs/validation.md § 2), the worst-case video OOMed with 17.6 GiB left
# beyond the budget and served with 22.3 GiB: 1.70 lands the 7B plan on the u that served it. It covers what the
# reserve does not model yet: the 0.89 GiB of CUDA graphs V2 captures outside the budget, the compiled encoder's
# larger peak and allocator fragmentation. The V1 runner's profiled ViT peak fits 1.02.

# VLLM_USE_V2_MODEL_RUNNER=0: the V1 runner profiles the worst-case image/video. Measured: the V1 profile adds the
# sampler dummy (7.69 B per row x vocab) and subtracts its CUDA-graph estimate (0.46 GiB logged for 7B); the V2
# runner logs no graph estimate (profile_cudagraph_memory returns 0) and its peak does not grow with max_num_seqs.
V1 = replace(V2, model_runner="v1", encoder_in_profile=True, sampler_bytes_per_logit=7.69, cudagraph_gib=0.46,
             vit_factor=1.02)

# Qwen3-VL family rows (benchmarks/gpu/compare_families.py --fit; docs/validation.md § 9, § 13): one H200, vLLM 0.26.0,
# torch 2.11.0+cu130, dummy weights, 2026-11-29. Fitted on 6 of the 10 engines that started (F01, F02, F03 weights
# only, F06, F07, F11); F03's profile, F05, F08, F09 and F12 held out. Weight overhead 0.27 GiB beyond parameters and
# deepstack buffers (F01, F03); the LM pass 2·T·(a·H + b·W) with factor 1: a = 3.55, b = 2.98 from the 8B and 32B
# V2 peaks (two equations); V1: the sampler 10.42 B per row × vocab (F07, LM path); MoE: b = 1.50 over vLLM's
# fused-MoE workspace width (F11).
# The ViT factor is 0.85 on the Qwen3 tower's analytic peak (models/families/qwen3_vl.py Qwen3VL.vit_peak_bytes:
# pixels in fp32 and bf16, position and rotary tables, every deepstack level held, the worst block's working set),
# refitted on Q02 and Q03 (Qwen3.5-27B, V1, 128 and 64 sequences, the 16,384-token image: both 1.92 GiB, so the
# sampler does not set their peak and the ViT pass does; the same Qwen3_VisionTransformer class). Q02 and Q03 had been
# evaluated once as held-out rows before this refit: they are seen rows now. The first value, 1.10, came from F06,
# whose 2.90 GiB is its LM path (sampler over 1,024 rows), not its ViT pass: the 8B tower holds at most ~0.7 GiB more
# than Qwen3.5's (three deepstack levels, a wider concatenated output), so its pass stays under ~2.6 GiB.
# The V2 runner's run-time reserve uses the same factor: its encoder runner runs the same eager forward the V1 profile
# measures (v1/worker/gpu/mm/encoder_runner.py execute_mm_encoder → embed_multimodal; no torch.compile on
# Qwen3_VisionBlock), unlike Qwen2.5-VL's compiled blocks behind its 1.70.
# Not measured for this family: the V1 CUDA-graph estimate (Qwen2.5's 0.46 kept), TP > 1, a V2 run-time encoder OOM
# (the reserve leaves out the V2 LM CUDA graphs outside the budget and allocator fragmentation), a Qwen3-VL profile
# decided by its ViT pass (the next visit's held-out probe, docs/validation.md § 13).
_QWEN3_VL_FIT = dict(weight_overhead_gib=0.27, lm_activation_factor=1.0, lm_hidden_buffers=3.55, lm_mlp_buffers=2.98)
_QWEN3_VL_SOURCE = ("fitted 2026-11-29 on one H200, vLLM 0.26.0, torch 2.11.0+cu130, dummy weights: F01, F02, F03 "
                    "(weights), F06, F07, F11 of docs/validation/families (benchmarks/gpu/compare_families.py --fit); "
                    "F03, F05, F08, F09, F12 held out; ViT factor refitted on Q02 and Q03 (Qwen3.5-27B, same tower; "
                    "seen once as held-out rows before)")
QWEN3_VL_V2 = replace(V2, source=_QWEN3_VL_SOURCE, **_QWEN3_VL_FIT, vit_factor=0.85)
QWEN3_VL_V1 = replace(V1, source=_QWEN3_VL_SOURCE, **_QWEN3_VL_FIT, sampler_bytes_per_logit=10.42, vit_factor=0.85)
# Qwen3.5 rows (benchmarks/gpu/compare_families.py --fit; docs/validation.md § 13): one H200, vLLM 0.26.0, torch
# 2.11.0+cu130, dummy weights, 2026-11-29, Triton gated-DeltaNet prefill. Qwen3-VL's rows (same tower, same sampler
# path) with two terms from the one designated fit run, Q01 (27B, V1, eager, 1,024 sequences): weight overhead 0.14
# GiB beyond parameters (51.10 GiB logged) and the LM pass factor 1.21 (torch peak 3.91 GiB, the LM path: sampler
# dummy over 1,024 rows × 248,320 vocab, encoder outputs, LM pass). Held out: Q04 (V2) and two `vlmctl serve --plan`
# engines; Q02 and Q03 (CUDA graphs) were held out once, then fixed the tower's ViT factor (above). Not measured:
# Qwen3.5-MoE (its rows add Qwen3-VL-MoE's fused-MoE buffers), TP > 1, prefix caching (mamba_cache_mode align).
_QWEN3_5_FIT = dict(weight_overhead_gib=0.14, lm_activation_factor=1.21)
_QWEN3_5_SOURCE = ("fitted 2026-11-29 on one H200, vLLM 0.26.0, torch 2.11.0+cu130, dummy weights: Q01 of "
                   "docs/validation/families (benchmarks/gpu/compare_families.py --fit) on Qwen3-VL's rows; Q04 and "
                   "two serve runs held out; Q02 and Q03 held out once, then used for the tower's ViT factor")
QWEN3_5_V2 = replace(QWEN3_VL_V2, source=_QWEN3_5_SOURCE, **_QWEN3_5_FIT)
QWEN3_5_V1 = replace(QWEN3_VL_V1, source=_QWEN3_5_SOURCE, **_QWEN3_5_FIT)
FAMILY_CALIBRATIONS = {
    ("v2", "Qwen3-VL"): QWEN3_VL_V2, ("v1", "Qwen3-VL"): QWEN3_VL_V1,
    ("v2", "Qwen3-VL-MoE"): replace(QWEN3_VL_V2, lm_mlp_buffers=1.50),
    ("v1", "Qwen3-VL-MoE"): replace(QWEN3_VL_V1, lm_mlp_buffers=1.50),
    ("v2", "Qwen3.5"): QWEN3_5_V2, ("v1", "Qwen3.5"): QWEN3_5_V1,
    ("v2", "Qwen3.5-MoE"): replace(QWEN3_5_V2, lm_mlp_buffers=1.50),
    ("v1", "Qwen3.5-MoE"): replace(QWEN3_5_V1, lm_mlp_buffers=1.50),
}

_WHEEL = "vLLM 0.26.0 wheel"

#: vLLM's own messages (v1/worker/utils.py request_memory, v1/core/kv_cache_utils.py _check_enough_kv_cache_memory,
#: config/model.py _get_and_verify_max_len); the same text in 0.33 (kv_cache_planning.py).
WORDINGS = {
    "free-memory": "Free memory on device {device} ({free:.2f}/{total:.2f} GiB) on startup is less than desired GPU "
                   "memory utilization ({utilization}, {wanted:.2f} GiB). Decrease GPU memory utilization or reduce "
                   "GPU memory used by other processes.",
    "kv-no-memory": "No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when "
                    "initializing the engine (this flag also controls CPU memory reservation on the CPU backend, "
                    "despite its name). See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more "
                    "details.",
    "kv-max-model-len": "To serve at least one request with the model's max seq len ({max_model_len}), "
                        "({needed_gib:.2f} GiB KV cache is needed, which is larger than the available KV cache "
                        "memory ({available_gib:.2f} GiB). {estimate}Try increasing `gpu_memory_utilization` (which "
                        "also controls CPU memory on the CPU backend) or decreasing `max_model_len` when initializing "
                        "the engine. See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more "
                        "details.",
    "kv-max-model-len-estimate": "Based on the available memory, the estimated maximum model length is {estimate}. ",
    "max-model-len-derived": "User-specified max_model_len ({max_model_len}) is greater than the derived "
                             "max_model_len ({max_len_key}={derived} or model_max_length={model_max_length} in "
                             "model's config.json).",
}

PROFILE = VllmProfile(
    version=VERSION,
    source=f"{_WHEEL}: vllm/engine/arg_utils.py, vllm/envs.py, vllm/v1/worker/gpu_worker.py, "
           "vllm/v1/worker/gpu/model_runner.py, vllm/v1/worker/gpu_model_runner.py",
    measured="H100 80GB HBM3 (20 engines, 2026-11-24) and H200 (5 held-out engines): docs/validation.md",
    runner_choice=RunnerChoice(
        default="v2", hybrid="v1", moe="v1",
        moe_architectures_on_default=("DeepseekV2ForCausalLM", "GraniteMoeForCausalLM", "InklingForCausalLM",
                                      "InklingForConditionalGeneration", "LongcatFlashNgramForCausalLM",
                                      "Qwen2MoeForCausalLM"),
        source="vllm/config/vllm.py VllmConfig.use_v2_model_runner / _is_default_v2_model_runner_model "
               "(DEFAULT_V2_MODEL_RUNNER_ARCHITECTURES)"),
    runners={
        "v2": Runner("v2", {}, profiles_encoder=False, profiles_sampler=False, estimates_cudagraphs=False,
                     source="v1/worker/gpu/model_runner.py profile_run (LM dummy only); "
                            "profile_cudagraph_memory returns 0 (measured: no 'Estimated CUDA graph memory' line)"),
        "v1": Runner("v1", {"VLLM_USE_V2_MODEL_RUNNER": "0"}, profiles_encoder=True, profiles_sampler=True,
                     estimates_cudagraphs=True,
                     source="v1/worker/gpu_model_runner.py profile_run (encoder dummy + LM + sampler), "
                            "gpu_worker.py determine_available_memory (graph estimate, since 0.21)"),
    },
    calibrations={"v2": V2, "v1": V1},
    family_calibrations=FAMILY_CALIBRATIONS,
    default_utilization=0.92,
    utilization_source="vllm/config/cache.py CacheConfig.gpu_memory_utilization (0.92 since 0.21, PR #38284)",
    batch_defaults=BatchDefaults(
        tiers=(BatchTier(70, 8192, 1024, excluded_names=("a100",)),), fallback=(2048, 256),
        source="vllm/engine/arg_utils.py EngineArgs.get_batch_defaults (OpenAI API server usage context)"),
    default_mm_limit=999,
    encoder_budget="vllm/v1/core/encoder_cache_manager.py compute_mm_encoder_budget: max(max_num_encoder_input_tokens "
                   "(= max_num_batched_tokens, config/scheduler.py), largest item)",
    flags=Flags(limit_mm_item_options=True, max_model_len_auto=True,
                source=f"{_WHEEL}: vllm/engine/arg_utils.py EngineArgs.add_cli_args, "
                       "vllm/entrypoints/openai/cli_args.py FrontendArgs, vllm/config/multimodal.py "
                       "MultiModalConfig._validate_limit_per_prompt (count or {count, num_frames, width, height}), "
                       "vllm/config/model.py ModelConfig.max_model_len (-1 or 'auto')"),
    env=EnvNames(source=f"{_WHEEL}: vllm/envs.py"),
    log_phases=(
        ("loading", r"Starting to load model|Loading safetensors checkpoint shards|Loading weights took"
                    r"|Model loading took"),
        ("profiling", r"Memory profiling takes|profiling|Available KV cache memory|GPU KV cache size|# GPU blocks"),
        ("graph capture", r"Capturing CUDA graph|Capturing cudagraphs|Graph capturing finished"),
        ("ready", r"Application startup complete|Uvicorn running on|Starting vLLM (?:API )?server"),
    ),
    kv_tokens_line=r"GPU KV cache size: ([\d,]+) tokens",
    memory_lines=MemoryLines(
        patterns={
            "weights_gib": (r"Model loading took ([-\d.,]+) GiB", float),
            "load_s": (r"Model loading took [-\d.]+ GiB(?: memory)? and ([-\d.,]+) seconds", float),
            "profile_s": (r"Memory profiling takes ([-\d.,]+) seconds", float),
            "non_kv_gib": (r"Total non KV cache memory: ([-\d.,]+)GiB", float),
            "torch_peak_gib": (r"torch peak memory increase: ([-\d.,]+)GiB", float),
            "non_torch_gib": (r"non-torch forward increase memory: ([-\d.,]+)GiB", float),
            "profiled_weights_gib": (r"weights memory: ([-\d.,]+)GiB", float),
            "cudagraph_estimate_gib": (r"Estimated CUDA graph memory: ([-\d.,]+) GiB", float),
            "graph_capture_gib": (r"Graph capturing finished in \d+ secs, took ([-\d.,]+) GiB", float),
            "available_kv_gib": (r"Available KV cache memory: ([-\d.,]+) GiB", float),
            "kv_tokens": (r"GPU KV cache size: ([-\d.,]+) tokens", int),
            "max_model_len": (r"Maximum concurrency for ([-\d.,]+) tokens per request", int),
            "max_concurrency": (r"Maximum concurrency for [\d,]+ tokens per request: ([-\d.,]+)x", float),
            "encoder_budget_tokens": (r"Encoder cache will be initialized with a budget of ([-\d.,]+) tokens", int),
            "init_free_gib": (r"Initial free memory: ([-\d.,]+) GiB; Requested memory", float),
            "requested_gib": (r"Requested memory: [\d.]+ \(util\), ([-\d.,]+) GiB", float),
        },
        v2_runner_marker=("gpu/model_runner.py", "[model_runner.py:"),
        v1_runner_marker=("gpu_model_runner.py",),
        failures=(
            r"No available memory for the cache blocks",
            r"To serve at least one request with the model's max seq len",
            r"CUDA out of memory",
            r"OutOfMemoryError",
            r"is less than desired GPU memory utilization",
        ),
        encoder_profile=r"profiled with (\d+) (\w+) items of the maximum feature size",
    ),
    wordings=WORDINGS,
)
