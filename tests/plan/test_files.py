import pytest

from vlmctl.errors import ConfigError, PlanInfeasibleError
from vlmctl.plan import make_plan
from vlmctl.plan.files import read_plan


def test_reads_plan_results_and_bare_plans(tmp_path):
    result = make_plan("Qwen/Qwen2.5-VL-7B-Instruct", gpus="a100-80gb:1")
    (tmp_path / "r.json").write_text(result.model_dump_json())
    (tmp_path / "p.json").write_text(result.plan.model_dump_json())
    assert read_plan(tmp_path / "r.json", require_ok=True) == result.plan
    assert read_plan(tmp_path / "p.json") == result.plan


def test_refuses_what_it_cannot_use(tmp_path):
    bad = make_plan("Qwen/Qwen2.5-VL-72B-Instruct", gpus="rtx-2080-ti:1")
    (tmp_path / "bad.json").write_text(bad.model_dump_json())
    assert not bad.ok and bad.plan is not None  # the closest failing configuration is kept
    assert read_plan(tmp_path / "bad.json").tensor_parallel_size == 1  # the doctor may still read it
    with pytest.raises(PlanInfeasibleError, match="predicted not to start"):
        read_plan(tmp_path / "bad.json", require_ok=True)
    (tmp_path / "x.json").write_text("{oops")
    with pytest.raises(ConfigError, match="is not JSON"):
        read_plan(tmp_path / "x.json")
    (tmp_path / "y.json").write_text('{"ok": true, "plan": {"model": 1}, "findings": []}')
    with pytest.raises(ConfigError, match="is not a vlmctl plan"):
        read_plan(tmp_path / "y.json")
    with pytest.raises(ConfigError, match="cannot read it"):
        read_plan(tmp_path / "missing.json")
    (tmp_path / "latin1.json").write_bytes(b'{"model": "caf\xe9"}')
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        read_plan(tmp_path / "latin1.json")
    (tmp_path / "deep.json").write_text("[" * 100_000)
    with pytest.raises(ConfigError, match="nested too deeply"):
        read_plan(tmp_path / "deep.json")
