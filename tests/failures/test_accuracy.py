"""doctor explain on the real-log corpus: the fit part is explained, and docs/doctor.md states what the code does.

The held-out part is never explained here: a test that did would evaluate it on every run, and a change of the
catalogue could not land without one. `python benchmarks/doctor_accuracy.py --write-doc` evaluates it, on purpose.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("doctor_accuracy", ROOT / "benchmarks" / "doctor_accuracy.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

FIT_SIDE = tuple(p for p in bench.PARTS if p != "held-out")
REPORT = bench.evaluate(parts=FIT_SIDE)


def test_fit_part_accuracy_is_at_least_90_percent():
    fit = REPORT["summary"]["fit"]
    assert fit["total"] >= 60 and fit["accuracy"] >= 0.9, fit


def test_docs_state_the_measured_accuracy_by_category():
    assert bench.without_part(bench.doc_table()) == bench.table(REPORT), (
        "docs/doctor.md's accuracy table is not what the code does: python benchmarks/doctor_accuracy.py --write-doc")


def test_every_fit_miss_still_names_a_subsystem_or_a_cause():
    for row in REPORT["logs"]:
        if row["label"] != "none" and row["part"] == "fit":
            assert row["predicted"] != "none", row["file"]


def test_a_run_limited_to_some_parts_explains_no_other_log():
    report = bench.evaluate(parts=("fresh-6",))
    assert report["logs"] and {r["part"] for r in report["logs"]} == {"fresh-6"}
    assert "held-out" not in report["summary"]


def test_the_docs_table_keeps_its_held_out_column_when_compared_without_it():
    md = "| category | fit | held-out |\n|---|---|---|\n| a | 1/2 | 3/4 |\n| b | — | 1/1 |\n| **all** | **1/2 (50%)** | **4/5 (80%)** |"
    assert bench.without_part(md) == "| category | fit |\n|---|---|\n| a | 1/2 |\n| **all** | **1/2 (50%)** |"
    assert "held-out" in bench.doc_table()


def test_writing_the_doc_without_held_out_keeps_its_held_out_column(tmp_path):
    old = ("| category | fit | held-out | fresh-1 |\n|---|---|---|---|\n| a | 1/2 | 3/4 | — |\n| b | — | 1/1 | — |\n"
           "| **all** | **1/2 (50%)** | **4/5 (80%)** | — |")
    new = "| category | fit | fresh-1 |\n|---|---|---|\n| a | 2/2 | 1/1 |\n| c | 1/1 | — |\n| **all** | **3/3 (100%)** | **1/1 (100%)** |"
    merged = bench.with_part_from(new, old)
    assert merged == ("| category | fit | held-out | fresh-1 |\n|---|---|---|---|\n| a | 2/2 | 3/4 | 1/1 |\n"
                      "| b | — | 1/1 | — |\n| c | 1/1 | — | — |\n| **all** | **3/3 (100%)** | **4/5 (80%)** | **1/1 (100%)** |")
    assert bench.without_part(merged) == new
    doc = tmp_path / "doctor.md"
    doc.write_text(f"x\n{bench.START}\n{old}\n{bench.END}\ny\n")
    report = {"summary": {"fit": {"correct": 3, "total": 3, "accuracy": 1.0,
                                  "by_category": {"a": {"correct": 2, "total": 2}, "c": {"correct": 1, "total": 1}}},
                          "fresh-1": {"correct": 1, "total": 1, "accuracy": 1.0,
                                      "by_category": {"a": {"correct": 1, "total": 1}}}}}
    bench.write_doc(report, doc)
    assert bench.doc_table(doc) == merged
