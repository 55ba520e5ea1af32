"""Build (once) the tiny random-weight Qwen-VL the demo serves, under vlmctl's cache dir, one per family.

Each folder is a normal Hugging Face checkpoint: ``config.json`` (the family's real architecture,
tiny dims), ``model.safetensors`` (random weights, fixed seed), the locally trained tokenizer
(:mod:`vlmctl.models.tokenizer`) with Qwen2.5-VL's chat template, and the family's real image and
video processors at small pixel budgets. Patch and merge sizes come from the family module
(:mod:`vlmctl.models.families`), so the pixel budgets are whole multiples of its grid (28 px for
Qwen2.5-VL, 32 px for Qwen3-VL). transformers loads it with ``AutoProcessor`` /
``AutoModelForImageTextToText`` (written by the installed transformers; not tried with vLLM).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from vlmctl import envs
from vlmctl.serve.demo import DEFAULT_DEMO_FAMILY, demo_family

#: Bump when the recipe changes so old caches are rebuilt.
RECIPE_VERSION = 2
#: Processor budgets, in LM tokens: an image becomes 4 to 64 vision tokens, a video frame at most 16.
IMAGE_MIN_TOKENS, IMAGE_MAX_TOKENS, VIDEO_FRAME_TOKENS = 4, 64, 16
VIDEO_FPS = 2.0
VIDEO_MAX_FRAMES = 16
MAX_MODEL_LEN = 4096
VOCAB_SIZE = 4000


def geometry(family: str = DEFAULT_DEMO_FAMILY) -> tuple[int, int]:
    """(patch size, spatial merge size) of ``family``'s vision tower, from its family module's defaults."""
    from vlmctl.models.families import family_for

    vision = family_for(demo_family(family).key).vision_from_config({}, 64)
    return vision.patch_size, vision.spatial_merge_size


def budgets(family: str = DEFAULT_DEMO_FAMILY) -> dict[str, int]:
    """Pixel budgets of ``family``'s demo: ``image_min``, ``image_max``, ``video_frame`` (multiples of grid²)."""
    patch, merge = geometry(family)
    token = (patch * merge) ** 2
    return {"grid": patch * merge, "image_min": token * IMAGE_MIN_TOKENS, "image_max": token * IMAGE_MAX_TOKENS,
            "video_frame": token * VIDEO_FRAME_TOKENS}


#: Qwen2.5-VL's budgets (the default demo); kept for callers that predate ``budgets``.
IMAGE_MIN_PIXELS = budgets()["image_min"]
IMAGE_MAX_PIXELS = budgets()["image_max"]
VIDEO_MAX_PIXELS = budgets()["video_frame"]


def demo_model_dir(family: str = DEFAULT_DEMO_FAMILY) -> Path:
    """Where ``family``'s demo checkpoint lives (it may not be built yet)."""
    return Path(envs.cache_dir()) / "models" / f"{demo_family(family).model_name}-v{RECIPE_VERSION}"


def _text_config(ids: dict[str, int]) -> dict:
    from vlmctl.models.tokenizer import config_token_ids

    token_ids = config_token_ids(ids)
    return {
        "vocab_size": max(ids.values()) + 1,
        "hidden_size": 64,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": MAX_MODEL_LEN,
        "bos_token_id": token_ids["bos_token_id"],
        "eos_token_id": token_ids["eos_token_id"],
        "pad_token_id": token_ids["pad_token_id"],
    }


def _special_ids(ids: dict[str, int]) -> dict[str, int]:
    from vlmctl.models.tokenizer import config_token_ids

    token_ids = config_token_ids(ids)
    return {k: token_ids[k] for k in ("image_token_id", "video_token_id", "vision_start_token_id",
                                      "vision_end_token_id")}


def _tiny_vision(patch: int, merge: int) -> dict:
    """The tiny vision tower both demo families share (their own keys are added to it)."""
    return {"depth": 2, "hidden_size": 64, "intermediate_size": 128, "num_heads": 2, "out_hidden_size": 64,
            "patch_size": patch, "spatial_merge_size": merge, "temporal_patch_size": 2}


