"""`vlmctl models materialize`: a weight-less folder that transformers loads offline and vLLM can serve."""
from __future__ import annotations

import json

import pytest
from vlmctl.cli.main import main
from vlmctl.models import catalog_entry
from vlmctl.models.materialize import FILES, materialize
from vlmctl.models.tokenizer import SPECIAL_TOKENS


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("m7b")
    materialize("Qwen/Qwen2.5-VL-7B-Instruct", out, vocab_size=1500)
    return out


def test_files_and_real_dimensions(folder):
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    cfg = json.loads((folder / "config.json").read_text())
    real = catalog_entry("Qwen/Qwen2.5-VL-7B-Instruct").config
    for key in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_key_value_heads", "vocab_size"):
        assert cfg[key] == real[key]
    assert cfg["vision_config"] == real["vision_config"]
    pre = json.loads((folder / "preprocessor_config.json").read_text())
    assert (pre["min_pixels"], pre["max_pixels"], pre["patch_size"], pre["merge_size"]) == (3136, 12845056, 14, 2)
    assert json.loads((folder / "tokenizer_config.json").read_text())["model_max_length"] == 131072


def test_config_token_ids_match_tokenizer(folder):
    tok = json.loads((folder / "tokenizer.json").read_text())
    ids = {t["content"]: t["id"] for t in tok["added_tokens"]}
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["image_token_id"] == ids["<|image_pad|>"]
    assert cfg["video_token_id"] == ids["<|video_pad|>"]
    assert cfg["vision_start_token_id"] == ids["<|vision_start|>"]
    assert cfg["vision_end_token_id"] == ids["<|vision_end|>"]
    assert cfg["eos_token_id"] == ids["<|im_end|>"]
    assert set(SPECIAL_TOKENS) <= set(ids)
    assert max(ids.values()) < cfg["vocab_size"]


def test_transformers_loads_offline_and_counts_image_tokens(folder, monkeypatch):
    transformers = pytest.importorskip("transformers", reason="needs the demo extra (transformers)")
    pytest.importorskip("PIL", reason="needs pillow")
    from PIL import Image

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    config = transformers.AutoConfig.from_pretrained(folder)
    assert config.model_type == "qwen2_5_vl"
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    assert tok.convert_tokens_to_ids("<|image_pad|>") == config.image_token_id
    proc = transformers.AutoProcessor.from_pretrained(folder)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is this?"}]}]
    text = proc.apply_chat_template(messages, add_generation_prompt=True)
    # 448×336 → a 32×24 patch grid → (32·24)/merge² = 192 tokens; 1000×700 → smart_resize (factor 28) to 1008×700 → 36·25 = 900
    for (w, h), expected in (((448, 336), 192), ((1000, 700), 900)):
        out = proc(text=[text], images=[Image.new("RGB", (w, h), (30, 90, 150))], return_tensors="pt")
        t, gh, gw = out["image_grid_thw"][0].tolist()
        assert t * gh * gw // 4 == expected
        assert int((out["input_ids"] == config.image_token_id).sum()) == expected


def test_cli_materialize_and_refuse_overwrite(tmp_path, capsys):
    out = tmp_path / "m3b"
    assert main(["models", "materialize", "Qwen/Qwen2.5-VL-3B-Instruct", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["config"]["num_hidden_layers"] == 36 and (out / "config.json").is_file()
    assert main(["models", "materialize", "Qwen/Qwen2.5-VL-3B-Instruct", str(out)]) == 2
    assert "already holds a config.json" in capsys.readouterr().err
    assert main(["models", "materialize", "Qwen/Qwen2.5-VL-8B", str(tmp_path / "x")]) == 2
    assert "Qwen2.5-VL-8B" in capsys.readouterr().err


FAMILY_ENTRIES = {"qwen3_vl": "Qwen/Qwen3-VL-8B-Instruct", "qwen3_vl_moe": "Qwen/Qwen3-VL-30B-A3B-Instruct",
                  "qwen3_5": "Qwen/Qwen3.5-27B", "qwen3_5_moe": "Qwen/Qwen3.5-35B-A3B"}


@pytest.fixture(scope="module", params=sorted(FAMILY_ENTRIES))
def family_folder(request, tmp_path_factory):
    model_id = FAMILY_ENTRIES[request.param]
    out = tmp_path_factory.mktemp(request.param)
    materialize(model_id, out, vocab_size=1500)
    return request.param, model_id, out


def test_every_family_folder_is_the_published_config_with_matching_ids(family_folder):
    model_type, model_id, folder = family_folder
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES + ("video_preprocessor_config.json",))
    cfg = json.loads((folder / "config.json").read_text())
    entry = catalog_entry(model_id)
    assert {k: v for k, v in cfg.items() if k not in ("_name_or_path", "vlmctl_materialized")} == entry.config
    assert cfg["model_type"] == model_type
    tok = json.loads((folder / "tokenizer.json").read_text())
    ids = {t["content"]: t["id"] for t in tok["added_tokens"]}
    for key, token in (("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
                       ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>")):
        assert cfg[key] == ids[token]
    assert cfg["text_config"]["bos_token_id"] == ids["<|endoftext|>"]
    assert max(ids.values()) < cfg["text_config"]["vocab_size"]
    video = json.loads((folder / "video_preprocessor_config.json").read_text())
    assert video["video_processor_type"] == "Qwen3VLVideoProcessor" and video["patch_size"] == 16
    assert json.loads((folder / "tokenizer_config.json").read_text())["model_max_length"] == 262144


def test_transformers_loads_every_family_and_counts_32_pixel_tokens(family_folder, monkeypatch):
    transformers = pytest.importorskip("transformers", reason="needs the demo extra (transformers)")
    pytest.importorskip("PIL", reason="needs pillow")
    from PIL import Image

    model_type, _, folder = family_folder
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = transformers.AutoConfig.from_pretrained(folder)
    assert config.model_type == model_type
    proc = transformers.AutoProcessor.from_pretrained(folder)
    assert proc.tokenizer.convert_tokens_to_ids("<|image_pad|>") == config.image_token_id
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is this?"}]}]
    text = proc.apply_chat_template(messages, add_generation_prompt=True)
    # 1024×768 with 16-pixel patches merged 2×2 → 32×24 tokens
    out = proc(text=[text], images=[Image.new("RGB", (1024, 768), (30, 90, 150))], return_tensors="pt")
    assert out["image_grid_thw"][0].tolist() == [1, 48, 64]
    assert int((out["input_ids"] == config.image_token_id).sum()) == 768


def test_qwen2_vl_folder_loads_and_counts_28_pixel_tokens(tmp_path, monkeypatch):
    out = tmp_path / "q2vl"
    cfg = materialize("Qwen/Qwen2-VL-7B-Instruct", out, vocab_size=1500)
    assert cfg["model_type"] == "qwen2_vl" and not (out / "video_preprocessor_config.json").exists()
    transformers = pytest.importorskip("transformers", reason="needs the demo extra (transformers)")
    pytest.importorskip("PIL", reason="needs pillow")
    from PIL import Image

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    proc = transformers.AutoProcessor.from_pretrained(out)
    config = transformers.AutoConfig.from_pretrained(out)
    text = proc.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "?"}]}],
                                    add_generation_prompt=True)
    got = proc(text=[text], images=[Image.new("RGB", (448, 336))], return_tensors="pt")
    assert int((got["input_ids"] == config.image_token_id).sum()) == 192  # (448/14)·(336/14)/4
