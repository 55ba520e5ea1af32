"""Leave-one-visit-out cross-validation of the speed model's structures (benchmarks/speed_cv.py), CPU-only, no refit:
the folds never fit on a held-out row, and the recorded run (benchmarks/results/speed_cv.json) matches the code and
re-scores to the counts it records from the constants each fold recorded."""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from speed_cv import (FOLDS, RESULTS, STRUCTURES, cross_validate, fold_of, main, markdown, rescore,  # noqa: E402
                      row_key, structure)
from speed_fit import all_56  # noqa: E402


@pytest.fixture(scope="module")
def data() -> list[dict]:
    return all_56()


@pytest.fixture(scope="module")
def recorded() -> dict:
    return json.loads(RESULTS.read_text())


def test_no_fold_fits_on_a_row_it_holds_out(data):
    """Every fit gets exactly the other visits' rows; the held-out fold is scored with host factor 1 when its host
    has no row in the fit set (the H100 fold), with the fitted factors otherwise."""
    calls = []

    def recording_fit(rows, k, names, hosts, step, min_gain):
        calls.append(([row_key(r) for r in rows], names))
        return k, {**hosts, "h100-host": 1.7}

    results = cross_validate(list(STRUCTURES), list(FOLDS), fit=recording_fit)
    assert len(calls) == len(results) == len(FOLDS) * len(STRUCTURES)
    every = {row_key(r) for r in data}
    assert len(every) == 56
    for (keys, names), result in zip(calls, results, strict=True):
        held = {row_key(r) for r in data if r["gpu"] in FOLDS[result["fold"]]}
        assert held and not held & set(keys), result["fold"]
        assert len(keys) == len(set(keys)) and set(keys) | held == every
        assert names == STRUCTURES[result["structure"]][1]
        assert result["held_out_rows"] == len(held) and result["fit_rows"] == len(keys)
        assert result["hosts"]["h100-host"] == (1.0 if result["fold"] == "H100" else 1.7)


def test_the_recorded_run_matches_the_code(data, recorded):
    assert recorded["structures"] == {s: {"constants": attr, "fitted": list(names)}
                                      for s, (attr, names) in STRUCTURES.items()}
    sizes = {f: sum(1 for r in data if fold_of(r) == f) for f in FOLDS}
    assert sizes == {"H200 cached": 13, "H100": 6, "fresh": 13, "next": 8, "held": 8, "final": 8}
    assert recorded["folds"] == {f: {"labels": list(FOLDS[f]), "rows": n} for f, n in sizes.items()}
    assert [(r["fold"], r["structure"]) for r in recorded["results"]] == [(f, s) for f in FOLDS for s in STRUCTURES]
    for r in recorded["results"]:
        start, names = structure(r["structure"])
        assert (r["held_out_rows"], r["fit_rows"]) == (sizes[r["fold"]], 56 - sizes[r["fold"]])
        assert r["figures"] == 3 * sizes[r["fold"]]
        assert set(r["fitted"]) == set(names)
        # only the fitted names moved from the structure's committed constants
        unfitted = {k: v for k, v in dataclasses.asdict(start).items() if k not in names}
        assert {k: r["constants"][k] for k in unfitted} == unfitted


def test_the_recorded_fold_constants_reproduce_the_recorded_scores(data, recorded):
    for r in recorded["results"]:
        assert rescore(r, data) == r["in_target"], (r["fold"], r["structure"])
        assert r["in_target"] == r["figures"] - sum(len(v) for v in r["misses"].values())
    table = markdown(recorded["results"], list(STRUCTURES), list(FOLDS))
    total = {s: sum(r["in_target"] for r in recorded["results"] if r["structure"] == s) for s in STRUCTURES}
    assert all(f"**{n} / 168**" in table for n in total.values())


def test_an_unknown_fold_or_structure_is_refused_with_the_choices(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--folds", "final,nope"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--folds nope" in err and "H200 cached" in err
