"""Resolve MODEL (catalog id or local folder) to a ModelSpec."""
from __future__ import annotations

import json
from pathlib import Path

from vlmctl.errors import ConfigError
from vlmctl.models.catalog import catalog_entry
from vlmctl.models.spec import ModelSpec, spec_from_config


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc}).", fix=f"repair or re-download {path.name}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object.", fix=f"repair or re-download {path.name}")
    return data


#: config.json sizes that must be positive integers wherever they appear (top level, text_config, vision_config).
POSITIVE_INT_KEYS = frozenset({
    "hidden_size", "num_attention_heads", "num_hidden_layers", "num_key_value_heads", "head_dim", "vocab_size",
    "max_position_embeddings", "intermediate_size", "depth", "num_heads", "patch_size", "spatial_merge_size",
    "temporal_patch_size", "embed_dim", "out_hidden_size", "in_channels", "in_chans", "window_size",
    "num_experts", "num_experts_per_tok", "moe_intermediate_size",
})


def check_config_numbers(config: dict, path: Path) -> None:
    """Every size in ``config`` (and its nested configs) a positive integer, else a ConfigError naming it."""
    todo = [(config, "")]
    while todo:
        node, where = todo.pop()
        for key, value in node.items():
            name = f"{where}{key}"
            if isinstance(value, dict) and len(where.split(".")) < 4:
                todo.append((value, f"{name}."))
            elif key in POSITIVE_INT_KEYS and value is not None:
                if isinstance(value, float) and value.is_integer() and value > 0:
                    continue
                if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value >= 2**40:
                    raise ConfigError(
                        f"{path}: {name} is {json.dumps(value)[:40]}; it must be a positive integer.",
                        fix=f"repair {path.name} (compare it with the checkpoint's original), or re-download it",
                    )


def spec_from_folder(folder: Path) -> ModelSpec:
    """Read config.json (+ image/video preprocessor, tokenizer, generation, quantization configs) from a model folder."""
    config = _read_json(folder / "config.json")
    if config is None:
        raise ConfigError(
            f"model folder '{folder}' has no config.json.",
            fix="point at the folder that holds the checkpoint's config.json and *.safetensors",
        )
    check_config_numbers(config, folder / "config.json")
    quant = _read_json(folder / "quantization_config.json") or _read_json(folder / "quant_config.json")
    if quant and "quantization_config" not in config:
        config["quantization_config"] = quant
    try:
        return spec_from_config(
            config,
            str(folder),
            preprocessor=_read_json(folder / "preprocessor_config.json"),
            tokenizer_config=_read_json(folder / "tokenizer_config.json"),
            generation_config=_read_json(folder / "generation_config.json"),
            video_preprocessor=_read_json(folder / "video_preprocessor_config.json"),
        )
    except ConfigError:
        raise
    except (TypeError, ValueError, ArithmeticError, KeyError) as exc:  # pydantic's ValidationError is a ValueError
        first = str(exc).strip().splitlines()
        detail = " ".join(first[:3])[:240] if first else type(exc).__name__
        raise ConfigError(f"{folder / 'config.json'} cannot be read as a model config ({detail}).",
                          fix="repair config.json (compare it with the checkpoint's original), or re-download it"
                          ) from None


def load_model_spec(model: str) -> ModelSpec:
    """A local folder if ``model`` is an existing path (or looks like one), else a catalog id."""
    path = Path(model).expanduser()
    if path.is_dir():
        return spec_from_folder(path)
    if model.startswith((".", "/", "~")) or path.suffix == ".json":
        raise ConfigError(f"model folder '{model}' does not exist.", fix="check the path, or use a catalog id from `vlmctl models`")
    return catalog_entry(model).spec()
