"""On the GPU machine: a real vLLM engine (dummy weights) against the planner's prediction.

Needs an NVIDIA GPU and vLLM importable (see docs/validation.md for the bundle install); skipped elsewhere.
Each engine runs in its own process group through benchmarks/gpu/probe_engine.py, bounded by a timeout.
"""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks" / "gpu"))
from parse_vllm_log import parse_log  # noqa: E402


def _gpu_reason() -> str | None:
    if importlib.util.find_spec("vllm") is None:
        return "vLLM is not installed (GPU machine only: benchmarks/gpu/install_vllm.sh)"
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "no nvidia-smi: no NVIDIA GPU here"
    if out.returncode != 0 or "GPU" not in out.stdout:
        return "no NVIDIA GPU visible"
    return None


pytestmark = [pytest.mark.gpu, pytest.mark.slow,
              pytest.mark.skipif(_gpu_reason() is not None, reason=_gpu_reason() or "")]


def _run_engine(model_dir: Path, engine: dict, env: dict, log: Path, timeout_s: float = 240) -> dict:
    argv = [sys.executable, str(ROOT / "benchmarks" / "gpu" / "probe_engine.py"), str(model_dir), json.dumps(engine)]
    with open(log, "w") as fh:
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "VLLM_LOGGING_LEVEL": "DEBUG", **env})
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pass
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    return parse_log(log.read_text(errors="replace"))


@pytest.mark.timeout(300)
def test_v2_engine_kv_tokens_match_plan(tmp_path):
    from vlmctl.engines.vllm import installed_version
    from vlmctl.models.materialize import materialize
    from vlmctl.plan import make_plan

    model = tmp_path / "3B"
    materialize("Qwen/Qwen2.5-VL-3B-Instruct", model)
    engine = {"dtype": "bfloat16", "enforce_eager": True, "gpu_memory_utilization": 0.6, "max_model_len": 16384,
              "limit_mm_per_prompt": {"image": 2, "video": 0}, "max_num_batched_tokens": 8192, "max_num_seqs": 256}
    row = _run_engine(model, engine, {}, tmp_path / "engine.log")
    assert row["verdict"] == "ready", row.get("failure")
    plan = make_plan(str(model), gpus="h100-80gb:1" if "H100" in subprocess.run(
        ["nvidia-smi", "-L"], capture_output=True, text=True).stdout else "h200:1",
        dtype="bfloat16", enforce_eager=True, gpu_memory_utilization=0.6, max_model_len=16384,
        limit_mm_per_prompt={"image": 2, "video": 0}, max_num_batched_tokens=8192, max_num_seqs=256,
        model_runner="v2", vllm_version=installed_version())
    assert plan.ok
    err = (plan.plan.kv_cache_tokens - row["kv_tokens"]) / row["kv_tokens"]
    assert abs(err) <= 0.05, (plan.plan.kv_cache_tokens, row["kv_tokens"])
