"""The planner's tunable constants, in one place, with where each number comes from.

Everything else in vlmctl.plan is vLLM's own arithmetic (source lines in docs/planner.md).
These are the terms vLLM *measures* at start-up and we can only estimate; they are fitted
against real vLLM runs on the GPU machine (docs/validation.md), per vLLM version and model runner.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

GIB = 1 << 30


@dataclass(frozen=True)
class Calibration:
    """Estimated terms of vLLM's memory accounting for one vLLM version / model runner."""

    vllm_version: str
    model_runner: str
    source: str
    """Where the numbers come from (measurement date and runs, or the reference they were taken from)."""

    weight_overhead_gib: float
    """'Model loading took X GiB' minus raw parameter bytes: rotary caches and other buffers (per GPU)."""
    non_torch_gib: float
    """Non-torch increase during the profile on a single GPU."""
    non_torch_tp_gib: float
    """Extra non-torch increase per GPU when TP or PP > 1 (NCCL, custom all-reduce buffers)."""
    cuda_context_gib: float
    """CUDA context + allocator state already used before vLLM's memory snapshot (limits utilization)."""
    nccl_init_gib: float
    """Memory NCCL takes before the snapshot when world size > 1 (also limits utilization)."""
    cudagraph_gib: float
    """CUDA-graph memory estimate subtracted when graphs are on (0 with --enforce-eager)."""
    lm_activation_factor: float
    """Multiplier on the LM dummy-pass estimate 2·T·(a·H + b·I/t) bytes."""
    lm_hidden_buffers: float
    """a: hidden-size buffers per token that TP does not shard (residual, row-parallel outputs before the all-reduce)."""
    lm_mlp_buffers: float
    """b: MLP-size buffers per token, sharded by TP."""
    sampler_bytes_per_logit: float
    """Bytes per (row × vocab) of the sampler dummy on the last PP stage (fp32 logits + a copy)."""
    vit_factor: float
    """Multiplier on the analytic ViT peak (docs/planner.md § vision encoder); 1.0 = the lower bound."""
    encoder_in_profile: bool
    """True when the start-up profile runs the vision encoder (V1 runner); False on the V2 runner,
    whose profile skips it, so the encoder's run-time peak is not reserved (issue: runtime OOM)."""


# vLLM 0.26.0, V2 model runner (the default for Qwen2.5-VL in 0.26): the start-up profile covers the
# language model only. Initial values from the shared reference (vllm-memory.md §2.4, §5); refitted
# against the GPU machine in docs/validation.md.
V026_V2 = Calibration(
    vllm_version="0.26.0", model_runner="v2",
    source="fitted 2026-11-24 on one H100 80GB HBM3, vLLM 0.26.0, torch 2.11.0+cu130, dummy weights, "
           "8 of 20 runs (docs/validation.md; benchmarks/gpu/compare_plan.py --fit), V2 vit_factor from the "
           "worst-case-video runs through vlmctl serve (docs/validation.md § 2); "
           "LM activation split from the TP runs of issue 8 (several Ray nodes on one GPU); "
           "non_torch_tp_gib and nccl_init_gib are still reference estimates (no multi-GPU machine lent)",
    weight_overhead_gib=0.18, non_torch_gib=0.23, non_torch_tp_gib=0.25, cuda_context_gib=0.52,
    nccl_init_gib=0.25, cudagraph_gib=0.0, lm_activation_factor=1.091, lm_hidden_buffers=9.72, lm_mlp_buffers=1.52,
    sampler_bytes_per_logit=0.0, vit_factor=1.70, encoder_in_profile=False,
)
# lm_hidden_buffers / lm_mlp_buffers: the single-GPU runs fix only their weighted sum (I/H is 5.3-5.4 for 3B, 7B and
# 32B); the split comes from the TP runs of issue 8 (Ray nodes sharing one H100, docs/validation.md § 7): torch peak
# 1.06 GiB at TP 1, 0.82 at TP 2 (fitted), 0.75 at TP 4 (predicted 0.70). The earlier 2·H + 3·I/t gave 0.59 and
# 0.36 at TP 2 and 4. Single-GPU predictions move by under 1.3 %.
# vit_factor on the V2 runner only sizes the encoder's run-time reserve (its profile has no encoder). Measured
# through `vlmctl serve` with CUDA graphs (docs/validation.md § 2), the worst-case video OOMed with 17.6 GiB left
# beyond the budget and served with 22.3 GiB: 1.70 lands the 7B plan on the u that served it. It covers what the
# reserve does not model yet: the 0.89 GiB of CUDA graphs V2 captures outside the budget, the compiled encoder's
# larger peak and allocator fragmentation. The V1 runner's profiled ViT peak fits 1.02.

# vLLM 0.26.0 with VLLM_USE_V2_MODEL_RUNNER=0: the V1 runner profiles the worst-case image/video.
# Measured: the V1 profile adds the sampler dummy (7.69 B per row x vocab) and subtracts its CUDA-graph
# estimate (0.46 GiB logged for 7B); the V2 runner logs no graph estimate (profile_cudagraph_memory
# returns 0) and its peak does not grow with max_num_seqs.
V026_V1 = replace(V026_V2, model_runner="v1", encoder_in_profile=True, sampler_bytes_per_logit=7.69,
                  cudagraph_gib=0.46, vit_factor=1.02)

CALIBRATIONS = {("0.26.0", "v2"): V026_V2, ("0.26.0", "v1"): V026_V1}
DEFAULT_VLLM_VERSION = "0.26.0"


def calibration(vllm_version: str, model_runner: str) -> Calibration:
    """The constants for a vLLM version and runner (falls back to the newest known version)."""
    return CALIBRATIONS.get((vllm_version, model_runner)) or CALIBRATIONS[(DEFAULT_VLLM_VERSION, model_runner)]
