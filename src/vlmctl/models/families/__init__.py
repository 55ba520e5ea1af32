"""Model families: one module per family, chosen by config.json's ``model_type`` (or ``architectures``).

Adding a family = one module here (a ``Family`` subclass and its ``FAMILY``), catalog entries in
vlmctl.models.catalog, and calibration rows once it is measured.
"""
from __future__ import annotations

from vlmctl.errors import ConfigError
from vlmctl.models.families import qwen2_5_vl, qwen2_vl, qwen3_5, qwen3_vl, qwen3_vl_moe
from vlmctl.models.families.base import CacheLayout, Family

FAMILIES: tuple[Family, ...] = (qwen2_vl.FAMILY, qwen2_5_vl.FAMILY, qwen3_vl.FAMILY, qwen3_vl_moe.FAMILY,
                                qwen3_5.FAMILY, qwen3_5.MOE_FAMILY)
"""Every supported family."""

BY_MODEL_TYPE: dict[str, Family] = {t: f for f in FAMILIES for t in f.model_types}
BY_ARCHITECTURE: dict[str, Family] = {a: f for f in FAMILIES for a in f.architectures}
SUPPORTED_MODEL_TYPES: tuple[str, ...] = tuple(BY_MODEL_TYPE)


def family_for(model_type: str) -> Family:
    """The family of a ``model_type`` (raises ConfigError naming the supported ones)."""
    fam = BY_MODEL_TYPE.get(model_type)
    if fam is None:
        raise ConfigError(
            f"model_type '{model_type}' is not a supported vision-language model "
            f"(supported: {', '.join(SUPPORTED_MODEL_TYPES)}).",
            fix="use a checkpoint of a supported family; `vlmctl models` lists the built-in ones",
        )
    return fam


def family_of_config(config: dict, source: str) -> Family:
    """The family of a config.json: its ``model_type``, else its first known ``architectures`` entry."""
    model_type = config.get("model_type")
    if model_type in BY_MODEL_TYPE:
        return BY_MODEL_TYPE[model_type]
    for arch in config.get("architectures") or ():
        if arch in BY_ARCHITECTURE:
            fam = BY_ARCHITECTURE[arch]
            config["model_type"] = fam.model_types[0]
            return fam
    raise ConfigError(
        f"{source}: model_type '{model_type}' is not a supported vision-language model "
        f"(supported: {', '.join(SUPPORTED_MODEL_TYPES)}).",
        fix="use a checkpoint of a supported family; `vlmctl models` lists the built-in ones",
    )


__all__ = ["BY_MODEL_TYPE", "FAMILIES", "SUPPORTED_MODEL_TYPES", "CacheLayout", "Family", "family_for",
           "family_of_config"]
