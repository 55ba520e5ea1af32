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
from functools import cached_property

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
                        dtype: str, quantization: str | None, vision: str, expert_parallel: bool = False,
                        data_parallel: int = 1) -> float:
    """Weights on one GPU of a stage. ``vision``: 'weights' (sharded by TP), 'data' (replicated) or 'none'.

    MoE: the router is replicated on every rank; routed experts are split by TP (each expert's MLP width), or
    with ``expert_parallel`` dealt whole over the TP × DP ranks of the expert-parallel group (vLLM's EP size is
    TP × DP; the busiest rank holds ⌈experts / EP⌉).
    """
    b = dtype_bytes(dtype)
    n = spec.num_hidden_layers
    linear = spec.lm_linear_params_per_layer
    other = spec.lm_layer_params - linear
    if quantization:
        layer = linear * quant_bytes_per_param(spec, quantization) + other * b
    else:
        layer = spec.lm_layer_params * b
    experts = spec.lm_expert_params / n * layers
    router = spec.lm_router_params / n * layers
    scale = layer / (spec.lm_layer_params or 1)
    total = layers * layer - (experts + router) * scale
    emb = spec.embedding_params * b
    if first:
        total += emb
    if last and (not spec.tie_word_embeddings or not first):
        total += emb
    total /= tp
    total += router * scale
    if experts:
        moe = spec.moe
        ep = tp * data_parallel
        share = math.ceil(moe.num_experts / ep) / moe.num_experts if expert_parallel else 1 / tp
        total += experts * scale * share
    if vision == "weights":
        total += spec.vision.params * b / tp
    elif vision == "data":
        total += spec.vision.params * b
    return total


def kv_groups(spec: ModelSpec) -> tuple[tuple[tuple[int, ...], ...], int]:
    """A hybrid's KV-cache groups (decoder layer indices of each) and how many of them are linear-attention
    groups, as vLLM forms them (see ``cache_shape``). Depends on the model only, so callers sizing many stages
    compute it once."""
    full = [i for i in range(spec.num_hidden_layers) if spec.layer_type(i) == "full_attention"]
    linear = [i for i in range(spec.num_hidden_layers) if spec.layer_type(i) != "full_attention"]
    counts = [len(x) for x in (full, linear) if x]
    group = min(counts)
    if max(counts) < group * 1.5:
        group = max(counts)
    groups = tuple(tuple(kind[g::math.ceil(len(kind) / group)]) for kind in (full, linear) if kind
                   for g in range(math.ceil(len(kind) / group)))
    return groups, math.ceil(len(linear) / group) if linear else 0


def cache_shape(spec: ModelSpec, tp: int, kv_bytes: int, start: int, layers: int,
                groups: tuple[tuple[tuple[int, ...], ...], int] | None = None) -> dict:
    """vLLM's KV-cache shape for the decoder layers [start, start + layers) on one GPU.

    All-attention models: a 16-token block, one page per layer. Hybrids (linear-attention state + full
    attention), as vLLM 0.26 lays them out: the attention block grows to the smallest multiple of 16 tokens
    whose page holds one sequence's state of a linear layer (platforms/interface.py
    Platform._align_hybrid_block_size, mamba_cache_mode 'none' since prefix caching is off for hybrids by
    default: engine/arg_utils.py _set_default_chunked_prefill_and_prefix_caching_args); the state page is padded
    to that size; layers are grouped by type into groups of the smaller type's count and every group shares one
    pool of blocks (v1/core/kv_cache_utils.py _get_kv_cache_groups_uniform_page_size,
    get_kv_cache_config_from_groups); a request takes ⌈L / block⌉ blocks of the attention group and one block of
    every linear group (v1/kv_cache_interface.py MambaSpec.max_memory_usage_bytes). ``groups``: ``kv_groups(spec)``
    when the caller has it.
    """
    layout = spec.family.cache_layout(spec, tp, kv_bytes, BLOCK_SIZE, range(start, start + layers))
    if not layout.linear_layers:
        return {"page": layout.attention_page_bytes, "block_size": BLOCK_SIZE, "group_size": layers,
                "state_blocks": 0, "state_bytes": 0}
    per_token = layout.attention_page_bytes // BLOCK_SIZE
    block = BLOCK_SIZE * math.ceil(layout.state_bytes / (BLOCK_SIZE * per_token))
    layer_groups, state_groups = groups or kv_groups(spec)
    on_stage = [sum(1 for i in g if start <= i < start + layers) for g in layer_groups]
    return {"page": block * per_token, "block_size": block, "group_size": max(1, max(on_stage)),
            "state_blocks": state_groups, "state_bytes": layout.state_bytes * layout.linear_layers}


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
    return tokens * spec.family.encoder_output_width(spec) * dtype_bytes(dtype)


def lm_activation_bytes(spec: ModelSpec, *, tp: int, tokens: int, seqs: int, last: bool, cal: Calibration) -> float:
    """LM dummy pass over ``tokens`` tokens, plus the sampler dummy on the last stage."""
    mlp = spec.family.mlp_activation_width(spec, tp)
    per_token = cal.lm_hidden_buffers * spec.hidden_size + cal.lm_mlp_buffers * mlp
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
    block_size: int = BLOCK_SIZE
    """Tokens per attention block (hybrids: grown so one page holds a linear layer's state)."""
    group_size: int = 0
    """Layers sharing one pool of blocks (vLLM's KV-cache group size); 0 = every layer on the stage."""
    state_blocks: int = 0
    """Blocks one request takes for the linear-attention state (one per linear group); 0 without one."""
    state_bytes: int = 0
    """Linear-attention state of one sequence on this GPU, over the stage's linear layers (unpadded)."""

    @property
    def pool_layers(self) -> int:
        return self.group_size or self.layers

    @cached_property
    def blocks(self) -> int:
        if self.available_kv <= 0:
            return 0
        return int(self.available_kv // self.page // self.pool_layers)

    def blocks_per_request(self, max_model_len: int) -> int:
        return math.ceil(max_model_len / self.block_size) + self.state_blocks

    def need_for_len(self, max_model_len: int) -> float:
        """KV bytes one request of max_model_len needs on this worker (vLLM's max-length check)."""
        return self.pool_layers * self.page * self.blocks_per_request(max_model_len)

    def estimated_max_len(self, max_model_len: int) -> int:
        """vLLM's 'estimated maximum model length' for this worker."""
        if self.available_kv <= 0:
            return 0
        return min(max_model_len, max(0, self.blocks - self.state_blocks) * self.block_size)

    def concurrency(self, max_model_len: int) -> float:
        """Requests of max_model_len the pool holds (vLLM's 'Maximum concurrency')."""
        return self.blocks / self.blocks_per_request(max_model_len)

    def kv_tokens(self, max_model_len: int) -> int:
        """vLLM's 'GPU KV cache size: N tokens' (concurrency × max_model_len; blocks × 16 without a state)."""
        if not self.state_blocks:
            return self.blocks * self.block_size
        return int(self.concurrency(max_model_len) * max_model_len)


def gib(x: float) -> float:
    return round(x / GIB, 2)
