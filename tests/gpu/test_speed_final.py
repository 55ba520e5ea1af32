"""The last held-out speed visit (revision 5), its predictions recorded before it measures anything
(docs/validation/speed_final/).

The recorded file is predicted again on the CPU with the constants it records: a change to the speed model's
arithmetic or to the plan the visit serves fails here (then the file is re-recorded on purpose, before the visit).
Also the designation (one c = 1 row, for the host factor only), that no row ran before, the visit script's syntax,
bench flags, calibration step and device-time budget, and the comparison of a visit's bench files with the record.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import speed_final as sf  # noqa: E402
from speed_fresh import constants_of  # noqa: E402

RECORDED = ROOT / "docs" / "validation" / "speed_final" / "predictions.json"


def test_recorded_predictions_follow_from_the_recorded_constants(monkeypatch, tmp_path):
    monkeypatch.setenv("VLMCTL_CALIBRATION_DIR", str(tmp_path))  # no per-user calibration file
    recorded = json.loads(RECORDED.read_text())
    meta = recorded.pop("recorded")
    assert meta["date"] and meta["commit"] and "before" in meta["note"]
    assert json.loads(json.dumps(sf.predictions(constants_of(recorded)))) == recorded
    assert recorded["constants"]["queueing"] == "simulated"  # revision 5's constants


def test_one_engine_one_c1_row_sets_the_host_factor_and_the_rest_is_held_out():
    doc = json.loads(RECORDED.read_text())
    rows = doc["rows"].values()
    assert len(rows) == len(sf.ROWS) == 8 and doc["fit_constants"] == ["host_factor"]
    assert {r["model"] for r in rows} == {"7B"}
    fit = [r for r in rows if r["set"] == "fit"]
    assert len(fit) == 1 and fit[0]["concurrency"] == 1 and (fit[0]["model"], fit[0]["workload"], 1) in sf.FIT
    assert doc["constants"]["host_factor"] == 1.0
    fit_bench = next(b for b in sf.BENCHES if (b[0], b[1], 1) in sf.FIT)
    assert fit_bench[4] == (1,)  # its bench has no other level, so the host factor sees only the fit row
    assert {r["concurrency"] for r in rows} == {1, 2, 12, 16, 24}


def test_none_of_the_rows_was_measured_before():
    """New image sizes, and text at a concurrency and lengths no run used, against every earlier speed run."""
    earlier = set()
    for name in ("speed", "speed_fresh"):
        for r in json.loads((ROOT / "docs/validation" / name / "results.json").read_text())["rows"]:
            earlier.add((r["size"], r["mix"][0].split("=")[0], r["concurrency"]))
    for name in ("speed_next", "speed_held"):
        for bench in (ROOT / "docs/validation" / name).glob("bench_*.json"):
            data = json.loads(bench.read_text())
            for level in data["levels"]:
                earlier.add((bench.stem.split("_")[1], data["meta"]["mix"][0].split("=")[0], level["concurrency"]))
    assert len(earlier) >= 25
    for model, workload, _, _, c in sf.ROWS:
        if workload == "text":
            assert (model, workload, c) not in earlier
        else:
            assert not any((m, w) == (model, workload) for m, w, _ in earlier)


def test_the_visit_script_parses_asks_for_the_recorded_flags_and_fits_the_budget():
    script = ROOT / "benchmarks" / "gpu" / "visit_speed_final.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert "speed_final.py --bench-args" in text and "calibrate --from-bench" in text and "cal_$M.json" in text
    fit_tag = sf.tag(*next(iter(sf.FIT))[:2])
    assert f'[ "$b" = {fit_tag} ] && calibrate' in text
    assert f"for b in {' '.join(sf.tag(m, w) for m, w, *_ in sf.BENCHES)}; do" in text
    args = sf.bench_args("7B_1440x1080").split()
    assert args[args.index("--prompt-tokens") + 1] == "64" and args[args.index("--max-tokens") + 1] == "96"
    assert "--distinct-media" in args and "--ignore-eos" in args and args[args.index("--concurrency") + 1] == "2,12,24"
    # device time: ~16 s install + ~160 s to a ready engine + each level ~6 s + 4 s + each bench ~3 s ≤ 340 s
    levels = sum(len(b[4]) for b in sf.BENCHES)
    assert 16 + 160 + levels * (sf.DURATION_S + 4) + len(sf.BENCHES) * 3 + 10 <= 340


def _bench(doc: dict, workload: str, scale: float) -> dict:
    levels = []
    for r in doc["rows"].values():
        if r["workload"] == workload:
            sp = r["speed"]
            levels.append({"concurrency": r["concurrency"], "summary": {
                "completed": 20, "failed": 0, "output_throughput": sp["output_tokens_per_s"] * scale,
                "total_input_tokens": 20 * sp["prompt_tokens"], "total_output_tokens": 20 * r["output_tokens"],
                "ttft_s": {"p50": sp["ttft_ms"] / 1e3 / scale}, "tpot_s": {"p50": sp["tpot_ms"] / 1e3}}})
    return {"meta": {"media_reuse": "distinct", "mix": [workload]}, "levels": levels}


def test_compare_puts_each_measured_row_beside_its_prediction(tmp_path):
    doc = sf.recorded_doc(RECORDED)
    (tmp_path / "bench_7B_1024x576.json").write_text(json.dumps(_bench(doc, "image@1024x576", 1.1)))
    (tmp_path / "bench_7B_text.json").write_text(json.dumps(_bench(doc, "text", 1.5)))
    text, summary = sf.compare(doc, tmp_path)
    pred = doc["rows"]["7B image@1024x576 c=12"]["speed"]["output_tokens_per_s"]
    assert f"| 7B | image@1024x576 | 80 / 64 | 12 | held out | {pred * 1.1:,.1f} / {pred:,.1f} (-9%) |" in text
    assert "| 7B | image@1440x1080 | 64 / 96 | 2 | held out | not measured |" in text
    # 1024x576: 3 rows, all inside; text: tok/s -33 % and TTFT +50 % out, TPOT in
    assert summary == {"fit": [0, 0], "held out": [9 + 1, 9 + 3]}
    (tmp_path / "cal_7B.json").write_text(json.dumps({"speed": {"host_factor": 1.25}}))
    assert sf.host_factor(tmp_path) == 1.25
    assert sf.with_host(doc, 1.0) == doc


def test_the_measured_visit_scores_as_reported():
    """The runs of the visit (H200, vLLM 0.26.0, 2026-11-29) against the recorded predictions, blind and with the
    fit row's host factor: 17 and 15 of the 21 held-out figures inside the targets, as § 11 reports."""
    runs = RECORDED.parent
    doc = sf.recorded_doc(RECORDED)
    assert len(sf.measured(runs)) == 8
    text, blind = sf.compare(doc, runs)
    assert blind == {"fit": [3, 3], "held out": [17, 21]}
    assert "served with other settings" not in text and "reused media" not in text
    assert sf.host_factor(runs) == 0.821
    _, hosted = sf.compare(sf.with_host(doc, sf.host_factor(runs)), runs)
    assert hosted == {"fit": [3, 3], "held out": [15, 21]}
