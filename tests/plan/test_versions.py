"""Plans per vLLM version: the default release, an unknown one, 0.33's rules, and calibration files."""
from __future__ import annotations

import json

import pytest

from vlmctl.engines.vllm import NEWEST, PROFILES
from vlmctl.errors import ConfigError
from vlmctl.plan import make_plan
from vlmctl.plan.calibration import default_calibration_path

MODEL, GPUS = "Qwen/Qwen2.5-VL-7B-Instruct", "h100-80gb:1"


def ids(r, severity=None):
    return [f.id for f in r.findings if severity is None or f.severity == severity]


def test_default_is_the_newest_supported_and_the_plan_records_it():
    r = make_plan(MODEL, gpus=GPUS)
    assert NEWEST == "0.33.0" and r.plan.vllm_version == NEWEST and r.plan.vllm_profile is None
    f = next(f for f in r.findings if f.id == "calibration-unmeasured")
    assert f.severity == "warning" and f.message.startswith("not measured for 0.33: run `vlmctl calibrate`")


def test_measured_release_has_no_unmeasured_warning():
    r = make_plan(MODEL, gpus=GPUS, vllm_version="0.26.0")
    assert r.plan.vllm_version == "0.26.0"
    assert "calibration-unmeasured" not in ids(r) and "vllm-version-unknown" not in ids(r)


def test_unknown_version_plans_with_the_nearest_profile_and_says_so():
    r = make_plan(MODEL, gpus=GPUS, vllm_version="0.99.1")
    assert r.ok and r.plan.vllm_version == "0.99.1" and r.plan.vllm_profile == NEWEST
    f = next(f for f in r.findings if f.id == "vllm-version-unknown")
    assert f.severity == "warning"
    assert "0.99.1" in f.message and NEWEST in f.message and "vlmctl calibrate" in f.fix
    older = make_plan(MODEL, gpus=GPUS, vllm_version="0.29.0")
    assert older.plan.vllm_profile == "0.26.0" and "vllm-version-unknown" in ids(older)


def test_bad_version_is_a_one_line_config_error():
    with pytest.raises(ConfigError, match="is not a vLLM version"):
        make_plan(MODEL, gpus=GPUS, vllm_version="latest")


def test_033_v2_profiles_the_encoder_so_nothing_is_kept_at_run_time():
    old = make_plan(MODEL, gpus=GPUS, vllm_version="0.26.0").plan.per_gpu[0]
    new = make_plan(MODEL, gpus=GPUS, vllm_version="0.33.0")
    g = new.plan.per_gpu[0]
    assert new.plan.model_runner == "v2" and "VLLM_USE_V2_MODEL_RUNNER" not in new.plan.env
    assert g.encoder_runtime_gib == 0 and old.encoder_runtime_gib > 1  # reserved by the profile instead
    assert g.activation_gib > old.activation_gib + 10  # worst-case video in the profile
    assert g.cudagraph_gib == pytest.approx(0.89) and old.cudagraph_gib == 0  # graphs measured and subtracted
    assert new.plan.gpu_memory_utilization == PROFILES["0.33.0"].default_utilization
    assert "encoder-runtime-reserve" not in ids(new)


def _write(path, version="0.33.0", **constants):
    constants = constants or {"weight_overhead_gib": 1.18}
    path.write_text(json.dumps({
        "vllm_version": version, "gpu": "NVIDIA H200", "measured_at": "2026-11-29T12:20:00Z",
        "engines": ["lm", "vit"], "runners": {"v2": {"constants": constants, "fitted": list(constants)}}}))
    return str(path)


def test_calibration_file_replaces_the_constants_and_is_recorded(tmp_path):
    base = make_plan(MODEL, gpus=GPUS).plan.per_gpu[0]
    path = _write(tmp_path / "cal.json")
    r = make_plan(MODEL, gpus=GPUS, calibration=path)
    assert r.plan.calibration_file == path
    assert r.plan.per_gpu[0].weights_gib == pytest.approx(base.weights_gib + 1.0, abs=0.01)
    assert "calibration-file" in ids(r, "info")
    assert "calibration-unmeasured" in ids(r)  # one constant fitted: the rest are still 0.26's


