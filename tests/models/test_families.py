"""The family registry: chosen by model_type, else architectures; unknown types refused with the list."""
import pytest

from vlmctl.errors import ConfigError
from vlmctl.models import catalog_entry, family_for
from vlmctl.models.families import SUPPORTED_MODEL_TYPES, family_of_config


def test_family_by_model_type_and_by_architecture():
    assert family_for("qwen2_5_vl").name == "Qwen2.5-VL"
    assert family_for("qwen2_vl").name == "Qwen2-VL"
    cfg = {"model_type": "something_custom", "architectures": ["Qwen2_5_VLForConditionalGeneration"]}
    assert family_of_config(cfg, "x").name == "Qwen2.5-VL" and cfg["model_type"] == "qwen2_5_vl"


def test_unknown_model_type_names_the_supported_ones():
    with pytest.raises(ConfigError, match="model_type 'llama' is not a supported") as exc:
        family_for("llama")
    assert all(t in str(exc.value) for t in SUPPORTED_MODEL_TYPES)


def test_qwen25_geometry_is_28_pixel_grid():
    spec = catalog_entry("Qwen/Qwen2.5-VL-7B-Instruct").spec()
    fam = spec.family
    assert fam.grid(spec) == 28 and fam.pixels_per_token(spec) == 784 and fam.max_frames_per_video == 14
