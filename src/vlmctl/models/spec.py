"""ModelSpec: what the planner needs to know about a vision-language checkpoint, whatever its family.

Built from a HF-style ``config.json`` dict (plus ``preprocessor_config.json``,
``video_preprocessor_config.json`` and the checkpoint's ``quantization_config``), whether it comes
from a local folder or the built-in catalog, so both paths share one parser. Both the flat
(transformers 4.x) and the nested ``text_config`` (transformers 5.x) layouts are accepted.

The spec is data; what the numbers mean (parameter counts, vision geometry, cache layout, TP/EP
rules) belongs to the model's family (:mod:`vlmctl.models.families`), reached through ``spec.family``.
"""
from __future__ import annotations

from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from vlmctl.models.families.base import Family


@lru_cache(maxsize=None)
def _family(model_type: str) -> "Family":
    from vlmctl.models.families import family_for

    return family_for(model_type)


class VisionSpec(BaseModel):
    """The vision tower (ViT + patch merger)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_type: str = "qwen2_5_vl"
    """The family whose tower this is (it owns the parameter formula)."""
    depth: int
    hidden_size: int
    """ViT embedding width (1280 for every Qwen2.5-VL size)."""
    num_heads: int
    intermediate_size: int
    """ViT MLP width: the number TP must divide in vLLM's default encoder TP mode."""
    gated_mlp: bool
    """Qwen2.5-VL uses a SwiGLU MLP (gate+up+down); Qwen2-VL and Qwen3-VL a plain fc1/fc2 MLP."""
    out_hidden_size: int
    """Merger output = language-model hidden size."""
    patch_size: int = 14
    temporal_patch_size: int = 2
    spatial_merge_size: int = 2
    in_channels: int = 3
    num_position_embeddings: int = 0
    """Learned absolute position table (Qwen3-VL: 2304 = 48²); 0 when the tower has none."""
    deepstack_indexes: tuple[int, ...] = ()
    """ViT blocks whose features a deepstack merger feeds into the first LM layers (Qwen3-VL)."""
    attention_window_patches: int = 0
    """Patches one ViT attention window covers (Qwen2.5-VL: (window_size / patch_size)² = 64, all but a few
    blocks); 0 when every block attends over the whole image (Qwen2-VL, Qwen3-VL)."""

    @cached_property
    def params(self) -> int:
        """Parameter count of the tower, computed from its shapes by its family."""
        return _family(self.model_type).vision_params(self)


class QuantSpec(BaseModel):
    """The checkpoint's ``quantization_config`` (the fields the planner reads)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    quant_method: str
    bits: int = 4
    group_size: int = 128
    zero_point: bool = True
    version: str | None = None
    modules_to_not_convert: list[str] | None = None


class MoESpec(BaseModel):
    """A sparse-MoE language model's expert layout (Qwen3-VL-MoE, Qwen3.5-MoE)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_experts: int
    experts_per_token: int
    moe_intermediate_size: int
    """Width of one routed expert's MLP."""
    shared_expert_intermediate_size: int = 0
    """Width of the always-on shared expert (0: none)."""
    decoder_sparse_step: int = 1
    mlp_only_layers: tuple[int, ...] = ()
    """Layers that keep a dense MLP (intermediate_size) instead of experts."""

    def is_sparse(self, layer: int) -> bool:
        """Whether decoder layer ``layer`` uses experts (transformers' Qwen3-MoE layer rule)."""
        return layer not in self.mlp_only_layers and (layer + 1) % self.decoder_sparse_step == 0


class LinearAttentionSpec(BaseModel):
    """Gated DeltaNet (linear attention) dimensions of a hybrid model's linear layers (Qwen3.5)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_key_heads: int
    num_value_heads: int
    key_head_dim: int
    value_head_dim: int
    conv_kernel_dim: int = 4
    ssm_dtype: str | None = None
    """config.json's ``mamba_ssm_dtype``: vLLM keeps the recurrent state in it (float32 for Qwen3.5)."""

    @property
    def key_dim(self) -> int:
        return self.num_key_heads * self.key_head_dim

    @property
    def value_dim(self) -> int:
        return self.num_value_heads * self.value_head_dim


