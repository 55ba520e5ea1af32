"""The next families visit's predictions (docs/validation/families/next_visit_predictions.json), recorded before it.

Regenerated on the CPU from the current planner and compared with the committed file: a planner change that moves
one fails here, and the file is then re-recorded on purpose before the visit (never after it). Also: the visit
script runs exactly the recorded configurations and folders.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks" / "gpu"))
import next_visit_predictions as nvp  # noqa: E402

RECORDED = ROOT / "docs" / "validation" / "families" / "next_visit_predictions.json"


def test_regenerated_predictions_equal_the_recorded_file(monkeypatch, tmp_path):
    monkeypatch.setenv("VLMCTL_CALIBRATION_DIR", str(tmp_path))
    recorded = json.loads(RECORDED.read_text())
    meta = recorded.pop("recorded")
    assert meta["date"] and meta["commit"]
    assert json.loads(json.dumps(nvp.predictions())) == recorded


def test_every_row_is_held_out_and_the_vit_probe_is_decided_by_its_vit_pass():
    doc = json.loads(RECORDED.read_text())
    rows = {r["name"]: r for r in doc["rows"]}
    assert doc["meta"]["fit"] == [] and sorted(doc["meta"]["held_out"]) == sorted(rows)
    assert {r["split"] for r in rows.values()} == {"held out"}
    paths = rows[nvp.VIT_PROBE]["predicted"]["paths"]
    assert paths["vit_pass_gib"] > 1.5 * paths["lm_path_gib"]  # the ViT pass sets the peak by a wide margin
    assert rows[nvp.VIT_PROBE]["predicted"]["torch_peak_gib"] == round(paths["vit_pass_gib"], 2)
    assert paths["vit_pass_gib"] < nvp.F06_PEAK  # the claim is decidable: the factor from F06 would say 2.90
    assert rows["S_Q2VL-7B_serve_plan"]["predicted"]["runner"] == "v2"


def test_the_visit_script_runs_the_recorded_rows():
    script = (ROOT / "benchmarks" / "gpu" / "visit_families_next.sh").read_text()
    configs = {c["name"]: c for c in json.loads((ROOT / "benchmarks" / "gpu" / "families_configs.json").read_text())}
    for name in nvp.PROBES:
        assert name in script and configs[name]["batch"] in ("N", "Q")
        assert f"probe {configs[name]['batch']} {name}" in script
    for folder in {configs[n]["model"] for n in nvp.PROBES} | set(nvp.SERVES):
        assert folder in script
    import family_folders

    assert family_folders.hub_id("Q2VL-7B") == "Qwen/Qwen2-VL-7B-Instruct"