def _qwen2_5_vl_config(ids: dict[str, int]):
    from transformers import Qwen2_5_VLConfig

    patch, merge = geometry("qwen2_5_vl")
    text_config = _text_config(ids) | {
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]},
    }
    vision_config = _tiny_vision(patch, merge) | {
        "window_size": 4 * patch * merge,
        "fullatt_block_indexes": [1],
        "tokens_per_second": 2,
    }
    return Qwen2_5_VLConfig(text_config=text_config, vision_config=vision_config, tie_word_embeddings=True,
                            architectures=["Qwen2_5_VLForConditionalGeneration"], **_special_ids(ids))


def _qwen3_vl_config(ids: dict[str, int]):
    from transformers import Qwen3VLConfig

    patch, merge = geometry("qwen3_vl")
    text_config = _text_config(ids) | {
        "head_dim": 16,
        "rope_parameters": {"rope_type": "default", "rope_theta": 5000000.0, "mrope_section": [2, 3, 3],
                            "mrope_interleaved": True},
    }
    vision_config = _tiny_vision(patch, merge) | {
        "num_position_embeddings": 256,
        "deepstack_visual_indexes": [1],
    }
    return Qwen3VLConfig(text_config=text_config, vision_config=vision_config, tie_word_embeddings=True,
                         architectures=["Qwen3VLForConditionalGeneration"], **_special_ids(ids))


def _processor(family: str, tokenizer):
    from transformers.models.qwen2_vl import Qwen2VLImageProcessor

    from vlmctl.models.tokenizer import CHAT_TEMPLATE

    patch, merge = geometry(family)
    b = budgets(family)
    image = Qwen2VLImageProcessor(size={"shortest_edge": b["image_min"], "longest_edge": b["image_max"]},
                                  patch_size=patch, merge_size=merge)
    if family == "qwen3_vl":
        from transformers import Qwen3VLProcessor
        from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

        video = Qwen3VLVideoProcessor(  # Qwen3-VL's longest_edge is the whole clip's budget
            size={"shortest_edge": b["image_min"], "longest_edge": b["video_frame"] * VIDEO_MAX_FRAMES},
            patch_size=patch, merge_size=merge, fps=VIDEO_FPS, max_frames=VIDEO_MAX_FRAMES, min_frames=2,
            cap_pixels_per_frame=True, max_video_tokens=VIDEO_FRAME_TOKENS,
        )
        return Qwen3VLProcessor(image_processor=image, tokenizer=tokenizer, video_processor=video,
                                chat_template=CHAT_TEMPLATE)
    from transformers import Qwen2_5_VLProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    video = Qwen2VLVideoProcessor(
        min_pixels=b["image_min"], max_pixels=b["video_frame"], fps=VIDEO_FPS, max_frames=VIDEO_MAX_FRAMES,
        patch_size=patch, merge_size=merge,
        cap_pixels_per_frame=True,  # qwen-vl-utils' per-frame cap, the reference behaviour
    )
    return Qwen2_5_VLProcessor(image_processor=image, tokenizer=tokenizer, video_processor=video,
                               chat_template=CHAT_TEMPLATE)


def _write(out: Path, family: str) -> None:
    import torch
    from transformers import AutoModelForImageTextToText, AutoTokenizer

    from vlmctl.models.tokenizer import build_tokenizer

    ids = build_tokenizer(out, vocab_size=VOCAB_SIZE)
    config = (_qwen3_vl_config if family == "qwen3_vl" else _qwen2_5_vl_config)(ids)
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_config(config).to(torch.float32).eval()
    model.save_pretrained(out)
    _processor(family, AutoTokenizer.from_pretrained(out)).save_pretrained(out)
    info = demo_family(family)
    (out / "vlmctl_demo.json").write_text(json.dumps(
        {"notice": info.notice, "family": info.key, "recipe_version": RECIPE_VERSION, "random_weights": True},
        indent=2))


def ensure_demo_model(rebuild: bool = False, family: str = DEFAULT_DEMO_FAMILY) -> Path:
    """Return ``family``'s demo checkpoint folder, building it first if it is not cached (a few seconds)."""
    target = demo_model_dir(family)
    if (target / "vlmctl_demo.json").exists() and not rebuild:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    try:
        _write(tmp, demo_family(family).key)
        if rebuild and target.exists():
            shutil.rmtree(target)
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "vlmctl_demo.json").exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
