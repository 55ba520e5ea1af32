"""Qwen2.5-VL (``qwen2_5_vl``): Qwen2 decoder (q/k/v bias), windowed ViT with a SwiGLU MLP and RMSNorm.

Shapes: transformers' modeling_qwen2_5_vl.py; vLLM model_executor/models/qwen2_5_vl.py (the profiling dummy
video reuses qwen2_vl.py's _MAX_FRAMES_PER_VIDEO = 14).
"""
from __future__ import annotations

from vlmctl.models.families.base import Family
from vlmctl.models.spec import VisionSpec


class Qwen25VL(Family):
    name = "Qwen2.5-VL"
    model_types = ("qwen2_5_vl",)
    architectures = ("Qwen2_5_VLForConditionalGeneration",)
    vllm_model_files = ("qwen2_5_vl.py", "qwen2_vl.py")

    def vision_from_config(self, vc: dict, hidden: int) -> VisionSpec:
        return VisionSpec(
            model_type="qwen2_5_vl", depth=vc.get("depth", 32), hidden_size=vc.get("hidden_size", 1280),
            num_heads=vc.get("num_heads", 16), intermediate_size=vc.get("intermediate_size", 3420), gated_mlp=True,
            out_hidden_size=vc.get("out_hidden_size", hidden), patch_size=vc.get("patch_size", 14),
            temporal_patch_size=vc.get("temporal_patch_size", 2),
            spatial_merge_size=vc.get("spatial_merge_size", 2), in_channels=vc.get("in_chans", 3),
            attention_window_patches=(vc.get("window_size", 112) // vc.get("patch_size", 14)) ** 2,
        )

    def vision_params(self, v: VisionSpec) -> int:
        """Blocks (qkv+proj with bias, SwiGLU with bias, 2 RMSNorms), bias-free Conv3d patch embed, merger
        (RMSNorm, two linears with bias)."""
        e, i = v.hidden_size, v.intermediate_size
        block = (e * 3 * e + 3 * e) + (e * e + e) + 2 * (e * i + i) + (i * e + e) + 2 * e
        patch_embed = v.in_channels * v.temporal_patch_size * v.patch_size ** 2 * e
        merged = e * v.spatial_merge_size ** 2
        merger = e + (merged * merged + merged) + (merged * v.out_hidden_size + v.out_hidden_size)
        return v.depth * block + patch_embed + merger


FAMILY = Qwen25VL()
