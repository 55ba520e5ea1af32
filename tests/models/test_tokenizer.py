"""The locally trained Qwen2.5-VL-shaped tokenizer: loads with transformers offline, chat template round-trips."""
from __future__ import annotations

import json

import pytest

from vlmctl.models.tokenizer import SPECIAL_TOKENS, build_tokenizer, config_token_ids


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tok")
    return out, build_tokenizer(out, vocab_size=2000)


def test_special_ids_follow_vocab_and_are_deterministic(tok_dir, tmp_path):
    out, ids = tok_dir
    assert ids["<|endoftext|>"] == 2000
    assert [ids[t] for t in SPECIAL_TOKENS] == list(range(2000, 2000 + len(SPECIAL_TOKENS)))
    assert build_tokenizer(tmp_path / "again", vocab_size=2000) == ids
    assert (tmp_path / "again" / "tokenizer.json").read_bytes() == (out / "tokenizer.json").read_bytes()
    cfg = config_token_ids(ids)
    assert cfg["image_token_id"] == ids["<|image_pad|>"] and cfg["eos_token_id"] == ids["<|im_end|>"]


def test_autotokenizer_chat_template_round_trip(tok_dir):
    transformers = pytest.importorskip("transformers", reason="needs the demo extra")
    out, ids = tok_dir
    tok = transformers.AutoTokenizer.from_pretrained(out)
    assert tok.eos_token_id == ids["<|im_end|>"]
    assert tok.pad_token_id == ids["<|endoftext|>"]
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is in this picture?"}]},
        {"role": "assistant", "content": "Two cats on a red chair."},
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "And here?"}]},
    ]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What is in this picture?<|im_end|>\n"
        "<|im_start|>assistant\nTwo cats on a red chair.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>And here?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    enc = tok(text)["input_ids"]
    assert tok.decode(enc) == text
    for special in ("<|im_start|>", "<|image_pad|>", "<|video_pad|>", "<|vision_start|>"):
        assert ids[special] in enc
    assert max(enc) < len(tok)
    assert "chat_template" in json.loads((out / "tokenizer_config.json").read_text())


def test_autoprocessor_expands_image_and_video_tokens(tok_dir):
    transformers = pytest.importorskip("transformers", reason="needs the demo extra")
    np = pytest.importorskip("numpy")
    from PIL import Image
    from transformers.models.qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    out, ids = tok_dir
    tok = transformers.AutoTokenizer.from_pretrained(out)
    proc = transformers.Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 64),
        tokenizer=tok,
        video_processor=Qwen2VLVideoProcessor(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 16),
        chat_template=tok.chat_template,
    )
    proc.save_pretrained(out)
    proc = transformers.AutoProcessor.from_pretrained(out)
    image = Image.fromarray((np.random.default_rng(0).random((300, 400, 3)) * 255).astype("uint8"))
    text = proc.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe."}]}],
        add_generation_prompt=True,
    )
    enc = proc(text=[text], images=[image], return_tensors="pt")
    grid = enc["image_grid_thw"][0]
    assert int((enc["input_ids"][0] == ids["<|image_pad|>"]).sum()) == int(grid.prod()) // 4

