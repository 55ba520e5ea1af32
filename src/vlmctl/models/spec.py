"""ModelSpec: what the planner needs to know about a Qwen2-VL / Qwen2.5-VL checkpoint.

Built from a HF-style ``config.json`` dict (plus ``preprocessor_config.json`` and the
checkpoint's ``quantization_config``), whether it comes from a local folder or the built-in
catalog, so both paths share one parser. Both the flat (transformers 4.x) and the nested
``text_config`` (transformers 5.x) layouts are accepted.
"""
from __future__ import annotations

from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict

from vlmctl.errors import ConfigError

SUPPORTED_MODEL_TYPES = ("qwen2_5_vl", "qwen2_vl")


class VisionSpec(BaseModel):
    """The vision tower (ViT + patch merger)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    depth: int
    hidden_size: int
    """ViT embedding width (1280 for every Qwen2.5-VL size)."""
    num_heads: int
    intermediate_size: int
    """ViT MLP width: the number TP must divide in vLLM's default encoder TP mode."""
    gated_mlp: bool
    """Qwen2.5-VL uses a SwiGLU MLP (gate+up+down); Qwen2-VL a plain fc1/fc2 MLP."""
    out_hidden_size: int
    """Merger output = language-model hidden size."""
    patch_size: int = 14
    temporal_patch_size: int = 2
    spatial_merge_size: int = 2
    in_channels: int = 3

    @cached_property
    def params(self) -> int:
        """Parameter count of the tower, computed from its shapes."""
        e, i = self.hidden_size, self.intermediate_size
        attn = (e * 3 * e + 3 * e) + (e * e + e)
        if self.gated_mlp:  # Qwen2.5-VL: RMSNorm ×2, gate/up with bias, down with bias
            mlp = 2 * (e * i + i) + (i * e + e)
            norms = 2 * e
            merger_norm = e
        else:  # Qwen2-VL: LayerNorm ×2 (weight+bias), fc1/fc2
            mlp = (e * i + i) + (i * e + e)
            norms = 4 * e
            merger_norm = 2 * e
        block = attn + mlp + norms
        patch_embed = self.in_channels * self.temporal_patch_size * self.patch_size**2 * e
        merged = e * self.spatial_merge_size**2
        merger = merger_norm + (merged * merged + merged) + (merged * self.out_hidden_size + self.out_hidden_size)
        return self.depth * block + patch_embed + merger


