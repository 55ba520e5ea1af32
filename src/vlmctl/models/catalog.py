"""The built-in catalog: Qwen2.5-VL 3B/7B/32B/72B Instruct (bf16 and AWQ), Qwen3-VL 4B/8B/32B, Qwen3-VL-MoE
30B-A3B/235B-A22B and Qwen3.5 27B/35B-A3B, as config dicts.

Entries are the checkpoints' own ``config.json`` / ``preprocessor_config.json`` (and
``video_preprocessor_config.json``) contents — Qwen2.5-VL: ../docs/planner.md § Model constants; Qwen3-VL and
Qwen3.5: vlmctl.models.published, each entry's ``source`` — so the catalog and a local folder go through the
same parser, and `vlmctl models materialize` can write a weight-less folder from them.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

from vlmctl.errors import ConfigError, did_you_mean
from vlmctl.models import published
from vlmctl.models.spec import ModelSpec, spec_from_config

_COMMON = {
    "architectures": ["Qwen2_5_VLForConditionalGeneration"],
    "model_type": "qwen2_5_vl",
    "attention_dropout": 0.0,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
    "vision_token_id": 151654,
    "image_token_id": 151655,
    "video_token_id": 151656,
    "hidden_act": "silu",
    "initializer_range": 0.02,
    "max_position_embeddings": 128000,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
    "sliding_window": 32768,
    "use_sliding_window": False,
    "use_cache": True,
    "torch_dtype": "bfloat16",
}

_SIZES = {
    #       hidden intermediate layers heads kv  vocab   tied  vision_I
    "3B": (2048, 11008, 36, 16, 2, 151936, True, 3420),
    "7B": (3584, 18944, 28, 28, 4, 152064, False, 3420),
    "32B": (5120, 27648, 64, 40, 8, 152064, False, 3456),
    "72B": (8192, 29568, 80, 64, 8, 152064, False, 3456),
}

PREPROCESSOR = {
    "min_pixels": 3136,
    "max_pixels": 12845056,
    "patch_size": 14,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "image_processor_type": "Qwen2VLImageProcessor",
    "processor_class": "Qwen2_5_VLProcessor",
}

GENERATION = {"do_sample": True, "temperature": 1e-06, "top_p": 0.001, "top_k": 1, "repetition_penalty": 1.05,
              "bos_token_id": 151643, "eos_token_id": [151645, 151643], "pad_token_id": 151643}

AWQ = {"bits": 4, "group_size": 128, "zero_point": True, "quant_method": "awq", "version": "gemm",
       "modules_to_not_convert": ["visual"]}


@dataclass(frozen=True)
class CatalogEntry:
    """One built-in model: its id, config files and what is confirmed about them."""

    id: str
    config: dict
    preprocessor: dict = field(default_factory=lambda: dict(PREPROCESSOR))
    generation: dict = field(default_factory=lambda: dict(GENERATION))
    note: str = ""
    video_preprocessor: dict | None = None
    """video_preprocessor_config.json (Qwen3-VL, Qwen3.5); None = the image settings apply to video."""
    source: str = "docs/planner.md § Model constants"
    """Where the config was read."""
    first_special_id: int = 151643
    """Id of the tokenizer's first special token (<|endoftext|>): Qwen2.5/Qwen3-VL 151643, Qwen3.5 248044."""
    model_max_length: int = 131072
    """tokenizer_config.json's model_max_length."""

    def spec(self) -> ModelSpec:
        return spec_from_config(copy.deepcopy(self.config), self.id, self.preprocessor,
                                {"model_max_length": self.model_max_length}, self.generation,
                                self.video_preprocessor)


def _config(size: str, awq: bool, intermediate: int | None = None) -> dict:
    hidden, inter, layers, heads, kv, vocab, tied, vis_i = _SIZES[size]
    cfg = copy.deepcopy(_COMMON)
    cfg.update(hidden_size=hidden, intermediate_size=intermediate or inter, num_hidden_layers=layers,
               max_window_layers=layers, num_attention_heads=heads, num_key_value_heads=kv,
               vocab_size=vocab, tie_word_embeddings=tied)
    cfg["vision_config"] = {
        "depth": 32, "hidden_act": "silu", "hidden_size": 1280, "intermediate_size": vis_i, "num_heads": 16,
        "in_chans": 3, "out_hidden_size": hidden, "patch_size": 14, "spatial_merge_size": 2,
        "spatial_patch_size": 14, "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31],
        "tokens_per_second": 2, "temporal_patch_size": 2,
    }
    if awq:
        cfg["torch_dtype"] = "float16"
        cfg["quantization_config"] = dict(AWQ)
    return cfg


def _entries() -> dict[str, CatalogEntry]:
    out: dict[str, CatalogEntry] = {}
    for size in _SIZES:
        base = f"Qwen/Qwen2.5-VL-{size}-Instruct"
        out[base] = CatalogEntry(base, _config(size, awq=False))
        if size == "72B":
            out[base + "-AWQ"] = CatalogEntry(
                base + "-AWQ", _config(size, awq=True, intermediate=29696),
                note="re-released with intermediate_size padded to 29696 so TP 2/4/8 align "
                     "(vllm#21695; the exact value is not confirmed from the checkpoint: plan a local folder to be sure)")
            out[base + "-AWQ@original"] = CatalogEntry(
                base + "-AWQ@original", _config(size, awq=True),
                note="the first upload (intermediate_size 29568): only TP 1 aligns (vllm#13640, Qwen3-VL#831)")
        else:
            note = "32B-AWQ configuration is assumed from Qwen's AWQ convention" if size == "32B" else ""
            out[base + "-AWQ"] = CatalogEntry(base + "-AWQ", _config(size, awq=True), note=note)
    q2 = "Qwen/Qwen2-VL-7B-Instruct"
    out[q2] = CatalogEntry(q2, copy.deepcopy(published.QWEN2_VL_7B),
                           preprocessor=dict(PREPROCESSOR, processor_class="Qwen2VLProcessor"),
                           source=published.QWEN2_VL_SOURCE, model_max_length=32768,
                           note="config assembled from public transcriptions (no verbatim copy found): "
                                + published.QWEN2_VL_SOURCE)
    for model_id, (cfg, first) in published.CONFIGS.items():
        text = cfg["text_config"]
        out[model_id] = CatalogEntry(
            model_id, copy.deepcopy(cfg), preprocessor=dict(published.QWEN3_IMAGE_PROCESSOR),
            generation=dict(published.QWEN3_GENERATION), video_preprocessor=dict(published.QWEN3_VIDEO_PROCESSOR),
            source=published.SOURCES[model_id], first_special_id=first,
            model_max_length=text["max_position_embeddings"],
            note="" if published.SOURCES[model_id].startswith("a public verbatim") else
            "config assembled from public transcriptions (no verbatim copy found): " + published.SOURCES[model_id])
    return out


CATALOG: dict[str, CatalogEntry] = _entries()


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9@]", "", name.lower().removeprefix("qwen/"))


def catalog_entry(model_id: str) -> CatalogEntry:
    """Look up a catalog id (case and punctuation ignored; the ``Qwen/`` prefix optional)."""
    by_norm = {_norm(k): v for k, v in CATALOG.items()}
    hit = by_norm.get(_norm(model_id))
    if hit is None:
        hint = did_you_mean(model_id, CATALOG, normalise=_norm)
        raise ConfigError(
            f"model '{model_id}' is neither a local folder nor a catalog id.{hint}",
            fix="run `vlmctl models` for the catalog, or pass the path of a local model folder",
        )
    return hit
