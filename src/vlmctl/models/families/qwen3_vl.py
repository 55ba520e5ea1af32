"""Qwen3-VL dense (``qwen3_vl``): Qwen3 decoder (no q/k/v bias, per-head q/k RMSNorm), a 16-pixel-patch ViT
with learned position embeddings, LayerNorm and a plain MLP, and deepstack mergers that feed ViT features of
``deepstack_visual_indexes`` into the first LM layers.

Sources (vLLM 0.26.0 wheel, model_executor/models/qwen3_vl.py):
* ``Qwen3VLForConditionalGeneration.__init__``: one ``torch.zeros(max_num_batched_tokens, text hidden_size)`` per
  deepstack level, allocated with the model (counted in "Model loading took"), only when the vision tower is built.
* ``Qwen3_VisionTransformer``: the tower's output width is ``out_hidden_size × (1 + levels)``.
* ``Qwen3VLDummyInputsBuilder.get_dummy_mm_data``: the profiling video is 2 frames at the largest frame the
  video processor's ``size.longest_edge // temporal_patch_size`` admits.
* ``Qwen3VLProcessingInfo._get_vision_info``: video frames are resized by ``video_smart_resize`` so that
  frames × height × width stays within ``size.longest_edge`` (the whole clip's pixel budget).
Shapes: transformers' modeling_qwen3_vl.py; frame cap: transformers' Qwen3VLVideoProcessor.max_frames (768).
"""
from __future__ import annotations

import math

from vlmctl.models.families.base import Family
from vlmctl.models.spec import ModelSpec, VisionSpec


class Qwen3VL(Family):
    name = "Qwen3-VL"
    model_types = ("qwen3_vl",)
    architectures = ("Qwen3VLForConditionalGeneration",)
    vllm_model_files = ("qwen3_vl.py",)
    max_frames_per_video = 768
    default_min_pixels = 65536
    default_max_pixels = 16777216
    default_video_max_pixels = 25165824
    """Qwen3-VL's video_preprocessor_config.json size.longest_edge: the pixel budget of a whole clip."""

    def vision_from_config(self, vc: dict, hidden: int) -> VisionSpec:
        return VisionSpec(
            model_type=self.model_types[0], depth=vc.get("depth", 27), hidden_size=vc.get("hidden_size", 1152),
            num_heads=vc.get("num_heads", 16), intermediate_size=vc.get("intermediate_size", 4304), gated_mlp=False,
            out_hidden_size=vc.get("out_hidden_size", hidden), patch_size=vc.get("patch_size", 16),
            temporal_patch_size=vc.get("temporal_patch_size", 2), spatial_merge_size=vc.get("spatial_merge_size", 2),
            in_channels=vc.get("in_channels", 3), num_position_embeddings=vc.get("num_position_embeddings", 2304),
            deepstack_indexes=tuple(vc.get("deepstack_visual_indexes") or ()),
        )

    def text_extras(self, text: dict, config: dict, source: str) -> dict:
        return {"attention_bias": bool(text.get("attention_bias", False)), "qk_norm": True}

    def vision_params(self, v: VisionSpec) -> int:
        """Blocks (LayerNorm ×2, qkv+proj, fc1/fc2, all with bias), Conv3d patch embed with bias, the position
        table, the merger (LayerNorm on the ViT width, two linears) and one merger per deepstack level
        (LayerNorm on the merged width)."""
        e, i = v.hidden_size, v.intermediate_size
        block = 4 * e + (e * 3 * e + 3 * e) + (e * e + e) + (e * i + i) + (i * e + e)
        patch_embed = v.in_channels * v.temporal_patch_size * v.patch_size ** 2 * e + e
        merged = e * v.spatial_merge_size ** 2
        mlp = (merged * merged + merged) + (merged * v.out_hidden_size + v.out_hidden_size)
        merger = 2 * e + mlp
        deepstack = len(v.deepstack_indexes) * (2 * merged + mlp)
        return v.depth * block + patch_embed + v.num_position_embeddings * e + merger + deepstack

    def vit_peak_bytes(self, spec: ModelSpec, patches: int, tp_eff: int) -> float:
        """Analytic peak of one eager pass of vLLM's ``Qwen3_VisionTransformer.forward`` over ``patches`` patches.

        Held for the whole pass (vLLM 0.26 model_executor/models/qwen3_vl.py): the fp32 ``pixel_values`` and their
        model-dtype copy (``_process_image_input`` / ``_process_video_input`` ``.type(visual.dtype)``), the
        interpolated position embeddings and the rotary cos/sin tables (``prepare_encoder_metadata``: E and
        2 × head_dim/2 per patch), and every deepstack level's merged features (``deepstack_feature_lists``:
        out_hidden_size per merged token, kept until the final ``torch.cat``). The worst block (after the last
        deepstack index) adds the residual, the norm output and the larger of the attention working set
        (``Qwen2_5_VisionAttention``: qkv 3E, the contiguous q/k 2E, rotated q/k 2E, output and its contiguous copy
        2E, all split by TP) and the plain MLP (fc1 and GELU outputs 2I/t). The blocks run without torch.compile
        (``Qwen3_VisionBlock`` has no ``support_torch_compile``), on both runners: V1 profiles this pass, V2 runs
        it at run time (v1/worker/gpu/mm/encoder_runner.py ``execute_mm_encoder`` → ``embed_multimodal``).
        """
        v = spec.vision
        e, i, t = v.hidden_size, v.intermediate_size, tp_eff
        pixels = v.in_channels * v.temporal_patch_size * v.patch_size ** 2 * (4 + 2)
        rotary = 2 * (e // v.num_heads) // 2
        deepstack = len(v.deepstack_indexes) * v.out_hidden_size / v.spatial_merge_size ** 2
        held = e + rotary + deepstack
        block = 2 * e + max(9 * e / t, 2 * i / t)
        return patches * (pixels + 2 * (held + block))

    def encoder_output_width(self, spec: ModelSpec) -> int:
        return spec.vision.out_hidden_size * (1 + len(spec.vision.deepstack_indexes))

    def persistent_buffer_bytes(self, spec: ModelSpec, max_num_batched_tokens: int, dtype_bytes: int) -> float:
        """Deepstack input buffers: levels × max_num_batched_tokens × hidden_size in the model dtype."""
        return len(spec.vision.deepstack_indexes) * max_num_batched_tokens * spec.hidden_size * dtype_bytes

    def video_max_pixels(self, spec: ModelSpec) -> int:
        return spec.video_max_pixels or self.default_video_max_pixels

    def video_frames_within(self, spec: ModelSpec, max_pixels: int, max_model_len: int, frames: int) -> int:
        """Any frame count: more frames shrink each frame within the clip budget, so the tokens stay bounded."""
        return frames

    def video_tokens(self, spec: ModelSpec, max_pixels: int, frames: int) -> int:
        """A clip of ``frames`` frames: frames rounded up to the temporal patch, each frame at most
        ``max_pixels`` and all frames together at most the clip budget (video_smart_resize)."""
        t = spec.vision.temporal_patch_size
        padded = max(t, math.ceil(frames / t) * t)
        frame = min(max_pixels, self.video_max_pixels(spec) // padded)
        if frame < self.pixels_per_token(spec):
            return padded // t
        return padded // t * self.image_tokens(spec, frame)


FAMILY = Qwen3VL()
