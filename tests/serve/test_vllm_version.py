"""serve and the vLLM release: a plan for another release is refused (or, with --force, warned about); once the
engine is ready its logged KV cache is compared with the plan's."""
from __future__ import annotations

import pytest

from vlmctl.cli.serve import check_vllm_version
from vlmctl.errors import ConfigError
from vlmctl.plan import make_plan
from vlmctl.serve.supervise import kv_check


@pytest.fixture(scope="module")
def plan026():
    return make_plan("Qwen/Qwen2.5-VL-7B-Instruct", gpus="h100-80gb:1", vllm_version="0.26.0").plan


def test_same_release_series_passes(plan026):
    assert check_vllm_version(plan026, force=False, installed="0.26.0") is None
    assert check_vllm_version(plan026, force=False, installed="0.26.2+cu130") is None


def test_another_release_is_refused_with_the_fix(plan026):
    with pytest.raises(ConfigError) as err:
        check_vllm_version(plan026, force=False, installed="0.33.0")
    assert "made for vLLM 0.26.0" in str(err.value) and "0.33.0" in str(err.value)
    assert "--vllm-version 0.33.0" in err.value.fix and "--force" in err.value.fix


def test_force_turns_the_refusal_into_a_warning(plan026):
    text = check_vllm_version(plan026, force=True, installed="0.33.0")
    assert "--force" in text and "0.26.0" in text


def test_serve_cli_refuses_before_starting_anything(plan026, tmp_path, capsys, monkeypatch):
    from vlmctl.cli.main import main
    from vlmctl.engines import vllm as engines

    path = tmp_path / "plan.json"
    path.write_text(plan026.model_dump_json())
    monkeypatch.setattr(engines, "installed_version", lambda: "0.33.0")
    assert main(["serve", "--plan", str(path), "--vllm-bin", "/nonexistent/vllm", "--log-file",
                 str(tmp_path / "e.log")]) == 2
    err = capsys.readouterr().err
    assert "made for vLLM 0.26.0" in err and "fix:" in err and not (tmp_path / "e.log").exists()


def _log(tokens: int) -> str:
    return ("(EngineCore pid=1) INFO 11-24 21:13:30 [v1/worker/gpu_worker.py:560] Available KV cache memory: 54.30 GiB\n"
            f"(EngineCore pid=1) INFO 11-24 21:13:30 [v1/core/kv_cache_utils.py:2177] GPU KV cache size: {tokens:,} "
            "tokens\n")


def test_kv_within_tolerance_is_one_line(plan026):
    line, finding = kv_check(plan026, _log(int(plan026.kv_cache_tokens * 1.02)))
    assert "+2.0 %" in line and f"{plan026.kv_cache_tokens:,}" in line and finding is None


def test_kv_off_by_more_than_5_percent_points_at_calibrate(plan026):
    line, finding = kv_check(plan026, _log(int(plan026.kv_cache_tokens * 0.90)))
    assert "-10.0 %" in line
    assert finding.id == "kv-prediction-off" and finding.severity == "warning" and "vlmctl calibrate" in finding.fix


def test_no_kv_line_yet_is_no_report(plan026):
    assert kv_check(plan026, "INFO Loading weights took 1.2 seconds\n") is None
