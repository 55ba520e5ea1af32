"""Weight-less Qwen3-VL and Qwen3.5 folders for ``--load-format dummy`` runs (GPU visit, families).

Each folder holds the published ``config.json`` (sources below), the published
``preprocessor_config.json`` / ``video_preprocessor_config.json`` and a small tokenizer trained with
vlmctl's own :func:`vlmctl.models.tokenizer.build_tokenizer`, laid out by
``vlmctl.models.materialize._qwen_layout`` so every id below the special tokens decodes, with the
special tokens moved to the family's real ids (Qwen3-VL: 151643…, as Qwen2.5-VL; Qwen3.5: 248044…).
The config's token ids are checked against the tokenizer (an error, not a rewrite), so the folder is
the checkpoint's own config verbatim.

    python benchmarks/gpu/family_folders.py OUTDIR [--only 8B,27B]   # then: tar -C OUTDIR -cJf fam.tar.xz .

Folders of ``MATERIALIZED`` (Qwen2-VL-7B) are written by ``vlmctl models materialize`` itself (the catalog entry's
config, processor file and tokenizer), so a serve of that folder tests what a user's materialized folder does.

Where each config.json was read (public GitHub text found with the code search, 2026-11-29):

* Qwen3-VL-8B-Instruct: a model-information report quoting ``Qwen3-VL-8B-Instruct/config.json``
  verbatim (transformers_version 4.57.0.dev0, 8,767,123,696 parameters in 4 safetensors).
* Qwen3-VL-30B-A3B-Instruct: the same kind of report for ``Qwen3-VL-30B-A3B-Instruct/config.json``
  verbatim (31,070,754,032 parameters in 13 safetensors).
* Qwen3-VL-32B-Instruct: no verbatim copy found; the 8B file with the 32B text and projector sizes
  (hidden 5120, 64 layers, 64 heads, 8 KV heads, intermediate 25600, vision out 5120), which two
  public notes give as read from ``Qwen/Qwen3-VL-32B-Instruct/config.json`` (an architecture note
  "verified 2026-05-15", and a loader's config contract for a checkpoint that embeds that model).
* Qwen3.5-27B: ``Qwen/Qwen3.6-27B/config.json`` at revision 6a9e13bd, embedded verbatim in a public
  test; Qwen3.6-27B is the same ``Qwen3_5ForConditionalGeneration`` architecture, and its text and
  vision fields equal the Qwen3.5-27B signature other public code checks field by field (64 layers,
  48 linear value heads, 24/4 heads, head_dim 256, intermediate 17408, vision out 5120).
* Qwen3.5-35B-A3B: the text part of ``Qwen3.5-35B-A3B/config.json`` as mlc-ai/pith-train ships it
  (``examples/pretrain_lm/qwen3.5-35b-a3b/config.json``), wrapped like the 27B file with the
  vision tower's out_hidden_size 2048 (reconstructed: not a verbatim multimodal file).
* Processor files (all five): ``size`` {shortest_edge 65536, longest_edge 16777216}, patch 16,
  merge 2, temporal patch 2, mean/std 0.5 (image); video {4096, 25165824}, ``Qwen3VLVideoProcessor``,
  as Qwen3-VL and Qwen3.5 checkpoints ship them (quoted in several public tests and notes).
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_MROPE = {"mrope_interleaved": True, "mrope_section": [24, 20, 20], "rope_type": "default"}
_VL_TOKENS = {"image_token_id": 151655, "video_token_id": 151656, "vision_end_token_id": 151653,
              "vision_start_token_id": 151652}
_VL_VISION = {"deepstack_visual_indexes": [8, 16, 24], "depth": 27, "hidden_act": "gelu_pytorch_tanh",
              "hidden_size": 1152, "in_channels": 3, "initializer_range": 0.02, "intermediate_size": 4304,
              "model_type": "qwen3_vl", "num_heads": 16, "num_position_embeddings": 2304,
              "out_hidden_size": 4096, "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2}

QWEN3_VL_8B = {
    "architectures": ["Qwen3VLForConditionalGeneration"], "image_token_id": 151655, "model_type": "qwen3_vl",
    "text_config": {
        "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 151643, "dtype": "bfloat16",
        "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu", "hidden_size": 4096,
        "initializer_range": 0.02, "intermediate_size": 12288, "max_position_embeddings": 262144,
        "model_type": "qwen3_vl_text", "num_attention_heads": 32, "num_hidden_layers": 36,
        "num_key_value_heads": 8, "rms_norm_eps": 1e-06, "rope_scaling": _MROPE, "rope_theta": 5000000,
        "use_cache": True, "vocab_size": 151936},
    "tie_word_embeddings": False, "transformers_version": "4.57.0.dev0", "video_token_id": 151656,
    "vision_config": _VL_VISION, "vision_end_token_id": 151653, "vision_start_token_id": 151652,
}

QWEN3_VL_32B = copy.deepcopy(QWEN3_VL_8B)
QWEN3_VL_32B["text_config"].update(hidden_size=5120, intermediate_size=25600, num_attention_heads=64,
                                   num_hidden_layers=64, num_key_value_heads=8)
QWEN3_VL_32B["vision_config"]["out_hidden_size"] = 5120

QWEN3_VL_30B_A3B = {
    "architectures": ["Qwen3VLMoeForConditionalGeneration"], "image_token_id": 151655, "model_type": "qwen3_vl_moe",
    "text_config": {
        "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 151643, "decoder_sparse_step": 1,
        "dtype": "bfloat16", "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu", "hidden_size": 2048,
        "initializer_range": 0.02, "intermediate_size": 6144, "max_position_embeddings": 262144,
        "mlp_only_layers": [], "model_type": "qwen3_vl_moe_text", "moe_intermediate_size": 768,
        "norm_topk_prob": True, "num_attention_heads": 32, "num_experts": 128, "num_experts_per_tok": 8,
        "num_hidden_layers": 48, "num_key_value_heads": 4, "rms_norm_eps": 1e-06, "rope_scaling": _MROPE,
        "rope_theta": 5000000, "use_cache": True, "vocab_size": 151936},
    "tie_word_embeddings": False, "transformers_version": "4.57.0.dev0", "video_token_id": 151656,
    "vision_config": dict(_VL_VISION, model_type="qwen3_vl_moe", out_hidden_size=2048),
    "vision_end_token_id": 151653, "vision_start_token_id": 151652,
}

_LAYERS_64 = (["linear_attention"] * 3 + ["full_attention"]) * 16
QWEN3_5_27B = {
    "architectures": ["Qwen3_5ForConditionalGeneration"], "image_token_id": 248056, "language_model_only": False,
    "model_type": "qwen3_5",
    "text_config": {
        "attention_bias": False, "attention_dropout": 0.0, "attn_output_gate": True, "bos_token_id": 248044,
        "dtype": "bfloat16", "eos_token_id": 248044, "full_attention_interval": 4, "head_dim": 256,
        "hidden_act": "silu", "hidden_size": 5120, "initializer_range": 0.02, "intermediate_size": 17408,
        "layer_types": _LAYERS_64, "linear_conv_kernel_dim": 4, "linear_key_head_dim": 128,
        "linear_num_key_heads": 16, "linear_num_value_heads": 48, "linear_value_head_dim": 128,
        "mamba_ssm_dtype": "float32", "max_position_embeddings": 262144, "model_type": "qwen3_5_text",
        "mtp_num_hidden_layers": 1, "mtp_use_dedicated_embeddings": False, "num_attention_heads": 24,
        "num_hidden_layers": 64, "num_key_value_heads": 4, "output_gate_type": "swish", "pad_token_id": None,
        "partial_rotary_factor": 0.25, "rms_norm_eps": 1e-06,
        "rope_parameters": {"mrope_interleaved": True, "mrope_section": [11, 11, 10], "partial_rotary_factor": 0.25,
                            "rope_theta": 10000000, "rope_type": "default"},
        "tie_word_embeddings": False, "use_cache": True, "vocab_size": 248320},
    "tie_word_embeddings": False, "transformers_version": "4.57.1", "video_token_id": 248057,
    "vision_config": {"deepstack_visual_indexes": [], "depth": 27, "hidden_act": "gelu_pytorch_tanh",
                      "hidden_size": 1152, "in_channels": 3, "initializer_range": 0.02, "intermediate_size": 4304,
                      "model_type": "qwen3_5", "num_heads": 16, "num_position_embeddings": 2304,
                      "out_hidden_size": 5120, "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2},
    "vision_end_token_id": 248054, "vision_start_token_id": 248053,
}

_LAYERS_40 = (["linear_attention"] * 3 + ["full_attention"]) * 10
QWEN3_5_35B_A3B = {
    "architectures": ["Qwen3_5MoeForConditionalGeneration"], "image_token_id": 248056, "language_model_only": False,
    "model_type": "qwen3_5_moe",
    "text_config": {
        "attention_bias": False, "attention_dropout": 0.0, "attn_output_gate": True, "bos_token_id": 248044,
        "dtype": "bfloat16", "eos_token_id": 248044, "full_attention_interval": 4, "head_dim": 256,
        "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02, "layer_types": _LAYERS_40,
        "linear_conv_kernel_dim": 4, "linear_key_head_dim": 128, "linear_num_key_heads": 16,
        "linear_num_value_heads": 32, "linear_value_head_dim": 128, "mamba_ssm_dtype": "float32",
        "max_position_embeddings": 262144, "mlp_only_layers": [], "model_type": "qwen3_5_moe_text",
        "moe_intermediate_size": 512, "mtp_num_hidden_layers": 1, "mtp_use_dedicated_embeddings": False,
        "num_attention_heads": 16, "num_experts": 256, "num_experts_per_tok": 8, "num_hidden_layers": 40,
        "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "router_aux_loss_coef": 0.001,
        "shared_expert_intermediate_size": 512, "use_cache": True, "vocab_size": 248320,
        "rope_parameters": {"mrope_interleaved": True, "mrope_section": [11, 11, 10], "rope_type": "default",
                            "rope_theta": 10000000, "partial_rotary_factor": 0.25},
        "tie_word_embeddings": False},
    "tie_word_embeddings": False, "video_token_id": 248057,
    "vision_config": dict(QWEN3_5_27B["vision_config"], out_hidden_size=2048),
    "vision_end_token_id": 248054, "vision_start_token_id": 248053,
}

IMAGE_PROCESSOR = {"size": {"longest_edge": 16777216, "shortest_edge": 65536}, "patch_size": 16,
                   "temporal_patch_size": 2, "merge_size": 2, "image_mean": [0.5, 0.5, 0.5],
                   "image_std": [0.5, 0.5, 0.5], "processor_class": "Qwen3VLProcessor",
                   "image_processor_type": "Qwen2VLImageProcessorFast"}
VIDEO_PROCESSOR = {"size": {"longest_edge": 25165824, "shortest_edge": 4096}, "patch_size": 16,
                   "temporal_patch_size": 2, "merge_size": 2, "image_mean": [0.5, 0.5, 0.5],
                   "image_std": [0.5, 0.5, 0.5], "processor_class": "Qwen3VLProcessor",
                   "video_processor_type": "Qwen3VLVideoProcessor"}

#: folder name -> (hub id, config, first special-token id)
FAMILIES = {
    "8B": ("Qwen/Qwen3-VL-8B-Instruct", QWEN3_VL_8B, 151643),
    "32B": ("Qwen/Qwen3-VL-32B-Instruct", QWEN3_VL_32B, 151643),
    "30B-A3B": ("Qwen/Qwen3-VL-30B-A3B-Instruct", QWEN3_VL_30B_A3B, 151643),
    "27B": ("Qwen/Qwen3.5-27B", QWEN3_5_27B, 248044),
    "35B-A3B": ("Qwen/Qwen3.5-35B-A3B", QWEN3_5_35B_A3B, 248044),
}


#: folder name -> catalog id, written by vlmctl.models.materialize (the `vlmctl models materialize` command)
MATERIALIZED = {"Q2VL-7B": "Qwen/Qwen2-VL-7B-Instruct"}


def hub_id(name: str) -> str:
    """The model id a folder stands for."""
    return MATERIALIZED[name] if name in MATERIALIZED else FAMILIES[name][0]


def _tokenizer(out: Path, base: int) -> dict[str, int]:
    """vlmctl's tokenizer, its special tokens moved to ``base``…; returns {token: id}."""
    from vlmctl.models import materialize as mat
    from vlmctl.models.tokenizer import build_tokenizer

    saved = mat.QWEN_BASE_VOCAB
    mat.QWEN_BASE_VOCAB = base
    try:
        return mat._qwen_layout(out, build_tokenizer(out))
    finally:
        mat.QWEN_BASE_VOCAB = saved


