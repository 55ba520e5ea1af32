"""The held-out speed visit after revision 4, its predictions recorded before it measures anything
(docs/validation/speed_held/).

The recorded file is predicted again on the CPU with the constants it records: a change to the speed model's
arithmetic or to the plans the visit serves fails here (then the file is re-recorded on purpose, before the visit).
Also the designation (one c = 1 row, for the host factor only), that no row ran before, the visit script's syntax,
bench flags and calibration step, and the comparison of a visit's bench files with the record.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import speed_held as sh  # noqa: E402
from speed_fresh import constants_of  # noqa: E402

RECORDED = ROOT / "docs" / "validation" / "speed_held" / "predictions.json"


def test_recorded_predictions_follow_from_the_recorded_constants(monkeypatch, tmp_path):
    monkeypatch.setenv("VLMCTL_CALIBRATION_DIR", str(tmp_path))  # no per-user calibration file
    recorded = json.loads(RECORDED.read_text())
    meta = recorded.pop("recorded")
    assert meta["date"] and meta["commit"] and "before" in meta["note"]
    assert json.loads(json.dumps(sh.predictions(constants_of(recorded)))) == recorded
    assert recorded["constants"]["media_new_item_ms"] > 0  # revision 4's constants


def test_one_c1_row_sets_the_host_factor_and_the_rest_is_held_out():
    doc = json.loads(RECORDED.read_text())
    rows = doc["rows"].values()
    assert len(rows) == len(sh.ROWS) == 8 and doc["fit_constants"] == ["host_factor"]
    fit = [r for r in rows if r["set"] == "fit"]
    assert len(fit) == 1 and fit[0]["concurrency"] == 1 and (fit[0]["model"], fit[0]["workload"], 1) in sh.FIT
    assert doc["constants"]["host_factor"] == 1.0
    fit_bench = next(b for b in sh.BENCHES if (b[0], b[1], 1) in sh.FIT)
    assert fit_bench[4] == (1,)  # its bench has no other level, so the host factor sees only the fit row
    assert {r["concurrency"] for r in rows} == {1, 4, 8, 16, 32}
    for r in rows:  # every image is new: its tokens go through the encoder and the prefill
        assert r["speed"]["media_tokens"] > 0 and r["speed"]["prompt_tokens"] > r["prompt_tokens"] + r["speed"]["media_tokens"]


def test_none_of_the_rows_was_measured_before():
    """New sizes and lengths against every earlier speed run (docs/validation/speed, speed_fresh, speed_next)."""
    earlier = set()
    for name in ("speed", "speed_fresh"):
        for r in json.loads((ROOT / "docs/validation" / name / "results.json").read_text())["rows"]:
            earlier.add((r["size"], r["mix"][0].split("=")[0]))
    for bench in (ROOT / "docs/validation/speed_next").glob("bench_*.json"):
        earlier.add((bench.stem.split("_")[1], json.loads(bench.read_text())["meta"]["mix"][0].split("=")[0]))
    assert len(earlier) >= 7
    for model, workload, *_ in sh.ROWS:
        assert (model, workload) not in earlier


def test_the_visit_script_parses_asks_for_the_recorded_flags_and_calibrates_on_the_fit_row():
    script = ROOT / "benchmarks" / "gpu" / "visit_speed_held.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert "speed_held.py --bench-args" in text and "calibrate --from-bench" in text and "cal_$M.json" in text
    fit_tag = sh.tag(*next(iter(sh.FIT))[:2])
    assert f'[ "$b" = {fit_tag} ] && calibrate' in text
    args = sh.bench_args("3B_800x600").split()
    assert args[args.index("--prompt-tokens") + 1] == "120" and args[args.index("--max-tokens") + 1] == "48"
    assert "--distinct-media" in args and "--ignore-eos" in args and args[args.index("--concurrency") + 1] == "4,16,32"


def _bench(doc: dict, model: str, workload: str, scale: float, reuse: str = "distinct") -> dict:
    levels = []
    for r in doc["rows"].values():
        if r["model"] == model and r["workload"] == workload:
            sp = r["speed"]
            levels.append({"concurrency": r["concurrency"], "summary": {
                "completed": 20, "failed": 0, "output_throughput": sp["output_tokens_per_s"] * scale,
                "total_input_tokens": 20 * sp["prompt_tokens"], "total_output_tokens": 20 * r["output_tokens"],
                "ttft_s": {"p50": sp["ttft_ms"] / 1e3 / scale}, "tpot_s": {"p50": sp["tpot_ms"] / 1e3}}})
    return {"meta": {"media_reuse": reuse, "mix": [workload]}, "levels": levels}


def test_compare_puts_each_measured_row_beside_its_prediction(tmp_path):
    doc = sh.recorded_doc(RECORDED)
    (tmp_path / "bench_3B_800x600.json").write_text(json.dumps(_bench(doc, "3B", "image@800x600", 1.1)))
    (tmp_path / "bench_Q3-8B_640x360.json").write_text(
        json.dumps(_bench(doc, "Q3-8B", "image@640x360", 1.5, reuse="pool of 4")))
    served = dict(doc["rows"]["3B image@800x600 c=4"]["served"], max_model_len=8192)
    (tmp_path / "plan_3B.json").write_text(json.dumps({"plan": served}))
    text, summary = sh.compare(doc, tmp_path)
    assert "3B: served with other settings than predicted for (served, predicted): " \
           "{'max_model_len': (8192, 128000)}" in text
    assert "Q3-8B image@640x360 c=1: the bench reused media (pool of 4)" in text
    pred = doc["rows"]["3B image@800x600 c=16"]["speed"]["output_tokens_per_s"]
    assert f"| 3B | image@800x600 | 120 / 48 | 16 | held out | {pred * 1.1:,.1f} / {pred:,.1f} (-9%) |" in text
    assert "| Q3-8B | image@1600x1200 | 64 / 160 | 4 | held out | not measured |" in text
    # 3B 800x600: 3 rows, all inside; Q3-8B 640x360: 2 rows, tok/s -33 % and TTFT +50 % out, TPOT in
    assert summary == {"fit": [0, 0], "held out": [9 + 2, 9 + 6]}


def test_the_host_factor_is_the_only_thing_the_fit_row_changes(tmp_path):
    doc = sh.recorded_doc(RECORDED)
    assert sh.with_host(doc, 1.0) == doc
    slower = sh.with_host(doc, 1.5)
    for name, row in doc["rows"].items():
        assert slower["rows"][name]["speed"]["ttft_ms"] > row["speed"]["ttft_ms"]
        assert slower["rows"][name]["speed"]["decode_step_ms"] == row["speed"]["decode_step_ms"]
    (tmp_path / "cal_3B.json").write_text(json.dumps({"speed": {"host_factor": 1.25}}))
    assert sh.host_factor(tmp_path) == 1.25


def test_the_measured_visit_scores_as_reported():
    """The runs of the visit (H200, vLLM 0.26.0, 2026-11-29) against the recorded predictions, blind and with the
    fit row's host factor: 10 and 11 of the 21 held-out figures inside the targets, as § 11 reports."""
    runs = RECORDED.parent
    doc = sh.recorded_doc(RECORDED)
    assert len(sh.measured(runs)) == 8
    _, blind = sh.compare(doc, runs)
    assert blind == {"fit": [3, 3], "held out": [10, 21]}
    assert sh.host_factor(runs) == 1.115
    _, hosted = sh.compare(sh.with_host(doc, sh.host_factor(runs)), runs)
    assert hosted == {"fit": [3, 3], "held out": [11, 21]}
