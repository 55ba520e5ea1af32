"""The multi-GPU predictions recorded before any measurement (docs/validation/multigpu/predictions.json).

Regenerated on the CPU from the current planner and compared with the committed file: a change to the planner or
its constants that moves a prediction fails here, and then the file is re-recorded on purpose (and the docs say
which predictions were made before the measurement). Also the per-rank memory parser of the visit's helper.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "benchmarks" / "gpu"))
import multigpu_predictions as mp  # noqa: E402
import multigpu_visit as mv  # noqa: E402

RECORDED = ROOT / "docs" / "validation" / "multigpu" / "predictions.json"


def test_regenerated_predictions_equal_the_recorded_file(monkeypatch, tmp_path):
    monkeypatch.setenv("VLMCTL_CALIBRATION_DIR", str(tmp_path))  # no per-user calibration file
    recorded = json.loads(RECORDED.read_text())
    meta = recorded.pop("recorded")
    assert meta["date"] and meta["commit"]
    assert json.loads(json.dumps(mp.predictions())) == recorded


def test_the_file_covers_every_model_layout_and_concurrency():
    doc = json.loads(RECORDED.read_text())
    assert set(doc["models"]) == set(mp.MODELS)
    for m in doc["models"].values():
        for gpus, names in mp.LAYOUTS.items():
            g = m["gpus"][str(gpus)]
            assert set(g["layouts"]) == set(names)
            assert set(g["pick"]) == {str(c) for c in mp.CONCURRENCY}
            for name, row in g["layouts"].items():
                dp, tp, pp = names[name]
                s = row["served"]
                assert (s["data_parallel_size"], s["tensor_parallel_size"], s["pipeline_parallel_size"]) == (dp, tp, pp)
                assert len(row["ranks"]) == tp * pp and s["kv_cache_tokens"] > 0
                assert set(row["speed"]) == {str(c) for c in mp.CONCURRENCY}
            for c, pick in g["pick"].items():
                # the pick is one of the forced layouts here, and its speed is that layout's at that concurrency
                assert pick["layout"] in g["layouts"]
                assert pick["output_tokens_per_s"] == g["layouts"][pick["layout"]]["speed"][c]["output_tokens_per_s"]


def test_check_mode_reports_a_moved_prediction(tmp_path, capsys):
    doc = json.loads(RECORDED.read_text())
    doc["models"]["Qwen2.5-VL-7B"]["gpus"]["4"]["layouts"]["DP4"]["speed"]["32"]["tpot_ms"] += 0.01
    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps(doc))
    assert mp.main(["--check", str(moved)]) == 1
    assert "predicts something else" in capsys.readouterr().err


def test_markdown_has_one_row_per_model_and_layout_and_every_pick():
    table = mp.markdown(json.loads(RECORDED.read_text())).splitlines()
    layouts = sum(len(v) for v in mp.LAYOUTS.values())
    assert len(table) == 2 + len(mp.MODELS) * layouts
    picked = [row.rsplit("|", 2)[1].strip() for row in table[2:]]
    picks = sum(len(p.split(", ")) for p in picked if p != "—")
    assert picks == len(mp.MODELS) * len(mp.LAYOUTS) * len(mp.CONCURRENCY)


def test_memory_parser_keeps_each_rank_and_its_nvml_use(tmp_path):
    log = tmp_path / "engine.log"
    log.write_text(
        "(EngineCore_DP0 pid=11) (Worker_TP0 pid=21) INFO Model loading took 7.9012 GiB memory\n"
        "(EngineCore_DP0 pid=11) (Worker_TP1 pid=22) INFO Model loading took 7.9013 GiB memory\n"
        "(EngineCore_DP0 pid=11) (Worker_TP0 pid=21) DEBUG torch peak memory increase: 0.82GiB, "
        "non-torch forward increase memory: 0.48GiB\n"
        "(EngineCore_DP0 pid=11) (Worker_TP0 pid=21) INFO Available KV cache memory: 113.8 GiB\n"
        "(EngineCore_DP0 pid=11) INFO GPU KV cache size: 4,262,512 tokens\n"
        "\x1b[32m(EngineCore_DP1 pid=12)\x1b[0m INFO Model loading took 15.63 GiB memory\n"
        "(APIServer pid=5) INFO Started server process\n")
    smi = tmp_path / "smi.csv"
    smi.write_text("pid, used_gpu_memory [MiB]\n21, 126000 MiB\n12, 120000 MiB\n")
    out = tmp_path / "memory.json"
    assert mv.memory(str(log), str(smi), str(out)) == 0
    rows = {r["process"]: r for r in json.loads(out.read_text())["processes"]}
    assert set(rows) == {"EngineCore_DP0/Worker_TP0", "EngineCore_DP0/Worker_TP1", "EngineCore_DP0", "EngineCore_DP1"}
    assert rows["EngineCore_DP0/Worker_TP0"] == {
        "pid": 21, "process": "EngineCore_DP0/Worker_TP0", "weights_gib": 7.9012, "torch_peak_gib": 0.82,
        "non_torch_gib": 0.48, "available_kv_gib": 113.8, "nvml_used_gib": 123.05}
    assert rows["EngineCore_DP0"]["kv_tokens"] == 4262512
    assert rows["EngineCore_DP1"]["nvml_used_gib"] == 117.19


def test_layout_names_of_plan_files(tmp_path):
    for (dp, tp, pp), name in {(4, 1, 1): "DP4", (2, 2, 1): "DP2xTP2", (1, 2, 2): "TP2xPP2", (1, 1, 2): "PP2",
                               (1, 2, 1): "TP2"}.items():
        f = tmp_path / f"{name}.json"
        f.write_text(json.dumps({"plan": {"data_parallel_size": dp, "tensor_parallel_size": tp,
                                          "pipeline_parallel_size": pp}}))
        assert mv.layout(str(f)) == name


def _bench(levels: dict[int, tuple[float, float, float]]) -> dict:
    return {"levels": [{"concurrency": c, "summary": {"completed": 10, "output_throughput": tok,
                                                      "ttft_s": {"p50": ttft / 1e3}, "tpot_s": {"p50": tpot / 1e3}}}
                       for c, (tok, ttft, tpot) in levels.items()]}


def test_compare_puts_measurements_beside_predictions_and_judges_the_pick(tmp_path):
    doc = json.loads(RECORDED.read_text())
    for name, tok in {"TP4": 1000.0, "DP2xTP2": 1100.0}.items():  # at c=1 the planner picks TP4 (predicted)
        (tmp_path / f"7B_{name}").mkdir()
        (tmp_path / f"7B_{name}" / "bench.json").write_text(json.dumps(_bench({1: (tok, 50.0, 3.0)})))
    (tmp_path / "7B_TP4" / "memory.json").write_text(json.dumps({"processes": [
        {"pid": 1, "process": "EngineCore_DP0/Worker_TP3", "weights_gib": 4.07, "torch_peak_gib": 0.75,
         "available_kv_gib": 121.5}]}))
    plan = dict(doc["models"]["Qwen2.5-VL-7B"]["gpus"]["4"]["layouts"]["TP4"]["served"], max_model_len=8192)
    (tmp_path / "7B_TP4" / "plan.json").write_text(json.dumps({"plan": plan}))
    text = mp.compare(doc, tmp_path)
    assert "Qwen2.5-VL-7B TP4: served with other settings than predicted for (served, predicted): " \
           "{'max_model_len': (8192, 128000)}" in text
    pred = doc["models"]["Qwen2.5-VL-7B"]["gpus"]["4"]["layouts"]["TP4"]["speed"]["1"]["output_tokens_per_s"]
    assert f"| Qwen2.5-VL-7B | 4 | TP4 | 1 | 1,000 / {pred:,.0f} ({(pred / 1000 - 1) * 100:+.0f}%)" in text
    assert "| Qwen2.5-VL-7B | 4 | 1 | TP4 | DP2xTP2 | 90.9% | NO |" in text
    assert "| Qwen2.5-VL-7B | TP4 | EngineCore_DP0/Worker_TP3 | 4.07 / 4.04 | 0.75 / 0.70 | 121.5 / 122.00 |" in text
