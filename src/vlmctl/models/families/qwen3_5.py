"""Qwen3.5 (``qwen3_5``, ``qwen3_5_moe``): natively multimodal hybrids — gated-DeltaNet linear-attention layers
with a full-attention layer every ``full_attention_interval`` (4), the Qwen3-VL tower without deepstack, and
for the MoE line routed experts plus a gated shared expert.

Only the full-attention layers keep a per-token KV cache; each linear layer keeps a fixed state per sequence
(a causal-conv window and the DeltaNet recurrent state). Sources (vLLM 0.26.0 wheel):
* model_executor/models/qwen3_5.py ``get_mamba_state_shape_from_config`` /
  model_executor/layers/mamba/mamba_utils.py ``MambaStateShapeCalculator.gated_delta_net_state_shape``: conv state
  ``(2·key_dim + value_dim) / tp × (conv_kernel − 1)``, recurrent state ``num_v_heads / tp × v_dim × k_dim``.
* ``MambaStateDtypeCalculator.gated_delta_net_state_dtype`` and model_executor/models/config.py
  ``Qwen3_5ForConditionalGenerationConfig``: the conv state in the model dtype (mamba_cache_dtype auto), the
  recurrent state in the config's ``mamba_ssm_dtype`` (float32) unless --mamba-ssm-cache-dtype says otherwise.
* ``Qwen3_5ForConditionalGeneration``: the Qwen3-VL tower, no deepstack buffers; the profiling inputs are
  Qwen3-VL's (``Qwen3VLDummyInputsBuilder``).
Shapes: transformers' modeling_qwen3_5.py / modeling_qwen3_5_moe.py (``Qwen3_5GatedDeltaNet``: in_proj_qkv,
in_proj_z, in_proj_b, in_proj_a, depthwise conv1d without bias, dt_bias, A_log, gated RMSNorm over v_dim,
out_proj; full attention with an output gate doubling q_proj and q/k RMSNorm).
"""
from __future__ import annotations

from vlmctl.findings import Finding
from vlmctl.models.families.base import CacheLayout, config_value
from vlmctl.models.families.qwen3_vl import Qwen3VL
from vlmctl.models.families.qwen3_vl_moe import moe_from_text
from vlmctl.models.spec import LinearAttentionSpec, ModelSpec

_DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "half": 2, "float": 4}


def layer_types(text: dict) -> tuple[str, ...]:
    """The config's ``layer_types``, else a full-attention layer every ``full_attention_interval`` layers."""
    if text.get("layer_types"):
        return tuple(text["layer_types"])
    interval = int(text.get("full_attention_interval") or 4)
    n = int(text["num_hidden_layers"])
    return tuple("full_attention" if (i + 1) % interval == 0 else "linear_attention" for i in range(n))


class Qwen35(Qwen3VL):
    name = "Qwen3.5"
    model_types = ("qwen3_5",)
    architectures = ("Qwen3_5ForConditionalGeneration",)
    vllm_model_files = ("qwen3_5.py", "qwen3_next.py", "qwen3_vl.py")

    def text_extras(self, text: dict, config: dict, source: str) -> dict:
        def get(key: str) -> int:
            return int(config_value(config, key, source, text, self.name))

        lin = LinearAttentionSpec(
            num_key_heads=get("linear_num_key_heads"), num_value_heads=get("linear_num_value_heads"),
            key_head_dim=get("linear_key_head_dim"), value_head_dim=get("linear_value_head_dim"),
            conv_kernel_dim=get("linear_conv_kernel_dim"), ssm_dtype=text.get("mamba_ssm_dtype"),
        )
        return {"attention_bias": bool(text.get("attention_bias", False)), "qk_norm": True,
                "attn_output_gate": bool(text.get("attn_output_gate", True)), "layer_types": layer_types(text),
                "linear_attention": lin, "mtp_layers": int(text.get("mtp_num_hidden_layers") or 0)}

    def mixer_params(self, spec: ModelSpec, layer: int) -> int:
        if spec.layer_type(layer) == "full_attention":
            return self.attention_params(spec)
        la, h = spec.linear_attention, spec.hidden_size
        conv_dim = 2 * la.key_dim + la.value_dim
        return (h * (conv_dim + la.value_dim + 2 * la.num_value_heads) + conv_dim * la.conv_kernel_dim
                + 2 * la.num_value_heads + la.value_head_dim + la.value_dim * h)

    def mixer_linear_params(self, spec: ModelSpec, layer: int) -> int:
        if spec.layer_type(layer) == "full_attention":
            return self.attention_linear_params(spec)
        la, h = spec.linear_attention, spec.hidden_size
        return h * (2 * la.key_dim + 2 * la.value_dim + 2 * la.num_value_heads) + la.value_dim * h

    def linear_state_bytes(self, spec: ModelSpec, tp: int, conv_bytes: int, ssm_dtype: str | None = None) -> int:
        """One linear layer's state for one sequence on one TP rank: conv window + recurrent state."""
        la = spec.linear_attention
        ssm_bytes = _DTYPE_BYTES.get(ssm_dtype or la.ssm_dtype or "", conv_bytes)
        conv = (2 * la.key_dim + la.value_dim) // tp * (la.conv_kernel_dim - 1) * conv_bytes
        ssm = la.num_value_heads // tp * la.value_head_dim * la.key_head_dim * ssm_bytes
        return conv + ssm

    def cache_layout(self, spec: ModelSpec, tp: int, kv_bytes: int, block_size: int, layers: range) -> CacheLayout:
        full = sum(1 for i in layers if spec.layer_type(i) == "full_attention")
        base = super().cache_layout(spec, tp, kv_bytes, block_size, layers)
        return CacheLayout(attention_layers=full, attention_page_bytes=base.attention_page_bytes,
                           linear_layers=len(layers) - full,
                           state_bytes=self.linear_state_bytes(spec, tp, kv_bytes))

    def parallel_rules(self, spec: ModelSpec, tp: int, expert_parallel: bool, dp: int = 1) -> list[Finding]:
        out = super().parallel_rules(spec, tp, expert_parallel, dp)
        la = spec.linear_attention
        bad = [f"{n} {what}" for n, what in ((la.num_key_heads, "linear key heads"),
                                              (la.num_value_heads, "linear value heads")) if n % tp]
        if not bad:
            return out
        return out + [Finding(id="tp-linear-heads", severity="error",
                        message=f"{' and '.join(bad)} of the gated-DeltaNet layers are not divisible by tensor "
                                f"parallel size {tp} (vLLM divides them per rank: mamba_utils.py "
                                "gated_delta_net_state_shape).",
                        fix="use a --tensor-parallel-size that divides the linear-attention head counts")]


class Qwen35Moe(Qwen35):
    name = "Qwen3.5-MoE"
    model_types = ("qwen3_5_moe",)
    architectures = ("Qwen3_5MoeForConditionalGeneration",)

    def text_extras(self, text: dict, config: dict, source: str) -> dict:
        return {**super().text_extras(text, config, source), "moe": moe_from_text(text, config, source, self.name)}


FAMILY = Qwen35()
MOE_FAMILY = Qwen35Moe()
