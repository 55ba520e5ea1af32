import json

import pytest

from vlmctl.errors import ConfigError
from vlmctl.models import CATALOG, catalog_entry, load_model_spec


def test_catalog_has_every_size_and_awq():
    for size in ("3B", "7B", "32B", "72B"):
        assert f"Qwen/Qwen2.5-VL-{size}-Instruct" in CATALOG
        assert f"Qwen/Qwen2.5-VL-{size}-Instruct-AWQ" in CATALOG
    assert CATALOG["Qwen/Qwen2.5-VL-72B-Instruct-AWQ@original"].spec().intermediate_size == 29568
    assert CATALOG["Qwen/Qwen2.5-VL-72B-Instruct-AWQ"].spec().intermediate_size == 29696


def test_catalog_lookup_is_forgiving_and_suggests():
    assert catalog_entry("qwen2.5-vl-7b-instruct").id == "Qwen/Qwen2.5-VL-7B-Instruct"
    with pytest.raises(ConfigError, match="Did you mean 'Qwen/Qwen2.5-VL-7B-Instruct'"):
        catalog_entry("Qwen/Qwen2.5-VL-7B-Instruc")


def write(folder, config, **files):
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    for name, data in files.items():
        (folder / f"{name}.json").write_text(json.dumps(data))
    return folder


def test_local_folder_same_as_catalog(tmp_path):
    entry = catalog_entry("Qwen/Qwen2.5-VL-7B-Instruct-AWQ")
    folder = write(tmp_path / "m", entry.config, preprocessor_config=entry.preprocessor,
                   tokenizer_config={"model_max_length": 32768}, generation_config=entry.generation)
    spec = load_model_spec(str(folder))
    assert spec.quantization.quant_method == "awq"
    assert spec.num_hidden_layers == 28 and spec.vision.intermediate_size == 3420
    assert spec.derived_max_model_len == 32768
    assert spec.generation_defaults["repetition_penalty"] == 1.05


def test_transformers5_nested_text_config(tmp_path):
    cfg = dict(catalog_entry("Qwen/Qwen2.5-VL-3B-Instruct").config)
    text = {k: cfg.pop(k) for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                                    "num_key_value_heads", "vocab_size", "max_position_embeddings")}
    cfg["text_config"] = text
    cfg["dtype"] = cfg.pop("torch_dtype")
    spec = load_model_spec(str(write(tmp_path / "m", cfg)))
    assert spec.hidden_size == 2048 and spec.num_key_value_heads == 2 and spec.torch_dtype == "bfloat16"


def test_qwen2_vl_config(tmp_path):
    cfg = {"model_type": "qwen2_vl", "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
           "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064, "max_position_embeddings": 32768,
           "torch_dtype": "bfloat16", "vision_config": {"depth": 32, "embed_dim": 1280, "hidden_size": 3584,
                                                        "mlp_ratio": 4, "num_heads": 16}}
    spec = load_model_spec(str(write(tmp_path / "m", cfg)))
    assert spec.vision.intermediate_size == 5120 and not spec.vision.gated_mlp
    assert 0.6e9 < spec.vision.params < 0.7e9  # Qwen2-VL's ViT is ~675M


@pytest.mark.parametrize("config,match", [
    ({"model_type": "llama", "hidden_size": 1}, "not a supported vision-language model"),
    ({"model_type": "qwen2_5_vl", "hidden_size": 1}, "no vision_config"),
])
def test_bad_folders(tmp_path, config, match):
    with pytest.raises(ConfigError, match=match):
        load_model_spec(str(write(tmp_path / "m", config)))


def test_missing_folder_and_missing_config(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_model_spec(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="has no config.json"):
        load_model_spec(str(tmp_path / "empty"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_model_spec(str(tmp_path / "bad"))