class QuantSpec(BaseModel):
    """The checkpoint's ``quantization_config`` (the fields the planner reads)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    quant_method: str
    bits: int = 4
    group_size: int = 128
    zero_point: bool = True
    version: str | None = None
    modules_to_not_convert: list[str] | None = None


class ModelSpec(BaseModel):
    """Dimensions of a Qwen2(.5)-VL model, from its config files."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    """Catalog id or the local folder it was read from."""
    model_type: Literal["qwen2_5_vl", "qwen2_vl"]
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    vocab_size: int
    tie_word_embeddings: bool
    max_position_embeddings: int
    tokenizer_max_length: int | None = None
    """``model_max_length`` from tokenizer_config.json; vLLM derives max_model_len from the smaller."""
    torch_dtype: str
    vision: VisionSpec
    min_pixels: int = 3136
    max_pixels: int = 12845056
    quantization: QuantSpec | None = None
    generation_defaults: dict[str, float | int] = {}
    """Sampling defaults from generation_config.json (temperature, top_p, top_k, repetition_penalty)."""

    @property
    def is_quantized(self) -> bool:
        return self.quantization is not None

    @property
    def derived_max_model_len(self) -> int:
        """What vLLM derives when --max-model-len is not given."""
        if self.tokenizer_max_length:
            return min(self.max_position_embeddings, self.tokenizer_max_length)
        return self.max_position_embeddings

    @cached_property
    def lm_layer_params(self) -> int:
        """Parameters of one decoder layer (q/k/v with bias, o, SwiGLU MLP, two RMSNorms)."""
        h, i = self.hidden_size, self.intermediate_size
        q = h * self.num_attention_heads * self.head_dim + self.num_attention_heads * self.head_dim
        kv = 2 * (h * self.num_key_value_heads * self.head_dim + self.num_key_value_heads * self.head_dim)
        o = self.num_attention_heads * self.head_dim * h
        return q + kv + o + 3 * h * i + 2 * h

    @cached_property
    def lm_linear_params_per_layer(self) -> int:
        """The part of a decoder layer that AWQ/GPTQ quantize (the linear weights, no biases)."""
        h, i, hd = self.hidden_size, self.intermediate_size, self.head_dim
        return h * (self.num_attention_heads + 2 * self.num_key_value_heads) * hd + self.num_attention_heads * hd * h + 3 * h * i

    @cached_property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @cached_property
    def total_params(self) -> int:
        lm_head = 0 if self.tie_word_embeddings else self.embedding_params
        return (self.num_hidden_layers * self.lm_layer_params + self.embedding_params + lm_head
                + self.hidden_size + self.vision.params)


def _get(cfg: dict, key: str, source: str, text: dict | None = None):
    for d in (text or {}, cfg):
        if key in d:
            return d[key]
    raise ConfigError(
        f"{source}: config.json has no '{key}', which every Qwen2-VL/Qwen2.5-VL config carries.",
        fix="point at the model's own folder (the one with config.json from the checkpoint)",
    )


def spec_from_config(
    config: dict,
    source: str,
    preprocessor: dict | None = None,
    tokenizer_config: dict | None = None,
    generation_config: dict | None = None,
) -> ModelSpec:
    """Parse a HF ``config.json`` dict (flat or with ``text_config``) into a ModelSpec."""
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ConfigError(
            f"{source}: model_type '{model_type}' is not a supported vision-language model "
            f"(supported: {', '.join(SUPPORTED_MODEL_TYPES)}).",
            fix="use a Qwen2-VL or Qwen2.5-VL checkpoint; `vlmctl models` lists the built-in ones",
        )
    text = config.get("text_config") or {}
    vc = config.get("vision_config")
    if not isinstance(vc, dict):
        raise ConfigError(f"{source}: config.json has no vision_config.", fix="use a vision-language checkpoint")
    heads = _get(config, "num_attention_heads", source, text)
    hidden = _get(config, "hidden_size", source, text)
    if model_type == "qwen2_5_vl":
        vision = VisionSpec(
            depth=vc.get("depth", 32), hidden_size=vc.get("hidden_size", 1280), num_heads=vc.get("num_heads", 16),
            intermediate_size=vc.get("intermediate_size", 3420), gated_mlp=True,
            out_hidden_size=vc.get("out_hidden_size", hidden), patch_size=vc.get("patch_size", 14),
            temporal_patch_size=vc.get("temporal_patch_size", 2),
            spatial_merge_size=vc.get("spatial_merge_size", 2), in_channels=vc.get("in_chans", 3),
        )
    else:
        embed = vc.get("embed_dim", 1280)
        vision = VisionSpec(
            depth=vc.get("depth", 32), hidden_size=embed, num_heads=vc.get("num_heads", 16),
            intermediate_size=int(embed * vc.get("mlp_ratio", 4)), gated_mlp=False,
            out_hidden_size=vc.get("hidden_size", hidden), patch_size=vc.get("patch_size", 14),
            temporal_patch_size=vc.get("temporal_patch_size", 2),
            spatial_merge_size=vc.get("spatial_merge_size", 2), in_channels=vc.get("in_chans", 3),
        )
    qc = config.get("quantization_config") or text.get("quantization_config")
    pre = preprocessor or {}
    size = pre.get("size") or {}
    gen = {k: v for k, v in (generation_config or {}).items()
           if k in ("temperature", "top_p", "top_k", "repetition_penalty") and isinstance(v, (int, float))}
    tok_len = (tokenizer_config or {}).get("model_max_length")
    return ModelSpec(
        id=source,
        model_type=model_type,
        hidden_size=hidden,
        intermediate_size=_get(config, "intermediate_size", source, text),
        num_hidden_layers=_get(config, "num_hidden_layers", source, text),
        num_attention_heads=heads,
        num_key_value_heads=text.get("num_key_value_heads", config.get("num_key_value_heads", heads)),
        head_dim=text.get("head_dim") or config.get("head_dim") or hidden // heads,
        vocab_size=_get(config, "vocab_size", source, text),
        tie_word_embeddings=bool(config.get("tie_word_embeddings", text.get("tie_word_embeddings", False))),
        max_position_embeddings=_get(config, "max_position_embeddings", source, text),
        tokenizer_max_length=int(tok_len) if isinstance(tok_len, (int, float)) and tok_len < 10**9 else None,
        torch_dtype=str(config.get("torch_dtype") or config.get("dtype") or text.get("dtype") or "bfloat16"),
        vision=vision,
        min_pixels=pre.get("min_pixels") or size.get("shortest_edge") or 3136,
        max_pixels=pre.get("max_pixels") or size.get("longest_edge") or 12845056,
        quantization=QuantSpec.model_validate(qc) if qc else None,
        generation_defaults=gen,
    )
