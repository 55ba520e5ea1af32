"""The speed model's held-out H200 visits (benchmarks/speed_visits.py and the five declarations), on the CPU.

Each visit's predictions were recorded before it measured anything (docs/validation/speed_*/predictions.json). For
every visit: the declaration still describes its recorded file (and, for the visits after the model's last
structural change to them, predicts it again from the constants it records: a change to the arithmetic or to the
plans fails here), the fit rows were designated before and are few, the visit script parses and takes its benches
and flags from the declaration, a comparison of made-up bench files with the record, and the committed runs scored
as docs/validation.md § 11 reports them, blind and (host visits) with the fit row's host factor.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import speed_final  # noqa: E402
import speed_fresh  # noqa: E402
import speed_held  # noqa: E402
import speed_next  # noqa: E402
import speed_rev6  # noqa: E402
from speed_visits import constants_of, key, recorded_doc, without_records  # noqa: E402

VISITS = {v.VISIT.name: v.VISIT for v in (speed_fresh, speed_next, speed_held, speed_final, speed_rev6)}
#: Visits whose file the current model predicts again (the fresh-media file predates the model's revision 3).
PREDICTED_AGAIN = ("speed_next", "speed_held", "speed_final", "speed_rev6")
GPU_DIR = ROOT / "benchmarks" / "gpu"
#: What each visit's runs scored (docs/validation.md § 11): blind, and with the fit row's host factor.
SCORES = {
    "speed_fresh": ({"fit": [4, 6], "held out": [19, 33]}, None, None),
    "speed_next": ({"fit": [6, 6], "held out": [10, 18]}, None, None),
    "speed_held": ({"fit": [3, 3], "held out": [10, 21]}, 1.115, {"fit": [3, 3], "held out": [11, 21]}),
    "speed_final": ({"fit": [3, 3], "held out": [17, 21]}, 0.821, {"fit": [3, 3], "held out": [15, 21]}),
}

visits = pytest.mark.parametrize("name", list(VISITS))
measured = pytest.mark.parametrize("name", list(SCORES))  # speed_rev6: the next visit, not measured yet


def _no_speed(doc: dict) -> dict:
    out = json.loads(json.dumps(doc))
    out.pop("constants"), out.pop("constants_source")
    for row in out["rows"].values():
        row.pop("speed")
    return out


@visits
def test_the_declaration_describes_the_recorded_file(name, monkeypatch, tmp_path):
    monkeypatch.setenv("VLMCTL_CALIBRATION_DIR", str(tmp_path))  # no per-user calibration file
    visit = VISITS[name]
    recorded = json.loads(visit.predictions_path.read_text())
    meta = recorded.pop("recorded")
    assert meta["date"] and meta["commit"] and meta["note"] == visit.note and "before" in meta["note"]
    assert list(recorded.get("more_candidates", {})) == list(visit.more_candidates)
    for entry in recorded.get("more_candidates", {}).values():  # each later candidate: its own date and commit
        assert entry["recorded"]["date"] and entry["recorded"]["commit"] and "before" in entry["recorded"]["note"]
    recorded = without_records(recorded)
    again = json.loads(json.dumps(visit.predictions(constants_of(recorded))))
    assert _no_speed(again) == _no_speed(recorded)  # rows, designation, bench files, settings served
    if name in PREDICTED_AGAIN:
        assert again == recorded


@visits
def test_fit_rows_were_designated_before_and_are_few(name):
    visit = VISITS[name]
    doc = recorded_doc(visit.predictions_path)
    rows = list(doc["rows"].values())
    assert len(rows) == len(visit.rows) and doc["fit_constants"] == list(visit.fit_constants)
    assert {(r["model"], r["workload"], r["concurrency"]) for r in rows if r["set"] == "fit"} == visit.fit
    for r in rows:  # every image or video is new: its tokens go through the encoder and the prefill
        assert (r["speed"]["media_tokens"] > 0) == (r["workload"] != "text")
    if visit.host_visit:  # one c = 1 row, its bench alone, for the host factor only
        assert len(visit.fit) == 1 and next(iter(visit.fit))[2] == 1 and doc["constants"]["host_factor"] == 1.0
        assert next(b for b in visit.benches if visit.tag(*b[:2]) == visit.fit_bench())[4] == (1,)
    else:
        assert len(visit.fit) == 2 and len(rows) >= 8


@pytest.mark.parametrize("name", ["speed_next", "speed_held", "speed_final", "speed_rev6"])
def test_the_visit_script_takes_its_benches_and_flags_from_the_declaration(name):
    visit = VISITS[name]
    script = GPU_DIR / f"visit_{name}.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert f"PY=benchmarks/{name}.py" in text and 'visit_main "${1:?END_EPOCH}"' in text
    engines = text.split('ENGINES="')[1].split('"')[0].split()
    assert sorted(e.split("=")[0] for e in engines) == sorted(visit.models)
    shared = (GPU_DIR / "speed_visit.sh").read_text()
    for flag in ("$PY --bench-args", "$PY --benches $M", "$PY --fit-bench", "calibrate --from-bench",
                 "-o $S/cal_$M.json", '[ "$b" = "$fit_bench" ] && visit_calibrate'):
        assert flag in shared
    for model in visit.models:
        tags = visit.benches_of(model)
        assert tags and all(visit.bench_args(t).startswith("--mix ") for t in tags)


def test_the_scripts_parse_and_the_bench_flags_are_the_recorded_ones():
    for script in ("visit_speed.sh", "speed_visit.sh"):  # the fresh-media visit's script and the shared part
        subprocess.run(["bash", "-n", str(GPU_DIR / script)], check=True)
    for name, tag, prompt, output, levels in (("speed_next", "7B_640x480", "200", "32", "1,8,32"),
                                              ("speed_held", "3B_800x600", "120", "48", "4,16,32"),
                                              ("speed_final", "7B_1440x1080", "64", "96", "2,12,24")):
        args = VISITS[name].bench_args(tag).split()
        assert args[args.index("--prompt-tokens") + 1] == prompt and args[args.index("--max-tokens") + 1] == output
        assert "--distinct-media" in args and "--ignore-eos" in args and args[args.index("--concurrency") + 1] == levels
    assert "--distinct-media" not in VISITS["speed_final"].bench_args("7B_text")
    assert VISITS["speed_held"].fit_bench() == "3B_1024x768" and VISITS["speed_final"].fit_bench() == "7B_960x720"
    with pytest.raises(SystemExit, match="no bench '7B_1x1': one of 7B_960x720"):
        VISITS["speed_final"].bench_args("7B_1x1")


def _bench(visit, doc: dict, tag: str, scale: float, reuse: str = "distinct", extra_tokens: int = 0) -> dict:
    levels = []
    for r in doc["rows"].values():
        if visit.tag(r["model"], r["workload"]) == tag:
            sp, output = r["speed"], visit.lengths(doc, r)[1]
            levels.append({"concurrency": r["concurrency"], "summary": {
                "completed": 20, "failed": 0, "output_throughput": sp["output_tokens_per_s"] * scale,
                "total_input_tokens": 20 * sp["prompt_tokens"], "total_output_tokens": 20 * (output + extra_tokens),
                "ttft_s": {"p50": sp["ttft_ms"] / 1e3 / scale}, "tpot_s": {"p50": sp["tpot_ms"] / 1e3}}})
    return {"meta": {"media_reuse": reuse, "mix": [tag]}, "levels": levels}


@visits
def test_compare_puts_each_measured_row_beside_its_prediction(name, tmp_path):
    visit = VISITS[name]
    doc = recorded_doc(visit.predictions_path)
    tags = [visit.tag(m, w) for m, w, *_ in visit.benches]
    exact, off = tags[0], next(visit.tag(m, w) for m, w, *_ in reversed(visit.benches) if w != "text")
    missing = next(t for t in tags if t not in (exact, off))
    (tmp_path / f"bench_{exact}.json").write_text(json.dumps(_bench(visit, doc, exact, 1.1, extra_tokens=1)))
    (tmp_path / f"bench_{off}.json").write_text(json.dumps(_bench(visit, doc, off, 1.5, reuse="pool of 4")))
    first = next(r for r in doc["rows"].values() if visit.tag(r["model"], r["workload"]) == exact)
    (tmp_path / f"plan_{first['model']}.json").write_text(json.dumps({"plan": dict(first["served"], max_model_len=8192)}))
    text, summary = visit.compare(doc, tmp_path)
    assert f"{first['model']}: served with other settings than predicted for (served, predicted): " \
           "{'max_model_len': (8192, 128000)}" in text
    off_rows = [(n, r) for n, r in doc["rows"].items() if visit.tag(r["model"], r["workload"]) == off]
    assert f"{off_rows[0][0]}: the bench reused media (pool of 4)" in text
    output = visit.lengths(doc, first)[1]
    name_ = key(first["model"], first["workload"], first["concurrency"])
    assert f"{name_}: {output + 1} output tokens per request, predicted for {output}" in text
    pred = first["speed"]["output_tokens_per_s"]
    lengths = "" if visit.bench_by_kind else f" {first['prompt_tokens']} / {first['output_tokens']} |"
    assert (f"| {first['model']} | {first['workload']} |{lengths} {first['concurrency']} | {first['set']} | "
            f"{pred * 1.1:,.1f} / {pred:,.1f} (-9%) |") in text
    gone = next(r for r in doc["rows"].values() if visit.tag(r["model"], r["workload"]) == missing)
    assert f" {gone['concurrency']} | {gone['set']} | not measured | | |" in text
    # the exact bench's rows: all three figures inside (tok/s -9 %, TTFT +10 %); the other: only TPOT (-33 %, +50 %)
    expected = {"fit": [0, 0], "held out": [0, 0]}
    for n, r in doc["rows"].items():
        tag = visit.tag(r["model"], r["workload"])
        if tag in (exact, off):
            expected[r["set"]][0] += 3 if tag == exact else 1
            expected[r["set"]][1] += 3
    assert summary == expected


@measured
def test_the_measured_visit_scores_as_reported(name):
    """The committed runs (H200, vLLM 0.26.0, 2026-11-29) against the recorded predictions."""
    visit = VISITS[name]
    blind, factor, hosted = SCORES[name]
    runs = visit.predictions_path.parent
    doc = recorded_doc(visit.predictions_path)
    assert len(visit.measured(runs)) == len(visit.rows)
    text, summary = visit.compare(doc, runs)
    assert summary == blind
    assert "served with other settings" not in text and "reused media" not in text
    if visit.host_visit:
        assert visit.host_factor(runs) == factor
        assert visit.compare(visit.with_host(doc, factor), runs)[1] == hosted


@pytest.mark.parametrize("name", ["speed_held", "speed_final", "speed_rev6"])
def test_the_host_factor_is_the_only_thing_the_fit_row_changes(name, tmp_path):
    visit = VISITS[name]
    doc = recorded_doc(visit.predictions_path)
    assert visit.with_host(doc, 1.0) == doc
    slower = visit.with_host(doc, 1.5)
    for n, row in doc["rows"].items():
        # revision 5's simulated loop: a slower API server also spreads a level's arrivals, which can shorten the
        # median wait at high concurrency (text c=16); alone or nearly, its time is on every request's path
        if row["concurrency"] <= 2 or not visit.timed_levels:
            assert slower["rows"][n]["speed"]["ttft_ms"] > row["speed"]["ttft_ms"]
        assert slower["rows"][n]["speed"]["decode_step_ms"] == row["speed"]["decode_step_ms"]
    model = next(iter(visit.fit))[0]
    with pytest.raises(SystemExit, match=f"no calibration file; on the CPU: vlmctl calibrate --from-bench .*"
                                         f"bench_{visit.fit_bench()}.json"):
        visit.host_factor(tmp_path)
    (tmp_path / f"cal_{model}.json").write_text(json.dumps({"speed": {"host_factor": 1.25}}))
    assert visit.host_factor(tmp_path) == 1.25


def _earlier_runs(names: tuple[str, ...]) -> set[tuple[str, str, int]]:
    """(model, workload, concurrency) of every run in the visits ``names`` (results.json or bench files)."""
    earlier = set()
    for name in names:
        folder = ROOT / "docs/validation" / name
        if (folder / "results.json").exists():
            for r in json.loads((folder / "results.json").read_text())["rows"]:
                earlier.add((r["size"], r["mix"][0].split("=")[0], r["concurrency"]))
        for bench in folder.glob("bench_*.json"):
            data = json.loads(bench.read_text())
            for level in data["levels"]:
                earlier.add((bench.stem.split("_")[1], data["meta"]["mix"][0].split("=")[0], level["concurrency"]))
    return earlier


@pytest.mark.parametrize("name, before", [("speed_next", ("speed", "speed_fresh")),
                                          ("speed_held", ("speed", "speed_fresh", "speed_next")),
                                          ("speed_final", ("speed", "speed_fresh", "speed_next", "speed_held")),
                                          ("speed_rev6", ("speed", "speed_fresh", "speed_next", "speed_held",
                                                          "speed_final"))])
def test_none_of_the_rows_was_measured_before(name, before):
    """New image sizes (and lengths, and a family) against every earlier speed run; text only at a new
    concurrency."""
    earlier = _earlier_runs(before)
    assert len({(m, w) for m, w, _ in earlier}) >= 5
    for model, workload, _, _, c in VISITS[name].rows:
        if workload == "text":
            assert (model, workload, c) not in earlier
        else:
            assert not any((m, w) == (model, workload) for m, w, _ in earlier)


def test_the_fresh_predictions_were_committed_before_the_measurements():
    import shutil

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the repository's git history (a source archive has none)")
    recorded = json.loads(VISITS["speed_fresh"].predictions_path.read_text())["recorded"]

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)

    added = git("log", "--diff-filter=A", "--format=%H", "--", "docs/validation/speed_fresh/results.json")
    first_results = added.stdout.split()[-1]
    assert git("merge-base", "--is-ancestor", recorded["commit"], first_results).returncode == 0
    assert recorded["commit"] != first_results


@pytest.mark.parametrize("name, most", [("speed_final", 340), ("speed_rev6", 330)])
def test_the_final_visit_fits_its_device_time(name, most):
    # ~16 s install + ~160 s to a ready engine + each level ~6 s + 4 s + each bench ~3 s
    visit = VISITS[name]
    levels = sum(len(b[4]) for b in visit.benches)
    assert 16 + 160 + levels * (visit.duration_s + 4) + len(visit.benches) * 3 + 10 <= most
    assert len(visit.models) == 1


def test_the_next_visit_records_three_sets_and_compares_them(tmp_path, capsys, monkeypatch):
    """Revision 5 (the default when recorded), the revision-6 candidate and the revision-7 candidate (added later, its own date
    and commit, the first two sets untouched), all predicted before the visit; they differ where the candidates'
    terms act (large new images at c = 6-16), so the visit can tell them apart; --compare scores each."""
    import shutil

    from speed_visits import main

    from vlmctl.engines.vllm.speed import SPEED_V026_CANDIDATE, SPEED_V026_REV5, SPEED_V026_REV7_CANDIDATE

    monkeypatch.setenv("VLMCTL_CALIBRATION_DIR", str(tmp_path / "none"))
    visit = VISITS["speed_rev6"]
    doc = without_records(recorded_doc(visit.predictions_path))
    assert constants_of(doc) == SPEED_V026_REV5 and visit.candidate_constants(doc) == SPEED_V026_CANDIDATE
    rev7 = "SPEED_V026_REV7_CANDIDATE"
    assert visit.candidate_constants(doc, rev7) == SPEED_V026_REV7_CANDIDATE
    assert visit.candidate_names(doc) == ["SPEED_V026_CANDIDATE", rev7]
    assert doc["candidate"]["rows"].keys() == doc["rows"].keys() == doc["more_candidates"][rev7]["rows"].keys()
    tpot = {n: doc["candidate"]["rows"][n]["tpot_ms"] / r["speed"]["tpot_ms"] - 1 for n, r in doc["rows"].items()}
    assert tpot["7B image@1280x960 c=16"] > 0.1 and abs(tpot["7B image@800x600 c=6"]) < 0.02
    seven = {n: doc["more_candidates"][rev7]["rows"][n]["tpot_ms"] / r["speed"]["tpot_ms"] - 1
             for n, r in doc["rows"].items()}
    assert seven["7B image@1280x960 c=6"] > 0.1
    tag = visit.tag("7B", "image@1280x960")
    (tmp_path / f"bench_{tag}.json").write_text(json.dumps(_bench(visit, visit.as_candidate(doc, rev7), tag, 1.0)))
    assert main(visit, "t", ["--compare", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    first, rest = out.split("candidate (SPEED_V026_CANDIDATE): ")
    second, third = rest.split(f"candidate ({rev7}): ")
    assert first.startswith("the default when recorded: revision 5")
    assert "held out: 9 of 9 figures" in third and "held out: 9 of 9 figures" not in first
    assert main(visit, "t", ["--check", str(visit.predictions_path)]) == 0
    # --add-candidates adds what a file lacks and leaves the rest as it was, byte for byte
    older = json.loads(visit.predictions_path.read_text())
    del older["more_candidates"]
    path = tmp_path / "predictions.json"
    path.write_text(json.dumps(older, indent=1) + "\n")
    assert main(visit, "t", ["--add-candidates", str(path)]) == 0
    text, recorded = path.read_text(), visit.predictions_path.read_text()
    assert text.split('\n },\n "more_candidates"')[0] == recorded.split('\n },\n "more_candidates"')[0]
    assert without_records(json.loads(text)) == without_records(json.loads(recorded))
    shutil.copy(path, tmp_path / "again.json")
    assert main(visit, "t", ["--add-candidates", str(path)]) == 0 and path.read_text() == text


def test_fit_uses_only_the_designated_rows_and_reports_the_held_out_ones(tmp_path):
    """A made-up next visit that measured exactly the recorded predictions: the rows rebuilt from its files (plans
    as served, lengths as the bench counts them) re-predict them, so the fit keeps the constants and every error is
    near 0."""
    import shutil

    from vlmctl.plan import make_plan

    visit = VISITS["speed_next"]
    doc = recorded_doc(visit.predictions_path)
    for model, workload, *_ in visit.benches:
        tag = visit.tag(model, workload)
        (tmp_path / f"bench_{tag}.json").write_text(json.dumps(_bench(visit, doc, tag, 1.0)))
    shutil.copy(ROOT / "docs/validation/speed_fresh/plan_7B.json", tmp_path / "plan_7B.json")
    plan = make_plan(visit.models["Q3-8B"], gpus="h200:1", vllm_version="0.26.0")
    (tmp_path / "plan_Q3-8B.json").write_text(plan.model_dump_json())
    for name, prompt in (("bench_7B_640x480.json", 615), ("bench_7B_1920x1080.json", 2763),
                         ("bench_Q3-8B_1280x720.json", 952)):  # measured prompt lengths as the bench reports them
        b = json.loads((tmp_path / name).read_text())
        for level in b["levels"]:
            level["summary"]["total_input_tokens"] = 20 * prompt
        (tmp_path / name).write_text(json.dumps(b))
    fitted, table = visit.fit_and_hold_out(doc, tmp_path)
    assert set(fitted) == set(visit.fit_constants) and len(table) == 8
    assert sum(t["set"] == "fit" for t in table) == 2
    k = constants_of(doc)
    assert all(abs(fitted[n] / getattr(k, n) - 1) < 0.05 for n in visit.fit_constants), fitted
    assert all(abs(e) < 0.03 for t in table for e in t["error"].values()), table
