"""Qwen2-VL (``qwen2_vl``): Qwen2 decoder (q/k/v bias), ViT with LayerNorm and a plain fc1/fc2 MLP.

Shapes: transformers' modeling_qwen2_vl.py (vision_config: embed_dim, mlp_ratio, hidden_size = LM width);
vLLM model_executor/models/qwen2_vl.py (_MAX_FRAMES_PER_VIDEO = 14 for the profiling dummy video).
"""
from __future__ import annotations

from vlmctl.models.families.base import Family
from vlmctl.models.spec import VisionSpec


class Qwen2VL(Family):
    name = "Qwen2-VL"
    model_types = ("qwen2_vl",)
    architectures = ("Qwen2VLForConditionalGeneration",)
    vllm_model_files = ("qwen2_vl.py",)

    def vision_from_config(self, vc: dict, hidden: int) -> VisionSpec:
        embed = vc.get("embed_dim", 1280)
        return VisionSpec(
            model_type="qwen2_vl", depth=vc.get("depth", 32), hidden_size=embed, num_heads=vc.get("num_heads", 16),
            intermediate_size=int(embed * vc.get("mlp_ratio", 4)), gated_mlp=False,
            out_hidden_size=vc.get("hidden_size", hidden), patch_size=vc.get("patch_size", 14),
            temporal_patch_size=vc.get("temporal_patch_size", 2),
            spatial_merge_size=vc.get("spatial_merge_size", 2), in_channels=vc.get("in_chans", 3),
        )

    def vision_params(self, v: VisionSpec) -> int:
        """Blocks (qkv+proj with bias, fc1/fc2 with bias, 2 LayerNorms with bias), bias-free Conv3d, merger
        (LayerNorm, two linears with bias)."""
        e, i = v.hidden_size, v.intermediate_size
        block = (e * 3 * e + 3 * e) + (e * e + e) + (e * i + i) + (i * e + e) + 4 * e
        patch_embed = v.in_channels * v.temporal_patch_size * v.patch_size ** 2 * e
        merged = e * v.spatial_merge_size ** 2
        merger = 2 * e + (merged * merged + merged) + (merged * v.out_hidden_size + v.out_hidden_size)
        return v.depth * block + patch_embed + merger


FAMILY = Qwen2VL()
