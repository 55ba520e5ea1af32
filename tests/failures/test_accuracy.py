"""doctor explain on the real-log corpus: the fit part is explained, and docs/doctor.md states today's held-out result."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("doctor_accuracy", ROOT / "benchmarks" / "doctor_accuracy.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

REPORT = bench.evaluate()


def test_fit_part_accuracy_is_at_least_90_percent():
    fit = REPORT["summary"]["fit"]
    assert fit["total"] >= 60 and fit["accuracy"] >= 0.9, fit


def test_docs_state_the_measured_accuracy_by_category():
    assert bench.doc_table() == bench.table(REPORT), (
        "docs/doctor.md's accuracy table is not what the code does: python benchmarks/doctor_accuracy.py --write-doc")


def test_every_fit_miss_still_names_a_subsystem_or_a_cause():
    for row in REPORT["logs"]:
        if row["label"] != "none" and row["part"] == "fit":
            assert row["predicted"] != "none", row["file"]


def test_a_run_limited_to_some_parts_explains_no_other_log():
    report = bench.evaluate(parts=("fresh-6",))
    assert report["logs"] and {r["part"] for r in report["logs"]} == {"fresh-6"}
    assert "held-out" not in report["summary"]
