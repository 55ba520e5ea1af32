import pytest

from vlmctl.errors import ConfigError
from vlmctl.hardware import GPUS, gpu_type

REQUIRED = ["t4", "rtx-2080-ti", "titan-rtx", "v100-16gb", "v100-32gb", "rtx-3090", "a10", "a10g", "rtx-4060",
            "rtx-4090", "l4", "l40s", "a100-40gb", "a100-80gb", "h100-80gb", "h200"]


def test_catalog_covers_the_issue_list():
    assert set(REQUIRED) <= {g.id for g in GPUS}


@pytest.mark.parametrize("name,gid", [("RTX 2080 Ti", "rtx-2080-ti"), ("NVIDIA H100 80GB HBM3", "h100-80gb"),
                                      ("a100", "a100-80gb"), ("Titan_RTX", "titan-rtx"), ("TESLA T4", "t4")])
def test_names_match_without_case_or_punctuation(name, gid):
    assert gpu_type(name).id == gid


def test_turing_has_no_bf16_ampere_does():
    assert not gpu_type("rtx-2080-ti").bf16 and "bfloat16" not in gpu_type("t4").dtypes
    assert gpu_type("a10g").bf16 and "fp8" in gpu_type("l40s").dtypes


def test_unknown_gpu_suggests_closest():
    with pytest.raises(ConfigError, match="unknown GPU type 'rtx-2080'. Did you mean 'rtx-2080-ti'"):
        gpu_type("rtx-2080")
