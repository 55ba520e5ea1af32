"""The fresh-media visit's predictions, recorded before it measured anything (docs/validation/speed_fresh/).

The file was predicted by the speed model of its recorded commit; the model's structure has been revised since
(docs/validation.md § 11), so the file is not predicted again here: what is checked is that it was committed before
the visit's measurements, the fit/held-out designation, the visit script's syntax and the comparison of a visit's
bench files with the record (its blind score is checked in tests/plan/test_speed_validation.py).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import speed_fresh as sf  # noqa: E402

RECORDED = ROOT / "docs" / "validation" / "speed_fresh" / "predictions.json"


def test_the_predictions_were_committed_before_the_measurements():
    import shutil

    import pytest

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the repository's git history (a source archive has none)")
    recorded = json.loads(RECORDED.read_text())["recorded"]
    assert recorded["date"] and "before" in recorded["note"]

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)

    added = git("log", "--diff-filter=A", "--format=%H", "--", "docs/validation/speed_fresh/results.json")
    first_results = added.stdout.split()[-1]
    assert git("merge-base", "--is-ancestor", recorded["commit"], first_results).returncode == 0
    assert recorded["commit"] != first_results


def test_fit_rows_were_designated_before_and_are_few():
    doc = json.loads(RECORDED.read_text())
    sets = [r["set"] for r in doc["rows"].values()]
    assert len(sets) == len(sf.ROWS) == 13 and sets.count("fit") == len(sf.FIT) == 2
    assert {(r["model"], r["workload"], r["concurrency"]) for r in doc["rows"].values() if r["set"] == "fit"} == sf.FIT
    assert doc["fit_constants"] == ["vision_mfu", "media_new_ms_per_mpixel"]
    for r in doc["rows"].values():  # every image or video is new: its tokens go through the encoder and prefill
        assert r["speed"]["prompt_tokens"] == 48 + 24 + r["speed"]["media_tokens"]
        assert (r["speed"]["media_tokens"] > 0) == (r["workload"] != "text")


def test_the_visit_script_parses():
    for script in ("visit_speed.sh", "speed_visit.sh"):  # the second is the part it shares with the next visit
        subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / "gpu" / script)], check=True)


def _bench(doc: dict, model: str, kind: str, scale: float, reuse: str = "distinct") -> dict:
    levels = []
    for r in doc["rows"].values():
        if r["model"] == model and r["workload"].split("@")[0] == kind:
            sp = r["speed"]
            levels.append({"concurrency": r["concurrency"], "summary": {
                "completed": 20, "failed": 0, "output_throughput": sp["output_tokens_per_s"] * scale,
                "ttft_s": {"p50": sp["ttft_ms"] / 1e3 / scale}, "tpot_s": {"p50": sp["tpot_ms"] / 1e3},
                "total_input_tokens": 20 * sp["prompt_tokens"], "total_output_tokens": 20 * 96}})
    return {"meta": {"media_reuse": reuse, "mix": [kind]}, "levels": levels}


def test_compare_puts_each_measured_row_beside_its_prediction(tmp_path):
    doc = json.loads(RECORDED.read_text())
    (tmp_path / "bench_7B_image.json").write_text(json.dumps(_bench(doc, "7B", "image", 1.1)))
    (tmp_path / "bench_3B_image.json").write_text(json.dumps(_bench(doc, "3B", "image", 1.5, reuse="pool of 4")))
    served = dict(doc["rows"]["7B image@1280x720 c=1"]["served"], max_model_len=8192)
    (tmp_path / "plan_7B.json").write_text(json.dumps({"plan": served}))
    text, summary = sf.compare(doc, tmp_path)
    assert "7B: served with other settings than predicted for (served, predicted): " \
           "{'max_model_len': (8192, 128000)}" in text
    assert "3B image@1280x720 c=1: the bench reused media (pool of 4)" in text
    pred = doc["rows"]["7B image@1280x720 c=8"]["speed"]["output_tokens_per_s"]
    assert f"| 7B | image@1280x720 | 8 | held out | {pred * 1.1:,.1f} / {pred:,.1f} (-9%) |" in text
    assert "| 32B | image@1280x720 | 32 | held out | not measured |" in text
    # 7B: tok/s -9 %, TTFT +10 %, TPOT 0 % (all inside); 3B: tok/s -33 % and TTFT +50 % outside, TPOT inside
    assert summary == {"fit": [6, 6], "held out": [3 + 3, 3 + 9]}
