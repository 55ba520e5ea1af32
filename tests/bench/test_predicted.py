"""`vlmctl bench --plan`: measured next to the plan's speed model, on a real measured run (H200, vLLM 0.26)."""
import json
from pathlib import Path

from rich.console import Console

from vlmctl.bench.from_plan import predicted_levels
from vlmctl.bench.report import predicted_table
from vlmctl.plan import PlanResult

SPEED = Path(__file__).resolve().parents[2] / "docs/validation/speed"


def _plan():
    plan = PlanResult.model_validate_json((SPEED / "plan_7B.json").read_text()).plan
    # the plan was made for a folder on the GPU machine; the catalog has the same config
    return plan.model_copy(update={"model": "Qwen/Qwen2.5-VL-7B-Instruct", "model_path": None})


def test_measured_next_to_predicted_for_each_level():
    result = json.loads((SPEED / "bench_7B_image.json").read_text())
    rows = predicted_levels(_plan(), result)
    assert [r["concurrency"] for r in rows] == [1, 8, 32]
    # the same predictions as the validation table's for these runs (its test owns their accuracy)
    import sys

    sys.path.insert(0, str(SPEED.parents[2] / "benchmarks"))
    from speed_fit import rows as measured_rows
    from speed_fit import table

    from vlmctl.engines.vllm.speed import speed_constants

    valid = {t["concurrency"]: t for t in table(measured_rows(), speed_constants("0.26.0"))
             if (t["gpu"], t["model"], t["workload"]) == ("H200", "7B", "image@1280x720")}
    for r in rows:
        for metric in ("output_tokens_per_s", "tpot_ms", "ttft_ms"):
            measured, predicted = r[metric]
            assert abs(measured - valid[r["concurrency"]]["measured"][metric]) < 0.06, (r, metric)
            assert abs(predicted / valid[r["concurrency"]]["predicted"][metric] - 1) < 0.002, (r, metric)
    con = Console(width=160, record=True)
    con.print(predicted_table(rows))
    text = con.export_text()
    assert "c=32" in text and "measured vs the plan's speed model" in text


def test_no_prediction_for_a_mixed_workload_or_an_unknown_model():
    result = json.loads((SPEED / "bench_7B_image.json").read_text())
    mixed = {**result, "meta": {**result["meta"], "mix": ["text=1", "image@1280x720=1"]}}
    assert predicted_levels(_plan(), mixed) == []
    unknown = _plan().model_copy(update={"model": "/nonexistent/folder"})
    assert predicted_levels(unknown, result) == []


def test_distinct_media_are_predicted_as_new_media_a_pool_as_cache_hits():
    result = json.loads((SPEED / "bench_7B_image.json").read_text())
    assert "media_reuse" not in result["meta"]  # measured before the option: a pool of four
    pooled = predicted_levels(_plan(), result)
    fresh = predicted_levels(_plan(), {**result, "meta": {**result["meta"], "media_reuse": "distinct"}})
    assert {r["workload"] for r in pooled} == {"image@1280x720:repeat"}
    assert {r["workload"] for r in fresh} == {"image@1280x720"}
    for p, f in zip(pooled, fresh):
        assert f["ttft_ms"][1] > p["ttft_ms"][1]  # the vision encoder and the media's prefill run again
        assert f["ttft_ms"][0] == p["ttft_ms"][0]
    con = Console(width=200, record=True)
    con.print(predicted_table(fresh))
    assert "--workload image@1280x720)" in " ".join(con.export_text().split())
