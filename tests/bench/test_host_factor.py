"""`vlmctl calibrate --from-bench`: the speed model's API-server host factor from a bench run on the user's host.

Checked on the recorded runs (docs/validation.md § 3 and § 11): the H100 host's bench gives the factor the speed fit
found for that host (1.63 over all six of its rows), the H200 host's fresh-media bench gives about 1 (the host the
constants were measured on); the CLI writes the factor into the calibration file and `vlmctl plan` uses it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vlmctl.bench.from_plan import load_plan
from vlmctl.bench.host_factor import fit_host_factor, read_bench
from vlmctl.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SERVE, FRESH = ROOT / "docs/validation/serve", ROOT / "docs/validation/speed_fresh"
SEVEN_B = "Qwen/Qwen2.5-VL-7B-Instruct"


def _plan(path: Path):
    """A recorded plan, pointed at the catalog's model (its folder was on the GPU machine)."""
    return load_plan(str(path)).model_copy(update={"model": SEVEN_B, "model_path": None})


def test_the_h100_hosts_bench_reads_its_host_factor():
    fit = fit_host_factor(_plan(SERVE / "plan7b.json"), read_bench(SERVE / "bench_plan_u0.70.json"))
    assert 1.5 < fit.factor < 2.0 and fit.levels == 3
    before = {r["concurrency"]: r["ttft_ms"] for r in fit.before}
    after = {r["concurrency"]: r["ttft_ms"] for r in fit.after}
    assert abs(after[32][1] / after[32][0] - 1) < min(0.15, abs(before[32][1] / before[32][0] - 1) / 1.5)  # 273 ms


def test_the_measuring_hosts_fresh_media_bench_reads_about_one():
    fit = fit_host_factor(_plan(FRESH / "plan_7B.json"), read_bench(FRESH / "bench_7B_image.json"))
    assert 0.85 < fit.factor < 1.2


def _cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vlmctl.cli.main", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **env})


def test_the_factor_goes_into_the_calibration_file_and_plan_uses_it(tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(_plan(SERVE / "plan7b.json").model_dump_json())
    env = {"VLMCTL_CALIBRATION_DIR": str(tmp_path / "cal"),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    out = _cli("calibrate", "--from-bench", str(SERVE / "bench_plan_u0.70.json"), "--plan", str(plan), "--json",
               env=env)
    assert out.returncode == 0, out.stderr
    written = json.loads(Path(json.loads(out.stdout)["calibration_file"]).read_text())
    assert written["runners"] == {} and 1.5 < written["speed"]["host_factor"] < 2.0
    args = ("plan", SEVEN_B, "--gpus", "h100-80gb:1", "--vllm-version", "0.26.0", "--concurrency", "32",
            "--workload", "image@1280x720:repeat", "--json")
    with_file = json.loads(_cli(*args, env=env).stdout)
    without = json.loads(_cli(*args, env={**env, "VLMCTL_CALIBRATION_DIR": str(tmp_path / "none")}).stdout)
    assert "speed-host-factor" in [f["id"] for f in with_file["findings"]]
    assert with_file["plan"]["speed"]["ttft_ms"] > 1.4 * without["plan"]["speed"]["ttft_ms"]  # measured 273 ms
    assert abs(with_file["plan"]["speed"]["ttft_ms"] / 273.3 - 1) < 0.25


def test_an_existing_calibration_file_keeps_its_memory_constants(tmp_path):
    from vlmctl.bench.host_factor import write_host_factor
    from vlmctl.plan.calibration import CalibrationFile, RunnerConstants, read_calibration_file

    path = tmp_path / "cal.json"
    path.write_text(CalibrationFile(vllm_version="0.26.0", gpu="NVIDIA H100 80GB HBM3", measured_at="then",
                                    engines=["A1"], runners={"v2": RunnerConstants(constants={"non_torch_gib": 0.7},
                                                                                  fitted=["non_torch_gib"])},
                                    ).model_dump_json())
    plan = _plan(SERVE / "plan7b.json")
    write_host_factor(fit_host_factor(plan, read_bench(SERVE / "bench_plan_u0.70.json")), plan, path)
    data = read_calibration_file(path)
    assert data.runners["v2"].constants == {"non_torch_gib": 0.7} and data.engines == ["A1"]
    assert data.speed is not None and data.speed.levels == 3
    other = plan.model_copy(update={"vllm_version": "0.33.0"})
    with pytest.raises(ConfigError, match="is for vLLM 0.26.0, the plan for vLLM 0.33.0"):
        write_host_factor(fit_host_factor(plan, read_bench(SERVE / "bench_plan_u0.70.json")), other, path)


def test_bad_input_is_one_line_with_the_fix(tmp_path):
    two = json.loads((SERVE / "bench_plan_u0.70.json").read_text())
    two["meta"]["mix"] = ["image@1280x720=1", "text=1"]
    (tmp_path / "two.json").write_text(json.dumps(two))
    with pytest.raises(ConfigError, match="no level of it can be predicted"):
        fit_host_factor(_plan(SERVE / "plan7b.json"), read_bench(tmp_path / "two.json"))
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
           "VLMCTL_CALIBRATION_DIR": str(tmp_path / "cal")}
    for args, says in ((("calibrate", "--from-bench", str(tmp_path / "two.json")), "--from-bench and --plan go"),
                       (("calibrate",), "needs a MODEL folder"),
                       (("calibrate", "--from-bench", str(tmp_path / "missing.json"), "--plan",
                         str(SERVE / "plan7b.json")), "not a `vlmctl bench --out` file")):
        out = _cli(*args, env=env)
        assert out.returncode != 0 and says in out.stderr and "Traceback" not in out.stderr, out.stderr


@settings(max_examples=60, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                    max_leaves=8))
def test_any_json_is_a_bench_or_a_config_error(tmp_path_factory, value):
    path = tmp_path_factory.mktemp("b") / "bench.json"
    path.write_text(json.dumps(value))
    try:
        assert isinstance(read_bench(path), dict)
    except ConfigError as exc:
        assert "\n" not in str(exc)
