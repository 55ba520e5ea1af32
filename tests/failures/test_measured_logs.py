"""The project's own engine logs (docs/validation, measured on the H100/H200 runs): failures are named, healthy
start-ups match nothing."""
from __future__ import annotations

from pathlib import Path

import pytest

from vlmctl.failures import explain

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "docs" / "validation"
FAILED = {
    "logs/A1_v2_7b_bf16_eager_u90_default_worstvideo.log": "oom-vision-encoder-runtime",
    "logs/B4_v1_32b_bf16_eager_u90_default.log": "kv-no-blocks",
    "logs/B9_v1_7b_awq_eager_u90_L32k.log": "python-module-missing",
    "logs/serve_plan_u0.79_engine.log": "oom-vision-encoder-runtime",
    "logs/serve_plan_u0.81_engine.log": "oom-vision-encoder-runtime",
    "logs/serve_vllm_defaults_eager_u0.90_engine.log": "oom-vision-encoder-runtime",
    "families/logs/F04_q35_27b_default_eager_u90_L32k.log": "python-module-missing",
    "families/logs/F10_q35_27b_v2_eager_u90_L32k.log": "python-module-missing",
}
HEALTHY = [
    "logs/A2_v1_7b_bf16_eager_u90_default_worstvideo.log", "logs/A3_v1_7b_bf16_eager_u90_L32k_img1_vid0.log",
    "logs/B1_v2_7b_bf16_graphs_u92_L32k.log", "logs/B3_v1_32b_bf16_eager_u95_L8k_img1_vid0.log",
    "logs/C1_v2_7b_bf16_eager_u74_default_worstvideo.log", "logs/C3_v2_32b_fp16_eager_u90_L8k_img1_vid0.log",
    "logs/serve_plan_u0.70_engine.log", "families/logs/F03_30ba3b_default_eager_u90_L32k.log",
    "families/logs/F12_8b_default_graphs_u90_L32k_img1_vid1.log", "multinode/tp2pp2p_engine.log",
    "multinode/pp2_engine.log",
]


@pytest.mark.parametrize("name", sorted(FAILED), ids=lambda n: Path(n).stem)
def test_measured_failure_is_named(name):
    path = LOGS / name
    if not path.exists():
        pytest.skip(f"{name} is not in this checkout (docs/validation is written by the GPU runs)")
    assert explain(path.read_text(errors="replace")).primary == FAILED[name]


@pytest.mark.parametrize("name", HEALTHY, ids=lambda n: Path(n).stem)
def test_measured_healthy_run_matches_nothing(name):
    path = LOGS / name
    if not path.exists():
        pytest.skip(f"{name} is not in this checkout (docs/validation is written by the GPU runs)")
    result = explain(path.read_text(errors="replace"))
    assert not result.known, [m.id for m in result.matches]
