"""Family: what one model family means for the planner — parsing, parameter counts, vision geometry,
vision-encoder peak, cache layout and TP/EP rules.

``Family`` holds the arithmetic every Qwen vision-language family shares (a Qwen2-style decoder:
q/k/v/o attention and a SwiGLU MLP; a ViT whose merger turns ``merge²`` patches into one LM token);
each family module overrides what differs. Nothing here names a vLLM version: where a number is
vLLM's (the profiling dummy video, deepstack buffers), the family cites the model file it mirrors.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from vlmctl.errors import ConfigError
from vlmctl.findings import Finding
from vlmctl.models.spec import ModelSpec, QuantSpec, VisionSpec


@dataclass(frozen=True)
class CacheLayout:
    """Per-GPU cache shape of one stage's decoder layers (one TP rank)."""

    attention_layers: int
    """Layers with a per-token KV cache."""
    attention_page_bytes: int
    """Bytes per attention layer per block of ``block_size`` tokens (K and V)."""
    linear_layers: int = 0
    """Layers with a fixed per-sequence state (gated DeltaNet / Mamba-style)."""
    state_bytes: int = 0
    """Bytes of one linear layer's state for one sequence (conv state + recurrent state)."""


def config_value(cfg: dict, key: str, source: str, text: dict | None = None, family: str = "Qwen-VL"):
    """``key`` from text_config, else the top level; a ConfigError naming the key and the family when absent."""
    for d in (text or {}, cfg):
        if key in d:
            return d[key]
    raise ConfigError(
        f"{source}: config.json has no '{key}', which every {family} config carries.",
        fix="point at the model's own folder (the one with config.json from the checkpoint)",
    )


def _pixels(pre: dict | None) -> tuple[int | None, int | None]:
    """(min_pixels, max_pixels) from a (video) preprocessor config: explicit keys, else ``size``."""
    pre = pre or {}
    size = pre.get("size") or {}
    return (pre.get("min_pixels") or size.get("shortest_edge"), pre.get("max_pixels") or size.get("longest_edge"))


