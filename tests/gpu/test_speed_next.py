"""The next held-out speed visit's predictions, recorded before it measures anything (docs/validation/speed_next/).

The recorded file is predicted again on the CPU with the constants it records: a change to the speed model's
arithmetic or to the plans the visit serves fails here (then the file is re-recorded on purpose, before the visit).
Also the designation of fit and held-out rows, the visit script's syntax and bench flags, and the comparison of a
visit's bench files with the record.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import speed_next as sn  # noqa: E402
from speed_fresh import constants_of  # noqa: E402

RECORDED = ROOT / "docs" / "validation" / "speed_next" / "predictions.json"


def test_recorded_predictions_follow_from_the_recorded_constants(monkeypatch, tmp_path):
    monkeypatch.setenv("VLMCTL_CALIBRATION_DIR", str(tmp_path))  # no per-user calibration file
    recorded = json.loads(RECORDED.read_text())
    meta = recorded.pop("recorded")
    assert meta["date"] and meta["commit"] and "before" in meta["note"]
    assert json.loads(json.dumps(sn.predictions(constants_of(recorded)))) == recorded


def test_fit_rows_were_designated_before_and_are_few():
    doc = json.loads(RECORDED.read_text())
    sets = [r["set"] for r in doc["rows"].values()]
    assert len(sets) == len(sn.ROWS) == 8 and sets.count("fit") == len(sn.FIT) == 2
    assert {(r["model"], r["workload"], r["concurrency"]) for r in doc["rows"].values() if r["set"] == "fit"} == sn.FIT
    assert doc["fit_constants"] == ["vision_mfu", "media_new_ms_per_mpixel"]
    for r in doc["rows"].values():  # every image is new: its tokens go through the encoder and the prefill
        assert r["speed"]["media_tokens"] > 0 and r["speed"]["prompt_tokens"] > r["prompt_tokens"] + r["speed"]["media_tokens"]


def test_none_of_the_rows_was_measured_before():
    """New sizes, lengths and a new family against every earlier speed run (docs/validation/speed*, serve)."""
    earlier = set()
    for name in ("speed", "speed_fresh"):
        for r in json.loads((ROOT / "docs/validation" / name / "results.json").read_text())["rows"]:
            earlier.add((r["size"], r["mix"][0].split("=")[0], round(r["prompt_tokens_per_request"])))
    for model, workload, *_ in sn.ROWS:
        assert not any(size == model and mix == workload for size, mix, _ in earlier)


def test_the_visit_script_parses_and_asks_for_the_recorded_bench_flags():
    script = ROOT / "benchmarks" / "gpu" / "visit_speed_next.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    assert "speed_next.py --bench-args" in script.read_text()
    args = sn.bench_args("7B_640x480").split()
    assert args[args.index("--prompt-tokens") + 1] == "200" and args[args.index("--max-tokens") + 1] == "32"
    assert "--distinct-media" in args and args[args.index("--concurrency") + 1] == "1,8,32"


def _bench(doc: dict, model: str, workload: str, scale: float, reuse: str = "distinct") -> dict:
    levels = []
    for r in doc["rows"].values():
        if r["model"] == model and r["workload"] == workload:
            sp = r["speed"]
            levels.append({"concurrency": r["concurrency"], "summary": {
                "completed": 20, "failed": 0, "output_throughput": sp["output_tokens_per_s"] * scale,
                "ttft_s": {"p50": sp["ttft_ms"] / 1e3 / scale}, "tpot_s": {"p50": sp["tpot_ms"] / 1e3}}})
    return {"meta": {"media_reuse": reuse, "mix": [workload]}, "levels": levels}


def test_compare_puts_each_measured_row_beside_its_prediction(tmp_path):
    doc = json.loads(RECORDED.read_text())
    (tmp_path / "bench_7B_640x480.json").write_text(json.dumps(_bench(doc, "7B", "image@640x480", 1.1)))
    (tmp_path / "bench_Q3-8B_1280x720.json").write_text(
        json.dumps(_bench(doc, "Q3-8B", "image@1280x720", 1.5, reuse="pool of 4")))
    served = dict(doc["rows"]["7B image@640x480 c=1"]["served"], max_model_len=8192)
    (tmp_path / "plan_7B.json").write_text(json.dumps({"plan": served}))
    text, summary = sn.compare(doc, tmp_path)
    assert "7B: served with other settings than predicted for (served, predicted): " \
           "{'max_model_len': (8192, 128000)}" in text
    assert "Q3-8B image@1280x720 c=1: the bench reused media (pool of 4)" in text
    pred = doc["rows"]["7B image@640x480 c=8"]["speed"]["output_tokens_per_s"]
    assert f"| 7B | image@640x480 | 200 / 32 | 8 | held out | {pred * 1.1:,.1f} / {pred:,.1f} (-9%) |" in text
    assert "| 7B | image@1920x1080 | 48 / 160 | 8 | held out | not measured |" in text
    # 7B 640x480 (3 held out, all inside); Q3-8B: c=1 fit, c=8/32 held out: tok/s -33 %, TTFT +50 % out, TPOT in
    assert summary == {"fit": [1, 3], "held out": [9 + 2, 9 + 6]}


def test_fit_uses_only_the_designated_rows_and_reports_the_held_out_ones(tmp_path):
    """A made-up visit that measured exactly the recorded predictions: the rows rebuilt from its files (plans as
    served, lengths as the bench counts them) re-predict them, so the fit keeps the constants and every error is
    near 0."""
    import shutil

    doc = json.loads(RECORDED.read_text())
    for model, workload, *_ in sn.BENCHES:
        (tmp_path / f"bench_{sn.tag(model, workload)}.json").write_text(json.dumps(_bench(doc, model, workload, 1.0)))
    for size, folder in (("7B", "speed_fresh"), ("Q3-8B", None)):
        if folder:
            shutil.copy(ROOT / "docs/validation" / folder / "plan_7B.json", tmp_path / "plan_7B.json")
        else:
            from vlmctl.plan import make_plan

            plan = make_plan(sn.MODELS[size], gpus=sn.GPU, vllm_version=sn.VLLM)
            (tmp_path / f"plan_{size}.json").write_text(plan.model_dump_json())
    bench = json.loads((tmp_path / "bench_7B_640x480.json").read_text())
    for level in bench["levels"]:  # measured lengths as the bench reports them
        level["summary"].update(total_input_tokens=20 * 615, total_output_tokens=20 * 32)
    (tmp_path / "bench_7B_640x480.json").write_text(json.dumps(bench))
    for name in ("bench_7B_1920x1080.json", "bench_Q3-8B_1280x720.json"):
        b = json.loads((tmp_path / name).read_text())
        for level in b["levels"]:
            level["summary"].update(total_input_tokens=20 * (2763 if "7B" in name and "Q3" not in name else 952),
                                    total_output_tokens=20 * (160 if "1920" in name else 96))
        (tmp_path / name).write_text(json.dumps(b))
    fitted, table = sn.fit_and_hold_out(doc, tmp_path)
    assert set(fitted) == set(sn.FIT_CONSTANTS) and len(table) == 8
    assert sum(t["set"] == "fit" for t in table) == 2
    k = constants_of(doc)
    assert all(abs(fitted[n] / getattr(k, n) - 1) < 0.05 for n in sn.FIT_CONSTANTS), fitted
    assert all(abs(e) < 0.03 for t in table for e in t["error"].values()), table
