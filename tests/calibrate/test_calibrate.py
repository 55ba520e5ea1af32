"""`vlmctl calibrate` end to end on this machine: each engine is a real child process (its own session, a timeout),
a stand-in that replays a recorded vLLM 0.26.0 log (the GPU is out of reach here); logs parsed, constants fitted,
the calibration file written and read back by `vlmctl plan`."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from tests.calibrate.conftest import LOGS, validation_rows
from vlmctl.calibrate.logs import logged_config
from vlmctl.calibrate.run import calibrate, write
from vlmctl.calibrate.runs import EngineRun, RunSettings, default_runs, run_engine
from vlmctl.engines.vllm import PROFILES, profile

STANDIN = [sys.executable, str(Path(__file__).with_name("standin_engine.py"))]
MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"
#: The 7B engines of docs/validation.md: four fitted on, the rest held out.
SEVEN_B = [n for n in validation_rows() if "_7b_" in n and "awq" not in n]


def _runs(names):
    table = validation_rows()
    out = []
    for name in names:
        cfg = logged_config((LOGS / f"{name}.log").read_text())
        out.append(EngineRun(name, cfg["runner"], cfg["engine"], "recorded", held_out=table[name]["split"] != "fit",
                             est_s=1))
    return out


def test_default_runs_measure_what_each_profile_needs():
    old = {r.name: r for r in default_runs(PROFILES["0.26.0"])}
    assert list(old) == ["lm_v2", "sampler_v1", "vit_v1", "graphs_v1", "check_v2"]
    assert old["lm_v2"].engine["limit_mm_per_prompt"] == {"image": 0, "video": 0}
    assert old["graphs_v1"].engine["enforce_eager"] is False and old["check_v2"].held_out
    new = [r.name for r in default_runs(PROFILES["0.33.0"])]
    assert new == ["lm_v2", "sampler_v2", "vit_v2", "graphs_v2", "check_v2"]  # 0.33's V2 profiles all of it
    assert sum(r.est_s for r in default_runs(PROFILES["0.26.0"])) <= 300


def test_calibrate_with_standin_engines_writes_a_file_plan_reads(tmp_path):
    ran = []
    report = calibrate(MODEL, RunSettings(MODEL, tmp_path / "logs", STANDIN, timeout_s=30),
                       vllm_version="0.26.0", runs=_runs(SEVEN_B), budget_s=120,
                       on_run=lambda run, row: ran.append((run.name, row["verdict"])))
    assert [n for n, _ in ran] == SEVEN_B and all(v == "ready" for _, v in ran)
    assert report.gpu == "NVIDIA H100 80GB HBM3" and report.vllm_version == "0.26.0"
    v1 = report.fitted.calibrations["v1"]
    assert v1.vit_factor == pytest.approx(1.02, abs=0.01) and v1.cudagraph_gib == 0.46
    table = validation_rows()
    for row in report.table:  # every engine as close as docs/validation.md has it, fitted on the 7B runs alone
        assert abs(row["err_after_pct"]) <= abs(table[row["name"]]["err"]) + 0.05, row
    path = write(report, tmp_path / "cal.json")
    data = json.loads(path.read_text())
    assert data["vllm_version"] == "0.26.0" and set(data["runners"]) == {"v1", "v2"}
    assert "vit_factor" in data["runners"]["v1"]["fitted"] and "vit_factor" not in data["runners"]["v2"]["fitted"]
    from vlmctl.plan import make_plan

    r = make_plan(MODEL, gpus="h100-80gb:1", vllm_version="0.26.0", calibration=str(path), model_runner="v1")
    assert r.plan.calibration_file == str(path) and "calibration-file" in [f.id for f in r.findings]


def test_an_engine_that_never_logs_its_kv_cache_is_stopped_at_its_timeout(tmp_path, monkeypatch):
    monkeypatch.setenv("STANDIN_HANG", "1")
    run = _runs(["C2_v2_7b_bf16_eager_u90_L8k"])[0]
    t0 = time.monotonic()
    row = run_engine(run, profile("0.26.0"), RunSettings(MODEL, tmp_path, STANDIN, timeout_s=2))
    assert row["timed_out"] and row["verdict"] == "timeout" and time.monotonic() - t0 < 15
    with pytest.raises(ProcessLookupError):  # the whole process group is gone
        os.killpg(row["pid"], 0)


def test_cli_prints_the_table_and_writes_the_per_user_file(tmp_path, capsys, monkeypatch):
    from vlmctl.cli.main import main

    monkeypatch.setenv("COLUMNS", "220")
    from vlmctl.plan.calibration import default_calibration_path

    runs = tmp_path / "runs.json"
    runs.write_text(json.dumps([{"name": r.name, "runner": r.runner, "engine": r.engine, "held_out": r.held_out,
                                 "est_s": 1} for r in _runs(SEVEN_B[:4] + ["B1_v2_7b_bf16_graphs_u92_L32k"])]))
    code = main(["calibrate", MODEL, "--vllm-version", "0.26.0", "--launcher", " ".join(STANDIN), "--runs", str(runs),
                 "--logs", str(tmp_path / "logs"), "--timeout-s", "30"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "Predicted vs measured" in out.out and "B1_v2_7b_bf16_graphs_u92_L32k" in out.out
    assert "held out" in out.out and "vit_factor" in out.out
    assert default_calibration_path("0.26.0").is_file()
    assert "vlmctl plan" in out.out and "--gpus h100-80gb:1" in out.out


def test_cli_without_vllm_is_one_line_with_the_fix(capsys, monkeypatch):
    from vlmctl.cli.main import main
    from vlmctl.engines import vllm as engines

    monkeypatch.setattr(engines, "installed_version", lambda: None)
    assert main(["calibrate", MODEL]) == 2
    err = capsys.readouterr().err
    assert "vLLM is not installed" in err and "fix:" in err


def test_more_models_add_their_lm_and_sampler_runs():
    from vlmctl.calibrate.runs import extra_model_runs

    extra = extra_model_runs(PROFILES["0.26.0"], "/tmp/models/32B", "32B")
    assert [(r.name, r.model) for r in extra] == [("lm_v2_32B", "/tmp/models/32B"), ("sampler_v1_32B", "/tmp/models/32B")]
    assert not any(r.held_out for r in extra)


def test_cli_json_report_names_the_file_and_the_fitted_constants(tmp_path, capsys):
    from vlmctl.cli.main import main

    runs = tmp_path / "runs.json"
    runs.write_text(json.dumps([{"name": r.name, "runner": r.runner, "engine": r.engine, "est_s": 1}
                                for r in _runs(["A1_v2_7b_bf16_eager_u90_default_worstvideo",
                                                "A2_v1_7b_bf16_eager_u90_default_worstvideo"])]))
    out_file = tmp_path / "cal.json"
    assert main(["calibrate", MODEL, "--vllm-version", "0.26.0", "--launcher", " ".join(STANDIN), "--runs", str(runs),
                 "--logs", str(tmp_path / "logs"), "-o", str(out_file), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["calibration_file"] == str(out_file) and data["gpu"] == "NVIDIA H100 80GB HBM3"
    assert "vit_factor" in data["runners"]["v1"]["fitted"] and len(data["table"]) == 2


def test_cli_bad_runs_file_is_one_line(tmp_path, capsys):
    from vlmctl.cli.main import main

    runs = tmp_path / "runs.json"
    runs.write_text('[{"name": "x"}]')
    assert main(["calibrate", MODEL, "--vllm-version", "0.26.0", "--runs", str(runs)]) == 2
    assert "--runs" in capsys.readouterr().err
