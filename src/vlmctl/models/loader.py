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


def spec_from_folder(folder: Path) -> ModelSpec:
    """Read config.json (+ image/video preprocessor, tokenizer, generation, quantization configs) from a model folder."""
    config = _read_json(folder / "config.json")
    if config is None:
        raise ConfigError(
            f"model folder '{folder}' has no config.json.",
            fix="point at the folder that holds the checkpoint's config.json and *.safetensors",
        )
    quant = _read_json(folder / "quantization_config.json") or _read_json(folder / "quant_config.json")
    if quant and "quantization_config" not in config:
        config["quantization_config"] = quant
    return spec_from_config(
        config,
        str(folder),
        preprocessor=_read_json(folder / "preprocessor_config.json"),
        tokenizer_config=_read_json(folder / "tokenizer_config.json"),
        generation_config=_read_json(folder / "generation_config.json"),
        video_preprocessor=_read_json(folder / "video_preprocessor_config.json"),
    )


def load_model_spec(model: str) -> ModelSpec:
    """A local folder if ``model`` is an existing path (or looks like one), else a catalog id."""
    path = Path(model).expanduser()
    if path.is_dir():
        return spec_from_folder(path)
    if model.startswith((".", "/", "~")) or path.suffix == ".json":
        raise ConfigError(f"model folder '{model}' does not exist.", fix="check the path, or use a catalog id from `vlmctl models`")
    return catalog_entry(model).spec()
