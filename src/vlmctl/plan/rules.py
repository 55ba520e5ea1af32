"""Static rules: one function per check, each with a stable id; messages use vLLM's wording.

A rule takes a ``RuleInput`` and returns findings (empty = passes). Memory rules (KV cache,
free memory, encoder run-time peak) live in vlmctl.plan.search, where the numbers are.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vlmctl.findings import Finding
from vlmctl.hardware.gpus import GpuType
from vlmctl.models.spec import ModelSpec

AWQ_FAMILY = ("awq", "awq_marlin")
MIN_CC = {"awq": (7, 5), "awq_marlin": (7, 5), "gptq": (6, 0), "gptq_marlin": (7, 5), "fp8": (7, 5),
          "compressed-tensors": (7, 0), "bitsandbytes": (7, 0)}
"""Minimum compute capability per quantization method (vLLM quantization/*.py get_min_capability)."""
QUANT_DTYPES = {"awq": ("float16",)}
"""Activation dtypes a kernel accepts when narrower than fp16+bf16 (awq.py get_supported_act_dtypes)."""


@dataclass(frozen=True)
class RuleInput:
    """One configuration as the static rules see it."""

    spec: ModelSpec
    tp: int
    pp: int
    dtype: str
    requested_dtype: str
    quantization: str | None
    vision_mode: str
    """'weights', 'data' or 'none' (vision tower off: all mm limits 0)."""
    gpus: tuple[GpuType, ...]
    """Distinct GPU types the engine runs on."""
    partition: tuple[int, ...]
    expert_parallel: bool = False
    """--enable-expert-parallel: MoE experts dealt whole over the TP × DP ranks instead of split by TP."""
    data_parallel: int = 1
    """Replicas (--data-parallel-size): with expert parallelism they share one expert group."""


Rule = Callable[[RuleInput], list[Finding]]


def tp_heads(x: RuleInput) -> list[Finding]:
    n = x.spec.num_attention_heads
    if n % x.tp:
        return [Finding(id="tp-heads", severity="error",
                        message=f"Total number of attention heads ({n}) must be divisible by tensor parallel size ({x.tp}).",
                        fix="use a --tensor-parallel-size that divides the head count")]
    return []


def tp_kv_heads(x: RuleInput) -> list[Finding]:
    k = x.spec.num_key_value_heads
    if (k >= x.tp and k % x.tp) or (k < x.tp and x.tp % k):
        return [Finding(id="tp-kv-heads", severity="error",
                        message=f"{max(k, x.tp)} is not divisible by {min(k, x.tp)}: {k} KV heads cannot be split "
                                f"or replicated evenly over tensor parallel size {x.tp}.",
                        fix="use a --tensor-parallel-size that divides, or is a multiple of, the KV head count")]
    if k < x.tp:
        return [Finding(id="tp-kv-replicated", severity="info",
                        message=f"{k} KV heads over TP {x.tp}: each KV head is replicated {x.tp // k}×, so TP beyond {k} "
                                "adds no KV-cache capacity per GPU.",
                        fix="prefer pipeline parallelism for more KV capacity")]
    return []


def tp_vision(x: RuleInput) -> list[Finding]:
    if x.vision_mode != "weights" or x.tp == 1:
        return []
    v = x.spec.vision
    out = []
    if v.num_heads % x.tp:
        out.append(Finding(id="tp-vision-heads", severity="error",
                           message=f"{v.num_heads} is not divisible by {x.tp}: the vision encoder's {v.num_heads} heads "
                                   f"cannot be split over tensor parallel size {x.tp}.",
                           fix="add --mm-encoder-tp-mode data (replicates the vision encoder), or lower --tensor-parallel-size"))
    if v.intermediate_size % x.tp:
        out.append(Finding(id="tp-vision-mlp", severity="error",
                           message=f"AssertionError: {v.intermediate_size} is not divisible by {x.tp} (vision MLP width "
                                   f"{v.intermediate_size} under tensor parallel size {x.tp}).",
                           fix="add --mm-encoder-tp-mode data (replicates the vision encoder), or lower --tensor-parallel-size"))
    return out


def tp_vocab(x: RuleInput) -> list[Finding]:
    if x.spec.vocab_size % x.tp:
        return [Finding(id="tp-vocab", severity="info",
                        message=f"vocab_size {x.spec.vocab_size} is not divisible by TP {x.tp}; vLLM pads the embedding.",
                        fix="")]
    return []


def quant_alignment(x: RuleInput) -> list[Finding]:
    """AWQ/Marlin shard alignment of the row-parallel layers (o_proj, down_proj) read from the checkpoint config."""
    if x.quantization not in AWQ_FAMILY + ("gptq", "gptq_marlin"):
        return []
    q = x.spec.quantization
    group = q.group_size if q and q.group_size > 0 else 128
    shards = {"down_proj": x.spec.intermediate_size // x.tp,
              "o_proj": x.spec.num_attention_heads * x.spec.head_dim // x.tp}
    if x.spec.intermediate_size % x.tp:
        return [Finding(id="quant-shard-align", severity="error",
                        message=f"intermediate_size {x.spec.intermediate_size} is not divisible by TP {x.tp}.",
                        fix="lower --tensor-parallel-size")]
    out = []
    for layer, size in shards.items():
        if size % group:
            out.append(Finding(
                id="quant-shard-align", severity="error",
                message=f"The input size is not aligned with the quantized weight shape. This can be caused by too "
                        f"large tensor parallel size. ({layer}: input_size_per_partition = {size} is not divisible by "
                        f"group_size {group} at TP {x.tp}; marlin: 'Weight input_size_per_partition = {size} is not "
                        f"divisible by min_thread_k = 128')",
                fix="lower --tensor-parallel-size (and use pipeline parallelism), or use a checkpoint whose "
                    "intermediate_size is padded (e.g. the re-released Qwen2.5-VL-72B-Instruct-AWQ)"))
        elif x.quantization in ("awq_marlin", "gptq_marlin") and size % 128:
            out.append(Finding(
                id="quant-marlin-fallback", severity="warning",
                message=f"Layer '{layer}' is not supported by AWQMarlin. Falling back to unoptimized AWQ kernels "
                        f"(input_size_per_partition {size} % 128 != 0 at TP {x.tp}).",
                fix="lower --tensor-parallel-size for the faster Marlin kernel"))
    return out


def quant_capability(x: RuleInput) -> list[Finding]:
    need = MIN_CC.get(x.quantization or "")
    if not need:
        return []
    out = []
    for gpu in x.gpus:
        if gpu.compute_capability < need:
            out.append(Finding(
                id="quant-min-cc", severity="error",
                message=f"The quantization method {x.quantization} is not supported for the current GPU. Minimum "
                        f"capability: {need[0]}{need[1]}. Current capability: {gpu.compute_capability[0]}"
                        f"{gpu.compute_capability[1]}. ({gpu.name})",
                fix="use an unquantized checkpoint on this GPU, or a GPU with a newer compute capability"))
    return out


def quant_dtype(x: RuleInput) -> list[Finding]:
    allowed = QUANT_DTYPES.get(x.quantization or "")
    if allowed and x.dtype not in allowed:
        return [Finding(id="quant-dtype", severity="error",
                        message=f"torch.{x.dtype} is not supported for quantization method {x.quantization}. "
                                f"Supported dtypes: [torch.float16]",
                        fix="--dtype float16")]
    return []


def dtype_capability(x: RuleInput) -> list[Finding]:
    if x.dtype != "bfloat16":
        return []
    out = []
    for gpu in x.gpus:
        if not gpu.bf16:
            out.append(Finding(
                id="dtype-bf16", severity="error",
                message=f"Bfloat16 is only supported on GPUs with compute capability of at least 8.0. Your {gpu.name} "
                        f"GPU has compute capability {gpu.cc_str}. You can use float16 instead by explicitly setting "
                        f"the `dtype` flag in CLI, for example: --dtype=half.",
                fix="--dtype float16"))
    return out


def dtype_auto(x: RuleInput) -> list[Finding]:
    if x.requested_dtype == "auto" and x.spec.torch_dtype == "bfloat16" and x.dtype == "float16":
        old = [g.name for g in x.gpus if not g.bf16]
        return [Finding(id="dtype-auto-fp16", severity="info",
                        message=f"The checkpoint is bfloat16 but {', '.join(old)} (compute capability < 8.0) has no "
                                "bfloat16: the plan uses float16, as vLLM's dtype 'auto' falls back to it.",
                        fix="")]
    return []


def cc_supported(x: RuleInput) -> list[Finding]:
    return [Finding(id="gpu-cc-too-old", severity="error",
                    message=f"{g.name} has compute capability {g.cc_str}; vLLM's CUDA kernels need at least 7.0.",
                    fix="use Volta (7.0) or newer GPUs")
            for g in x.gpus if g.compute_capability < (7, 0)]


def attention_backend(x: RuleInput) -> list[Finding]:
    """Which attention backends vLLM picks per compute capability (platforms/cuda.py priorities)."""
    out = []
    for g in x.gpus:
        if g.compute_capability >= (8, 0):
            continue
        lm = "FLASHINFER if installed, else TRITON_ATTN" if g.compute_capability >= (7, 5) else "TRITON_ATTN / FLEX_ATTENTION"
        out.append(Finding(id="attention-backend", severity="info",
                           message=f"{g.name} (CC {g.cc_str}): FlashAttention needs CC ≥ 8.0, so vLLM uses {lm} for the "
                                   "language model and TORCH_SDPA for the vision encoder (slower, more memory).",
                           fix=""))
    return out


def pp_layers(x: RuleInput) -> list[Finding]:
    n = x.spec.num_hidden_layers
    if x.pp > n:
        return [Finding(id="pp-layers", severity="error",
                        message=f"pipeline_parallel_size {x.pp} exceeds num_hidden_layers {n}.",
                        fix="lower --pipeline-parallel-size")]
    if len(x.partition) != x.pp:
        return [Finding(id="pp-layers", severity="error",
                        message=f"len(partitions)={len(x.partition)} does not match pp_size={x.pp}.",
                        fix="give one VLLM_PP_LAYER_PARTITION entry per stage")]
    if sum(x.partition) != n or min(x.partition) < 1:
        return [Finding(id="pp-layers", severity="error",
                        message=f"sum(partitions)={sum(x.partition)} does not match num_hidden_layers={n}.",
                        fix="make VLLM_PP_LAYER_PARTITION sum to the layer count")]
    return []


def family_parallel(x: RuleInput) -> list[Finding]:
    """The model family's own divisibility rules (MoE expert width or expert parallelism, linear-attention heads)."""
    return x.spec.family.parallel_rules(x.spec, x.tp, x.expert_parallel, x.data_parallel)


RULES: dict[str, Rule] = {
    "tp-heads": tp_heads,
    "tp-kv-heads": tp_kv_heads,
    "tp-vision": tp_vision,
    "tp-vocab": tp_vocab,
    "quant-shard-align": quant_alignment,
    "quant-min-cc": quant_capability,
    "quant-dtype": quant_dtype,
    "dtype-bf16": dtype_capability,
    "dtype-auto-fp16": dtype_auto,
    "gpu-cc-too-old": cc_supported,
    "attention-backend": attention_backend,
    "pp-layers": pp_layers,
    "family-parallel": family_parallel,
}
"""Every static rule, by id. Memory rules (kv-*, free-memory, encoder-runtime-oom, max-model-len-*) are in search."""


def check(x: RuleInput) -> list[Finding]:
    """Run every static rule."""
    return [f for rule in RULES.values() for f in rule(x)]
