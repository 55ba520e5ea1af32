"""vLLM's memory arithmetic for a vision-language model, per GPU and per pipeline stage.

Mirrors vLLM V1's KV budget (vllm/v1/worker/gpu_worker.py determine_available_memory,
vllm/v1/core/kv_cache_utils.py get_kv_cache_configs; see docs/planner.md for source lines):

    available_kv = ceil(total × u) − weights − activation_peak − non_torch − cudagraph_estimate
    blocks       = floor(available_kv / page / layers_on_stage)       (minimum over workers)
    fails when     layers × page × ceil(L / 16) > available_kv

The estimated terms (activation, non-torch, graphs) come from vlmctl.plan.calibration; what depends on the
model family (vision geometry, encoder peak, cache layout) is asked of ``spec.family``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from vlmctl.models.spec import ModelSpec
from vlmctl.plan.calibration import GIB, Calibration

BLOCK_SIZE = 16


def dtype_bytes(dtype: str) -> int:
    return 4 if dtype == "float32" else 2


def pp_partition(num_layers: int, pp: int) -> list[int]:
    """vLLM's default split (distributed/utils.py get_pp_indices): remainder to stages -2, -3, …"""
    base = [num_layers // pp] * pp
    for i in range(num_layers % pp):
        base[-2 - i if pp > 1 else 0] += 1
    return base


def kv_heads_per_gpu(spec: ModelSpec, tp: int) -> int:
    """KV heads a rank holds; replicated once TP exceeds the KV head count."""
    return max(1, spec.num_key_value_heads // tp)


def kv_page_bytes(spec: ModelSpec, tp: int, kv_bytes: int) -> int:
    """Bytes per attention layer per 16-token block on one GPU (AttentionSpec.real_page_size_bytes)."""
    return spec.family.cache_layout(spec, tp, kv_bytes, BLOCK_SIZE, range(spec.num_hidden_layers)).attention_page_bytes


def quant_bytes_per_param(spec: ModelSpec, quantization: str | None) -> float:
    """Bytes per quantized linear weight: int-b qweight + qzeros + fp16 scales per group."""
    if quantization in (None, ""):
        return 0.0
    if quantization in ("fp8",):
        return 1.0 + 4.0 / 128
    q = spec.quantization
    bits = q.bits if q else 4
    group = q.group_size if q and q.group_size > 0 else 128
    return bits / 8 + (bits / 8 + 2) / group


def stage_weights_bytes(spec: ModelSpec, *, tp: int, layers: int, first: bool, last: bool,
                        dtype: str, quantization: str | None, vision: str) -> float:
    """Weights on one GPU of a stage. ``vision``: 'weights' (sharded by TP), 'data' (replicated) or 'none'."""
    b = dtype_bytes(dtype)
    linear = spec.lm_linear_params_per_layer
    other = spec.lm_layer_params - linear
    if quantization:
        layer = linear * quant_bytes_per_param(spec, quantization) + other * b
    else:
        layer = spec.lm_layer_params * b
    total = layers * layer
    emb = spec.embedding_params * b
    if first:
        total += emb
    if last and (not spec.tie_word_embeddings or not first):
        total += emb
    total /= tp
    if vision == "weights":
        total += spec.vision.params * b / tp
    elif vision == "data":
        total += spec.vision.params * b
    return total


# ---- multimodal items -------------------------------------------------------------------------

def image_tokens(spec: ModelSpec, max_pixels: int) -> int:
    """LM tokens of the largest image the processor admits (the family's geometry)."""
    return spec.family.image_tokens(spec, max_pixels)


def video_tokens(spec: ModelSpec, max_pixels: int, frames: int) -> int:
    """LM tokens of a video of ``frames`` frames at the largest size."""
    return spec.family.video_tokens(spec, max_pixels, frames)


def patches_per_token(spec: ModelSpec) -> int:
    return spec.family.patches_per_token(spec)


def vit_peak_bytes(spec: ModelSpec, patches: int, tp_eff: int, cal: Calibration) -> float:
    """Transient peak of one ViT forward over ``patches`` patches: the family's analytic peak × vit_factor."""
    return cal.vit_factor * spec.family.vit_peak_bytes(spec, patches, tp_eff)


def encoder_output_bytes(spec: ModelSpec, tokens: int, dtype: str) -> float:
    return tokens * spec.vision.out_hidden_size * dtype_bytes(dtype)


def lm_activation_bytes(spec: ModelSpec, *, tp: int, tokens: int, seqs: int, last: bool, cal: Calibration) -> float:
    """LM dummy pass over ``tokens`` tokens, plus the sampler dummy on the last stage."""
    per_token = cal.lm_hidden_buffers * spec.hidden_size + cal.lm_mlp_buffers * spec.intermediate_size / tp
    lm = cal.lm_activation_factor * 2 * tokens * per_token
    sampler = cal.sampler_bytes_per_logit * min(seqs, tokens) * spec.vocab_size if last else 0.0
    return lm + sampler


@dataclass(frozen=True)
class StageMemory:
    """The accounting for one GPU of one stage, in bytes (what vLLM's profile would log)."""

    total: float
    requested: float
    weights: float
    activation: float
    non_torch: float
    cudagraph: float
    encoder_runtime: float
    available_kv: float
    page: int
    layers: int

    @property
    def blocks(self) -> int:
        if self.available_kv <= 0:
            return 0
        return int(self.available_kv // self.page // self.layers)

    def need_for_len(self, max_model_len: int) -> float:
        """KV bytes one request of max_model_len needs on this worker (vLLM's max-length check)."""
        return self.layers * self.page * math.ceil(max_model_len / BLOCK_SIZE)

    def estimated_max_len(self, max_model_len: int) -> int:
        """vLLM's 'estimated maximum model length' for this worker."""
        if self.available_kv <= 0:
            return 0
        return min(max_model_len, int(self.available_kv // (self.page * self.layers)) * BLOCK_SIZE)


def gib(x: float) -> float:
    return round(x / GIB, 2)
