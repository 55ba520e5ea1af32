"""Build (once) the tiny random-weight Qwen2.5-VL the demo serves, under vlmctl's cache dir.

The folder is a normal Hugging Face checkpoint: ``config.json`` (real Qwen2.5-VL architecture,
tiny dims), ``model.safetensors`` (random weights, fixed seed), the locally trained tokenizer
(:mod:`vlmctl.models.tokenizer`) with Qwen2.5-VL's chat template, and the real
``Qwen2VLImageProcessor`` / ``Qwen2VLVideoProcessor`` at small pixel budgets. transformers loads it
with ``AutoProcessor`` / ``AutoModelForImageTextToText`` (written by the installed transformers; not
tried with vLLM).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from vlmctl import envs
from vlmctl.serve.demo import DEMO_MODEL_NAME, DEMO_NOTICE

#: Bump when the recipe changes so old caches are rebuilt.
RECIPE_VERSION = 2
#: Processor budgets: an image becomes at most 64 vision tokens, a video frame at most 16.
IMAGE_MIN_PIXELS = 28 * 28 * 4
IMAGE_MAX_PIXELS = 28 * 28 * 64
VIDEO_MAX_PIXELS = 28 * 28 * 16
VIDEO_FPS = 2.0
VIDEO_MAX_FRAMES = 16
MAX_MODEL_LEN = 4096
VOCAB_SIZE = 4000


def demo_model_dir() -> Path:
    """Where the demo checkpoint lives (it may not be built yet)."""
    return Path(envs.cache_dir()) / "models" / f"{DEMO_MODEL_NAME}-v{RECIPE_VERSION}"


def _config(ids: dict[str, int]):
    from transformers import Qwen2_5_VLConfig

    from vlmctl.models.tokenizer import config_token_ids

    token_ids = config_token_ids(ids)
    vocab = max(ids.values()) + 1
    text_config = {
        "vocab_size": vocab,
        "hidden_size": 64,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": MAX_MODEL_LEN,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]},
        "bos_token_id": token_ids["bos_token_id"],
        "eos_token_id": token_ids["eos_token_id"],
        "pad_token_id": token_ids["pad_token_id"],
    }
    vision_config = {
        "depth": 2,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_heads": 2,
        "out_hidden_size": 64,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": [1],
        "tokens_per_second": 2,
    }
    return Qwen2_5_VLConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=token_ids["image_token_id"],
        video_token_id=token_ids["video_token_id"],
        vision_start_token_id=token_ids["vision_start_token_id"],
        vision_end_token_id=token_ids["vision_end_token_id"],
        tie_word_embeddings=True,
        architectures=["Qwen2_5_VLForConditionalGeneration"],
    )


def _write(out: Path) -> None:
    import torch
    from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor
    from transformers.models.qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    from vlmctl.models.tokenizer import CHAT_TEMPLATE, build_tokenizer

    ids = build_tokenizer(out, vocab_size=VOCAB_SIZE)
    config = _config(ids)
    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration(config).to(torch.float32).eval()
    model.save_pretrained(out)
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=IMAGE_MIN_PIXELS, max_pixels=IMAGE_MAX_PIXELS),
        tokenizer=AutoTokenizer.from_pretrained(out),
        video_processor=Qwen2VLVideoProcessor(
            min_pixels=IMAGE_MIN_PIXELS,
            max_pixels=VIDEO_MAX_PIXELS,
            fps=VIDEO_FPS,
            max_frames=VIDEO_MAX_FRAMES,
            cap_pixels_per_frame=True,  # qwen-vl-utils' per-frame cap, the reference behaviour
        ),
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(out)
    (out / "vlmctl_demo.json").write_text(
        json.dumps({"notice": DEMO_NOTICE, "recipe_version": RECIPE_VERSION, "random_weights": True}, indent=2)
    )


def ensure_demo_model(rebuild: bool = False) -> Path:
    """Return the demo checkpoint folder, building it first if it is not cached (a few seconds)."""
    target = demo_model_dir()
    if (target / "vlmctl_demo.json").exists() and not rebuild:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    try:
        _write(tmp)
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