class ModelSpec(BaseModel):
    """Dimensions of a vision-language model, from its config files."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    """Catalog id or the local folder it was read from."""
    model_type: str
    """config.json's model_type: names the family (see vlmctl.models.families)."""
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
    video_min_pixels: int | None = None
    """From video_preprocessor_config.json when the checkpoint has one (Qwen3-VL, Qwen3.5); else as images."""
    video_max_pixels: int | None = None
    quantization: QuantSpec | None = None
    generation_defaults: dict[str, float | int] = {}
    """Sampling defaults from generation_config.json (temperature, top_p, top_k, repetition_penalty)."""
    attention_bias: bool = True
    """q/k/v projections carry a bias (Qwen2/2.5: yes; Qwen3: no, with per-head q/k RMSNorm instead)."""
    qk_norm: bool = False
    attn_output_gate: bool = False
    """q_proj also produces a sigmoid gate for the attention output (Qwen3.5's full-attention layers)."""
    moe: MoESpec | None = None
    layer_types: tuple[str, ...] = ()
    """'full_attention' / 'linear_attention' per decoder layer (hybrids); empty = all full attention."""
    linear_attention: LinearAttentionSpec | None = None
    mtp_layers: int = 0
    """Multi-token-prediction layers in the checkpoint (not loaded unless speculative decoding uses them)."""

    @property
    def family(self) -> "Family":
        return _family(self.model_type)

    @property
    def derived_max_model_len(self) -> int:
        """What vLLM derives when --max-model-len is not given."""
        if self.tokenizer_max_length:
            return min(self.max_position_embeddings, self.tokenizer_max_length)
        return self.max_position_embeddings

    def layer_type(self, layer: int) -> str:
        return self.layer_types[layer] if self.layer_types else "full_attention"

    @cached_property
    def full_attention_layers(self) -> int:
        """Decoder layers that keep a per-token KV cache."""
        return sum(1 for i in range(self.num_hidden_layers) if self.layer_type(i) == "full_attention")

    @cached_property
    def lm_layer_params(self) -> int:
        """Parameters of one decoder layer, averaged over the layers (exact when all layers are alike)."""
        return round(self.lm_layers_params / self.num_hidden_layers)

    @cached_property
    def lm_layers_params(self) -> int:
        """Parameters of all decoder layers."""
        return sum(self.family.layer_params(self, i) for i in range(self.num_hidden_layers))

    @cached_property
    def lm_linear_params_per_layer(self) -> int:
        """The part of a decoder layer that AWQ/GPTQ quantize (the linear weights, no biases), averaged."""
        fam = self.family
        return round(sum(fam.layer_linear_params(self, i) for i in range(self.num_hidden_layers))
                     / self.num_hidden_layers)

    @cached_property
    def lm_expert_params(self) -> int:
        """Routed-expert parameters of all decoder layers (0 for a dense model)."""
        return self.family.expert_params(self, range(self.num_hidden_layers))

    @cached_property
    def lm_router_params(self) -> int:
        """Router (gate) parameters of all decoder layers (0 for a dense model)."""
        return self.family.router_params(self, range(self.num_hidden_layers))

    @cached_property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @cached_property
    def total_params(self) -> int:
        """What vLLM loads: decoder layers, embedding, lm_head (unless tied), final norm, vision tower."""
        lm_head = 0 if self.tie_word_embeddings else self.embedding_params
        return self.lm_layers_params + self.embedding_params + lm_head + self.hidden_size + self.vision.params


def spec_from_config(
    config: dict,
    source: str,
    preprocessor: dict | None = None,
    tokenizer_config: dict | None = None,
    generation_config: dict | None = None,
    video_preprocessor: dict | None = None,
) -> ModelSpec:
    """Parse a HF ``config.json`` dict (flat or with ``text_config``) into a ModelSpec, through its family."""
    from vlmctl.models.families import family_of_config

    family = family_of_config(config, source)
    return family.parse(config, source, preprocessor=preprocessor, tokenizer_config=tokenizer_config,
                        generation_config=generation_config, video_preprocessor=video_preprocessor)
