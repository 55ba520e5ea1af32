"""Qwen3-VL MoE (``qwen3_vl_moe``): the Qwen3-VL tower and a Qwen3-MoE decoder (router + routed experts, no
shared expert).

Sources (vLLM 0.26.0 wheel): model_executor/models/qwen3_vl_moe.py (``Qwen3VLMoeForConditionalGeneration`` reuses
qwen3_vl.py's tower and deepstack buffers); model_executor/models/qwen3_moe.py ``Qwen3MoeSparseMoeBlock`` (a
``FusedMoE`` over ``num_experts`` experts of ``moe_intermediate_size``, the router replicated);
model_executor/layers/fused_moe/layer.py ``determine_expert_map`` (expert parallelism deals
``num_experts // ep`` experts to each rank and the remainder one each to the first ranks; without it every
rank holds every expert, its MLP width split by TP). Layer rule: transformers' Qwen3-MoE
(``mlp_only_layers``, ``decoder_sparse_step``).
"""
from __future__ import annotations

from vlmctl.models.families.base import config_value
from vlmctl.models.families.qwen3_vl import Qwen3VL
from vlmctl.models.spec import MoESpec


def moe_from_text(text: dict, config: dict, source: str, family: str) -> MoESpec:
    """The expert layout from a MoE config (num_experts, num_experts_per_tok, moe_intermediate_size required)."""
    def get(key: str) -> int:
        return int(config_value(config, key, source, text, family))

    return MoESpec(
        num_experts=get("num_experts"), experts_per_token=get("num_experts_per_tok"),
        moe_intermediate_size=get("moe_intermediate_size"),
        shared_expert_intermediate_size=int(text.get("shared_expert_intermediate_size") or 0),
        decoder_sparse_step=int(text.get("decoder_sparse_step") or 1),
        mlp_only_layers=tuple(text.get("mlp_only_layers") or ()),
    )


class Qwen3VLMoe(Qwen3VL):
    name = "Qwen3-VL-MoE"
    model_types = ("qwen3_vl_moe",)
    architectures = ("Qwen3VLMoeForConditionalGeneration",)
    vllm_model_files = ("qwen3_vl_moe.py", "qwen3_vl.py")

    def text_extras(self, text: dict, config: dict, source: str) -> dict:
        return {**super().text_extras(text, config, source), "moe": moe_from_text(text, config, source, self.name)}


FAMILY = Qwen3VLMoe()
