"""Published configs of the Qwen3-VL and Qwen3.5 checkpoints, and where each was read.

The hub itself is out of reach here, so each config is a public verbatim copy found with a code search
(2026-11-29) or, where no verbatim copy exists, assembled from public field-by-field transcriptions;
``SOURCES`` says which. Values that could not be found are not invented: the entry is left out (Qwen3-VL-2B:
the public transcriptions disagree on its intermediate_size, 5632 / 6144 / 8192).
"""
from __future__ import annotations

import copy

_MROPE = {"mrope_interleaved": True, "mrope_section": [24, 20, 20], "rope_type": "default"}
_VL_TOKENS = {"image_token_id": 151655, "video_token_id": 151656, "vision_end_token_id": 151653,
              "vision_start_token_id": 151652}
_VL_VISION = {"deepstack_visual_indexes": [8, 16, 24], "depth": 27, "hidden_act": "gelu_pytorch_tanh",
              "hidden_size": 1152, "in_channels": 3, "initializer_range": 0.02, "intermediate_size": 4304,
              "model_type": "qwen3_vl", "num_heads": 16, "num_position_embeddings": 2304,
              "out_hidden_size": 4096, "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2}


def _vl_text(**dims) -> dict:
    text = {"attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 151643, "dtype": "bfloat16",
            "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu", "initializer_range": 0.02,
            "max_position_embeddings": 262144, "model_type": "qwen3_vl_text", "rms_norm_eps": 1e-06,
            "rope_scaling": dict(_MROPE), "rope_theta": 5000000, "use_cache": True, "vocab_size": 151936}
    text.update(dims)
    return text


def _vl(text: dict, vision: dict, tied: bool = False) -> dict:
    return {"architectures": ["Qwen3VLForConditionalGeneration"], "model_type": "qwen3_vl", "text_config": text,
            "tie_word_embeddings": tied, "transformers_version": "4.57.0.dev0", "vision_config": vision,
            **_VL_TOKENS}


QWEN3_VL_4B = _vl(
    _vl_text(hidden_size=2560, intermediate_size=9728, num_attention_heads=32, num_hidden_layers=36,
             num_key_value_heads=8, tie_word_embeddings=True),
    dict(_VL_VISION, deepstack_visual_indexes=[5, 11, 17], depth=24, hidden_size=1024, intermediate_size=4096,
         out_hidden_size=2560), tied=True)
QWEN3_VL_8B = _vl(
    _vl_text(hidden_size=4096, intermediate_size=12288, num_attention_heads=32, num_hidden_layers=36,
             num_key_value_heads=8),
    dict(_VL_VISION))
QWEN3_VL_32B = _vl(
    _vl_text(hidden_size=5120, intermediate_size=25600, num_attention_heads=64, num_hidden_layers=64,
             num_key_value_heads=8),
    dict(_VL_VISION, out_hidden_size=5120))


def _vl_moe(out: int, **dims) -> dict:
    text = _vl_text(decoder_sparse_step=1, mlp_only_layers=[], model_type="qwen3_vl_moe_text", norm_topk_prob=True,
                    **dims)
    return {"architectures": ["Qwen3VLMoeForConditionalGeneration"], "model_type": "qwen3_vl_moe",
            "text_config": text, "tie_word_embeddings": False, "transformers_version": "4.57.0.dev0",
            "vision_config": dict(_VL_VISION, model_type="qwen3_vl_moe", out_hidden_size=out), **_VL_TOKENS}


QWEN3_VL_30B_A3B = _vl_moe(2048, hidden_size=2048, intermediate_size=6144, moe_intermediate_size=768,
                           num_attention_heads=32, num_experts=128, num_experts_per_tok=8, num_hidden_layers=48,
                           num_key_value_heads=4)
QWEN3_VL_235B_A22B = _vl_moe(4096, hidden_size=4096, intermediate_size=12288, moe_intermediate_size=1536,
                             num_attention_heads=64, num_experts=128, num_experts_per_tok=8, num_hidden_layers=94,
                             num_key_value_heads=4)

_Q35_TOKENS = {"image_token_id": 248056, "video_token_id": 248057, "vision_end_token_id": 248054,
               "vision_start_token_id": 248053}
_Q35_ROPE = {"mrope_interleaved": True, "mrope_section": [11, 11, 10], "partial_rotary_factor": 0.25,
             "rope_theta": 10000000, "rope_type": "default"}
_Q35_VISION = {"deepstack_visual_indexes": [], "depth": 27, "hidden_act": "gelu_pytorch_tanh", "hidden_size": 1152,
               "in_channels": 3, "initializer_range": 0.02, "intermediate_size": 4304, "model_type": "qwen3_5",
               "num_heads": 16, "num_position_embeddings": 2304, "out_hidden_size": 5120, "patch_size": 16,
               "spatial_merge_size": 2, "temporal_patch_size": 2}


def _q35_text(layers: int, **dims) -> dict:
    text = {"attention_bias": False, "attention_dropout": 0.0, "attn_output_gate": True, "bos_token_id": 248044,
            "dtype": "bfloat16", "eos_token_id": 248044, "full_attention_interval": 4, "head_dim": 256,
            "hidden_act": "silu", "initializer_range": 0.02,
            "layer_types": (["linear_attention"] * 3 + ["full_attention"]) * (layers // 4),
            "linear_conv_kernel_dim": 4, "linear_key_head_dim": 128, "linear_num_key_heads": 16,
            "linear_value_head_dim": 128, "mamba_ssm_dtype": "float32", "max_position_embeddings": 262144,
            "mtp_num_hidden_layers": 1, "mtp_use_dedicated_embeddings": False, "num_hidden_layers": layers,
            "rms_norm_eps": 1e-06, "rope_parameters": dict(_Q35_ROPE), "tie_word_embeddings": False,
            "use_cache": True, "vocab_size": 248320}
    text.update(dims)
    return text


QWEN3_5_27B = {
    "architectures": ["Qwen3_5ForConditionalGeneration"], "language_model_only": False, "model_type": "qwen3_5",
    "text_config": _q35_text(64, hidden_size=5120, intermediate_size=17408, linear_num_value_heads=48,
                             model_type="qwen3_5_text", num_attention_heads=24, num_key_value_heads=4,
                             output_gate_type="swish", pad_token_id=None, partial_rotary_factor=0.25),
    "tie_word_embeddings": False, "transformers_version": "4.57.1", "vision_config": dict(_Q35_VISION),
    **_Q35_TOKENS,
}
QWEN3_5_35B_A3B = {
    "architectures": ["Qwen3_5MoeForConditionalGeneration"], "language_model_only": False,
    "model_type": "qwen3_5_moe",
    "text_config": _q35_text(40, hidden_size=2048, linear_num_value_heads=32, mlp_only_layers=[],
                             model_type="qwen3_5_moe_text", moe_intermediate_size=512, num_attention_heads=16,
                             num_experts=256, num_experts_per_tok=8, num_key_value_heads=2,
                             router_aux_loss_coef=0.001, shared_expert_intermediate_size=512),
    "tie_word_embeddings": False, "vision_config": dict(_Q35_VISION, out_hidden_size=2048), **_Q35_TOKENS,
}

QWEN2_VL_7B = {
    "architectures": ["Qwen2VLForConditionalGeneration"], "model_type": "qwen2_vl", "attention_dropout": 0.0,
    "bos_token_id": 151643, "eos_token_id": 151645, "vision_start_token_id": 151652, "vision_end_token_id": 151653,
    "vision_token_id": 151654, "image_token_id": 151655, "video_token_id": 151656, "hidden_act": "silu",
    "hidden_size": 3584, "initializer_range": 0.02, "intermediate_size": 18944, "max_position_embeddings": 32768,
    "max_window_layers": 28, "num_attention_heads": 28, "num_hidden_layers": 28, "num_key_value_heads": 4,
    "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": False,
    "torch_dtype": "bfloat16", "use_cache": True, "use_sliding_window": False, "vocab_size": 152064,
    "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
    "vision_config": {"depth": 32, "embed_dim": 1280, "mlp_ratio": 4, "num_heads": 16, "in_chans": 3,
                      "hidden_size": 3584, "patch_size": 14, "spatial_merge_size": 2, "spatial_patch_size": 14,
                      "temporal_patch_size": 2},
}
QWEN2_VL_SOURCE = ("assembled: every matrix shape from a module printout of the loaded checkpoint (zhenhua32/Qwen2-VL "
                   "READ.md: 28 layers of q 3584→3584, k/v 3584→512, MLP 18944, vocab 152064; ViT 32 blocks of 1280, "
                   "fc1 5120, merger to 3584); the scalar fields as Qwen2.5-VL-7B's (same Qwen2 decoder) with "
                   "max_position_embeddings 32768; no verbatim copy found")

#: preprocessor_config.json / video_preprocessor_config.json as Qwen3-VL and Qwen3.5 checkpoints ship them.
QWEN3_IMAGE_PROCESSOR = {"size": {"longest_edge": 16777216, "shortest_edge": 65536}, "patch_size": 16,
                         "temporal_patch_size": 2, "merge_size": 2, "image_mean": [0.5, 0.5, 0.5],
                         "image_std": [0.5, 0.5, 0.5], "processor_class": "Qwen3VLProcessor",
                         "image_processor_type": "Qwen2VLImageProcessorFast"}
QWEN3_VIDEO_PROCESSOR = {"size": {"longest_edge": 25165824, "shortest_edge": 4096}, "patch_size": 16,
                         "temporal_patch_size": 2, "merge_size": 2, "image_mean": [0.5, 0.5, 0.5],
                         "image_std": [0.5, 0.5, 0.5], "processor_class": "Qwen3VLProcessor",
                         "video_processor_type": "Qwen3VLVideoProcessor"}
#: generation_config.json: only what the materialized folder needs (the sampling defaults were not found verbatim).
QWEN3_GENERATION: dict = {}

_VERBATIM = "a public verbatim copy of the checkpoint's config.json"
SOURCES = {
    "Qwen/Qwen3-VL-4B-Instruct": f"{_VERBATIM}: kohya-ss/musubi-tuner src/musubi_tuner/krea2/krea2_encoder.py "
                                 "QWEN3_VL_4B_INSTRUCT_CONFIG",
    "Qwen/Qwen3-VL-8B-Instruct": f"{_VERBATIM} in a model-information report (8,767,123,696 parameters in 4 "
                                 "safetensors: equal to vlmctl's count)",
    "Qwen/Qwen3-VL-32B-Instruct": "assembled: the 8B file with the 32B text and projector sizes (hidden 5120, "
                                  "64 layers, "
                                  "64/8 heads, intermediate 25600, vision out 5120) as two public notes read them "
                                  "from Qwen/Qwen3-VL-32B-Instruct/config.json; no verbatim copy found",
    "Qwen/Qwen3-VL-30B-A3B-Instruct": f"{_VERBATIM}: a Rust loader's hermetic test transcribed from the hub file at "
                                      "commit 1fc78ad, and a model-information report (31,070,754,032 parameters "
                                      "in 13 safetensors: equal to vlmctl's count)",
    "Qwen/Qwen3-VL-235B-A22B-Instruct": "assembled: the text sizes from Megatron's Qwen3-VL-235B-A22B-Instruct "
                                        "model args (94 layers, hidden 4096, 64/4 heads, 128 experts of 1536, top 8, "
                                        "vocab 151936) and the 30B-A3B vision tower with out_hidden_size 4096; "
                                        "no verbatim copy found",
    "Qwen/Qwen3.5-27B": "assembled: Qwen/Qwen3.6-27B/config.json (revision 6a9e13bd) embedded verbatim in a public "
                        "test, same Qwen3_5ForConditionalGeneration architecture; its text and vision fields equal "
                        "the Qwen3.5-27B signature public code checks field by field",
    "Qwen/Qwen3.5-35B-A3B": "assembled: the text part of Qwen3.5-35B-A3B/config.json as mlc-ai's pith-train ships it "
                            "(examples/pretrain_lm/qwen3.5-35b-a3b/config.json) with the 27B vision tower, "
                            "out_hidden_size 2048; not a verbatim multimodal file",
}

#: catalog id -> (config.json, first special-token id of the tokenizer)
CONFIGS = {
    "Qwen/Qwen3-VL-4B-Instruct": (QWEN3_VL_4B, 151643),
    "Qwen/Qwen3-VL-8B-Instruct": (QWEN3_VL_8B, 151643),
    "Qwen/Qwen3-VL-32B-Instruct": (QWEN3_VL_32B, 151643),
    "Qwen/Qwen3-VL-30B-A3B-Instruct": (QWEN3_VL_30B_A3B, 151643),
    "Qwen/Qwen3-VL-235B-A22B-Instruct": (QWEN3_VL_235B_A22B, 151643),
    "Qwen/Qwen3.5-27B": (QWEN3_5_27B, 248044),
    "Qwen/Qwen3.5-35B-A3B": (QWEN3_5_35B_A3B, 248044),
}


def config(model_id: str) -> dict:
    return copy.deepcopy(CONFIGS[model_id][0])