def test_a_full_calibration_clears_the_unmeasured_warning(tmp_path):
    fitted = dict(weight_overhead_gib=0.2, non_torch_gib=0.3, cuda_context_gib=0.6, lm_activation_factor=1.1,
                  vit_factor=1.0)
    r = make_plan(MODEL, gpus=GPUS, calibration=_write(tmp_path / "cal.json", **fitted))
    assert "calibration-unmeasured" not in ids(r)


def test_per_user_calibration_is_picked_up_for_its_release(tmp_path):
    path = default_calibration_path("0.33.0")
    path.parent.mkdir(parents=True)
    _write(path, "0.33.2")
    assert make_plan(MODEL, gpus=GPUS).plan.calibration_file == str(path)
    assert make_plan(MODEL, gpus=GPUS, vllm_version="0.26.0").plan.calibration_file is None


def test_calibration_for_another_release_is_refused_with_the_fix(tmp_path):
    path = _write(tmp_path / "cal.json", "0.26.0")
    with pytest.raises(ConfigError) as err:
        make_plan(MODEL, gpus=GPUS, vllm_version="0.33.0", calibration=path)
    assert "0.26.0" in str(err.value) and "--vllm-version 0.26.0" in err.value.fix


@pytest.mark.parametrize("content,words", [
    ("{", "is not JSON"),
    (b"\xff\xfe{}", "is not UTF-8 text"),
    ("[" * 100_000, "nested too deeply"),
    ('{"vllm_version": "0.33.0", "gpu": "x", "measured_at": "t", "engines": [], '
     '"runners": {"v2": {"constants": {"vit_factr": 1.0}}}}', "Did you mean 'vit_factor'"),
    ('{"vllm_version": "0.33.0", "gpu": "x", "measured_at": "t", "engines": [], "runers": {}}', "unknown key"),
    ('{"vllm_version": "soon", "gpu": "x", "measured_at": "t", "engines": [], "runners": {}}', "not a vLLM version"),
])
def test_broken_calibration_file_is_one_clear_line(tmp_path, content, words):
    path = tmp_path / "cal.json"
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    with pytest.raises(ConfigError) as err:
        make_plan(MODEL, gpus=GPUS, calibration=str(path))
    assert words in str(err.value) and "\n" not in str(err.value)


def test_missing_calibration_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read it"):
        make_plan(MODEL, gpus=GPUS, calibration=str(tmp_path / "nope.json"))


def test_plan_cli_documents_and_takes_the_version_options(tmp_path, capsys):
    from vlmctl.cli.main import main

    assert main(["plan", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--vllm-version" in text and "--calibration" in text and NEWEST in text
    assert main(["plan", MODEL, "--gpus", GPUS, "--vllm-version", "0.99.0", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["plan"]["vllm_version"] == "0.99.0" and data["plan"]["vllm_profile"] == NEWEST
    assert main(["plan", MODEL, "--gpus", GPUS, "--calibration", str(tmp_path / "none.json")]) == 2
    err = capsys.readouterr().err
    assert "cannot read it" in err and "fix:" in err


def test_plan_cli_on_a_node_with_vllm_plans_for_that_release(capsys, monkeypatch):
    from vlmctl.cli.main import main
    from vlmctl.engines import vllm as engines

    monkeypatch.setattr(engines, "installed_version", lambda: "0.26.0")
    assert main(["plan", MODEL, "--gpus", GPUS, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["plan"]["vllm_version"] == "0.26.0"
    assert main(["plan", MODEL, "--gpus", GPUS, "--vllm-version", "0.33.0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["plan"]["vllm_version"] == "0.33.0"