class Family:
    """Base of every model family (Qwen2-style decoder, Qwen-ViT geometry)."""

    name = "Qwen-VL"
    model_types: tuple[str, ...] = ()
    architectures: tuple[str, ...] = ()
    vllm_model_files: tuple[str, ...] = ()
    """vLLM model modules (model_executor/models/*.py) whose frames name this family in a traceback."""
    max_frames_per_video = 14
    """Frames of the dummy video vLLM profiles with (the model file's _MAX_FRAMES_PER_VIDEO)."""
    default_min_pixels = 3136
    default_max_pixels = 12845056
    chat_template_tokens = 24
    """Chat-template tokens around a one-turn prompt (Qwen2.5-VL's template: system prompt, role markers, vision
    start/end); used by the speed model to size a request."""

    # ---- parsing ---------------------------------------------------------------------------
    def vision_from_config(self, vc: dict, hidden: int) -> VisionSpec:
        raise NotImplementedError

    def text_extras(self, text: dict, config: dict, source: str) -> dict:
        """Family-specific ModelSpec fields (MoE, layer types, attention variants)."""
        return {}

    def parse(self, config: dict, source: str, *, preprocessor: dict | None = None,
              tokenizer_config: dict | None = None, generation_config: dict | None = None,
              video_preprocessor: dict | None = None) -> ModelSpec:
        """Build the ModelSpec from config.json (flat or nested) and the processor configs."""
        text = config.get("text_config") or {}
        vc = config.get("vision_config")
        if not isinstance(vc, dict):
            raise ConfigError(f"{source}: config.json has no vision_config.", fix="use a vision-language checkpoint")

        def get(key: str):
            return config_value(config, key, source, text, self.name)

        heads = get("num_attention_heads")
        hidden = get("hidden_size")
        qc = config.get("quantization_config") or text.get("quantization_config")
        gen = {k: v for k, v in (generation_config or {}).items()
               if k in ("temperature", "top_p", "top_k", "repetition_penalty") and isinstance(v, (int, float))}
        tok_len = (tokenizer_config or {}).get("model_max_length")
        min_px, max_px = _pixels(preprocessor)
        vmin, vmax = _pixels(video_preprocessor) if video_preprocessor else (None, None)
        tied = config.get("tie_word_embeddings", text.get("tie_word_embeddings", False))
        return ModelSpec(
            id=source,
            model_type=config["model_type"],
            hidden_size=hidden,
            intermediate_size=text.get("intermediate_size", config.get("intermediate_size", 0)),
            num_hidden_layers=get("num_hidden_layers"),
            num_attention_heads=heads,
            num_key_value_heads=text.get("num_key_value_heads", config.get("num_key_value_heads", heads)),
            head_dim=text.get("head_dim") or config.get("head_dim") or hidden // heads,
            vocab_size=get("vocab_size"),
            tie_word_embeddings=bool(tied),
            max_position_embeddings=get("max_position_embeddings"),
            tokenizer_max_length=int(tok_len) if isinstance(tok_len, (int, float)) and tok_len < 10**9 else None,
            torch_dtype=str(config.get("torch_dtype") or config.get("dtype") or text.get("dtype")
                            or text.get("torch_dtype") or "bfloat16"),
            vision=self.vision_from_config(vc, hidden),
            min_pixels=min_px or self.default_min_pixels,
            max_pixels=max_px or self.default_max_pixels,
            video_min_pixels=vmin,
            video_max_pixels=vmax,
            quantization=QuantSpec.model_validate(qc) if qc else None,
            generation_defaults=gen,
            **self.text_extras(text or config, config, source),
        )

    # ---- parameters ------------------------------------------------------------------------
    def vision_params(self, v: VisionSpec) -> int:
        raise NotImplementedError

    def attention_params(self, spec: ModelSpec) -> int:
        """One full-attention block: q (×2 with an output gate), k, v with optional bias, o, optional q/k norms."""
        h, hd, nq, nkv = spec.hidden_size, spec.head_dim, spec.num_attention_heads, spec.num_key_value_heads
        q_out = nq * hd * (2 if spec.attn_output_gate else 1)
        kv_out = 2 * nkv * hd
        bias = (q_out + kv_out) if spec.attention_bias else 0
        norms = 2 * hd if spec.qk_norm else 0
        return h * (q_out + kv_out) + bias + nq * hd * h + norms

    def attention_linear_params(self, spec: ModelSpec) -> int:
        h, hd, nq, nkv = spec.hidden_size, spec.head_dim, spec.num_attention_heads, spec.num_key_value_heads
        return h * (nq * hd * (2 if spec.attn_output_gate else 1) + 2 * nkv * hd) + nq * hd * h

    def mixer_params(self, spec: ModelSpec, layer: int) -> int:
        """The token mixer of one layer (attention here; hybrids override for their linear layers)."""
        return self.attention_params(spec)

    def mixer_linear_params(self, spec: ModelSpec, layer: int) -> int:
        return self.attention_linear_params(spec)

    def mlp_params(self, spec: ModelSpec, layer: int) -> int:
        """The MLP of one layer: dense SwiGLU, or the router + experts (+ shared expert and its gate)."""
        h = spec.hidden_size
        moe = spec.moe
        if moe is None or not moe.is_sparse(layer):
            return 3 * h * spec.intermediate_size
        shared = 3 * h * moe.shared_expert_intermediate_size + (h if moe.shared_expert_intermediate_size else 0)
        return h * moe.num_experts + moe.num_experts * 3 * h * moe.moe_intermediate_size + shared

    def layer_params(self, spec: ModelSpec, layer: int) -> int:
        """One decoder layer: token mixer, MLP, two RMSNorms."""
        return self.mixer_params(spec, layer) + self.mlp_params(spec, layer) + 2 * spec.hidden_size

    def layer_linear_params(self, spec: ModelSpec, layer: int) -> int:
        """The part of a layer that AWQ/GPTQ quantize (linear weights without biases; the router stays)."""
        h = spec.hidden_size
        moe = spec.moe
        if moe is None or not moe.is_sparse(layer):
            mlp = 3 * h * spec.intermediate_size
        else:
            mlp = moe.num_experts * 3 * h * moe.moe_intermediate_size + 3 * h * moe.shared_expert_intermediate_size
        return self.mixer_linear_params(spec, layer) + mlp

    def expert_params(self, spec: ModelSpec, layers: range) -> int:
        """Routed-expert parameters in ``layers`` (what expert parallelism distributes instead of TP-sharding)."""
        moe = spec.moe
        if moe is None:
            return 0
        per = 3 * spec.hidden_size * moe.moe_intermediate_size
        return sum(moe.num_experts * per for i in layers if moe.is_sparse(i))

    def router_params(self, spec: ModelSpec, layers: range) -> int:
        """Router (gate) parameters in ``layers``: replicated on every rank."""
        moe = spec.moe
        if moe is None:
            return 0
        return sum(spec.hidden_size * moe.num_experts for i in layers if moe.is_sparse(i))

    def mlp_activation_width(self, spec: ModelSpec, tp: int) -> float:
        """Elements per token of the MLP's working buffers on one rank: the dense MLP width over TP, or for MoE
        vLLM 0.26's fused-MoE workspaces (fused_moe/experts/triton_moe.py TritonExperts.workspace_shapes: per token
        and routed expert max(I/t, H) + max(2I/t, H)) plus the shared expert's width over TP."""
        moe = spec.moe
        if moe is None:
            return spec.intermediate_size / tp
        i, h = moe.moe_intermediate_size / tp, spec.hidden_size
        return moe.experts_per_token * (max(i, h) + max(2 * i, h)) + moe.shared_expert_intermediate_size / tp

    # ---- vision geometry -------------------------------------------------------------------
    def grid(self, spec: ModelSpec) -> int:
        """Pixels per side of one LM token (patch × merge): images are resized to multiples of it."""
        return spec.vision.patch_size * spec.vision.spatial_merge_size

    def pixels_per_token(self, spec: ModelSpec) -> int:
        return self.grid(spec) ** 2

    def patches_per_token(self, spec: ModelSpec) -> int:
        return spec.vision.spatial_merge_size ** 2

    def image_tokens(self, spec: ModelSpec, max_pixels: int) -> int:
        """LM tokens of the largest image the processor admits (vLLM qwen2_vl.py get_image_size_with_most_features:
        the largest grid of ``grid``-pixel cells within max_pixels, aspect ≤ 200)."""
        unit = self.grid(spec)
        n = max(1, max_pixels // (unit * unit))
        for s in range(n, 0, -1):
            h = int(math.isqrt(s))
            while h > 1 and s % h:
                h -= 1
            w = s // h
            if w / h <= 200:
                return h * w
        return 1

    def video_tokens(self, spec: ModelSpec, max_pixels: int, frames: int) -> int:
        """LM tokens of a video of ``frames`` frames at the largest size (``temporal_patch_size`` frames per step)."""
        return self.image_tokens(spec, max_pixels) * max(1, math.ceil(frames / spec.vision.temporal_patch_size))

    def video_frames_within(self, spec: ModelSpec, max_pixels: int, max_model_len: int, frames: int) -> int:
        """Frames a video may carry so that it still fits one request of ``max_model_len`` tokens."""
        pair = self.image_tokens(spec, max_pixels)
        return min(frames, spec.vision.temporal_patch_size * max(1, max_model_len // pair))

    def video_max_pixels(self, spec: ModelSpec) -> int:
        """Largest area of one video frame the processor admits."""
        return spec.video_max_pixels or spec.max_pixels

    # ---- memory ----------------------------------------------------------------------------
    def vit_peak_bytes(self, spec: ModelSpec, patches: int, tp_eff: int) -> float:
        """Analytic transient peak of one ViT forward over ``patches`` patches (docs/planner.md § vision encoder).

        fp32 pixel values + block input/residual + the larger of the attention working set
        (qkv, contiguous q/k copy, rotated q/k, out: ≈ 9·E/t) and the MLP working set (3·I/t gated, 2·I/t plain).
        The planner multiplies it by the calibrated vit_factor.
        """
        v = spec.vision
        e, i = v.hidden_size, v.intermediate_size
        pixels = v.in_channels * v.temporal_patch_size * v.patch_size ** 2 * 4
        mlp = (3 if v.gated_mlp else 2) * i / tp_eff
        per_patch = pixels + 2 * max(e + 9 * e / tp_eff, 2 * e + mlp)
        return patches * per_patch

    def encoder_output_width(self, spec: ModelSpec) -> int:
        """Width of one vision token as the tower hands it to the language model."""
        return spec.vision.out_hidden_size

    def persistent_buffer_bytes(self, spec: ModelSpec, max_num_batched_tokens: int, dtype_bytes: int) -> float:
        """Buffers the model allocates once at load time beyond its weights (none here)."""
        return 0.0

    def cache_layout(self, spec: ModelSpec, tp: int, kv_bytes: int, block_size: int, layers: range) -> CacheLayout:
        """Per-GPU cache of decoder ``layers``: every layer holds K and V for its share of the KV heads
        (replicated once TP exceeds the KV head count)."""
        heads = max(1, spec.num_key_value_heads // tp)
        page = 2 * block_size * heads * spec.head_dim * kv_bytes
        return CacheLayout(attention_layers=len(layers), attention_page_bytes=page)

    # ---- parallelism rules -----------------------------------------------------------------
    def parallel_rules(self, spec: ModelSpec, tp: int, expert_parallel: bool, dp: int = 1) -> list[Finding]:
        """Divisibility rules beyond the shared ones (heads, KV heads, vision heads/MLP): MoE experts.

        vLLM 0.26: without expert parallelism FusedMoE splits each expert's width by TP and asserts it divides
        (model_executor/layers/fused_moe/layer.py, ``divide``); with it, ``determine_expert_map`` deals whole
        experts, the first ``experts % ep`` ranks one more; a dense model has nothing to deal.
        """
        moe = spec.moe
        if moe is None:
            if expert_parallel:
                return [Finding(id="ep-dense-model", severity="error",
                                message=f"--enable-expert-parallel on a dense model: {self.name} has no experts "
                                        "to distribute.",
                                fix="drop --enable-expert-parallel")]
            return []
        if expert_parallel:
            ep = tp * dp
            if moe.num_experts % ep:
                most = -(-moe.num_experts // ep)
                return [Finding(id="ep-experts-uneven", severity="info",
                                message=f"{moe.num_experts} experts over {ep} expert-parallel ranks: some ranks hold "
                                        f"{most}, others {moe.num_experts // ep}; memory is sized for {most}.",
                                fix="an expert-parallel size that divides the expert count balances the ranks")]
            return []
        if moe.moe_intermediate_size % tp:
            return [Finding(id="tp-moe-intermediate", severity="error",
                            message=f"{moe.moe_intermediate_size} is not divisible by {tp} (moe_intermediate_size "
                                    f"under tensor parallel size {tp}, each expert's MLP split across ranks).",
                            fix="add --enable-expert-parallel (whole experts per rank), or a "
                                "--tensor-parallel-size that divides moe_intermediate_size")]
        return []