def _check_ids(name: str, config: dict, ids: dict[str, int]) -> None:
    want = {"image_token_id": "<|image_pad|>", "video_token_id": "<|video_pad|>",
            "vision_start_token_id": "<|vision_start|>", "vision_end_token_id": "<|vision_end|>"}
    for key, tok in want.items():
        if config[key] != ids[tok]:
            raise SystemExit(f"{name}: config {key}={config[key]} but the tokenizer has {tok}={ids[tok]}")
    text = config["text_config"]
    if text["bos_token_id"] != ids["<|endoftext|>"]:
        raise SystemExit(f"{name}: bos {text['bos_token_id']} != <|endoftext|> {ids['<|endoftext|>']}")


def write(name: str, out: Path) -> dict:
    """Write one folder; returns a summary row."""
    if name in MATERIALIZED:
        from vlmctl.models.materialize import materialize

        config = materialize(MATERIALIZED[name], out, overwrite=True)
        return {"folder": name, "hub_id": MATERIALIZED[name], "model_type": config["model_type"],
                "image_token_id": config["image_token_id"], "eos": config["eos_token_id"],
                "vocab_size": config["vocab_size"], "written_by": "vlmctl models materialize"}
    hub_id, config, base = FAMILIES[name]
    out.mkdir(parents=True, exist_ok=True)
    ids = _tokenizer(out, base)
    _check_ids(name, config, ids)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "preprocessor_config.json").write_text(json.dumps(IMAGE_PROCESSOR, indent=2) + "\n")
    (out / "video_preprocessor_config.json").write_text(json.dumps(VIDEO_PROCESSOR, indent=2) + "\n")
    eos = ids["<|im_end|>"]
    gen = {"bos_token_id": ids["<|endoftext|>"], "eos_token_id": [eos, ids["<|endoftext|>"]],
           "pad_token_id": ids["<|endoftext|>"], "do_sample": False}
    (out / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")
    tok_cfg_path = out / "tokenizer_config.json"
    tok_cfg = json.loads(tok_cfg_path.read_text())
    tok_cfg["model_max_length"] = config["text_config"]["max_position_embeddings"]
    tok_cfg_path.write_text(json.dumps(tok_cfg, indent=2) + "\n")
    return {"folder": name, "hub_id": hub_id, "model_type": config["model_type"],
            "image_token_id": ids["<|image_pad|>"], "eos": eos, "vocab_size": config["text_config"]["vocab_size"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--only", default="", help="comma-separated folder names (default: all)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    names = [n for n in args.only.split(",") if n] or [*FAMILIES, *MATERIALIZED]
    unknown = [n for n in names if n not in FAMILIES and n not in MATERIALIZED]
    if unknown:
        raise SystemExit(f"unknown folder name(s) {unknown}: choose from {[*FAMILIES, *MATERIALIZED]}")
    for name in names:
        print(json.dumps(write(name, args.out / name)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
