"""Leave-one-visit-out cross-validation of speed-model structures on the 56 measured `vlmctl bench` rows.

Groups are the visits (benchmarks/speed_fit.py): the 13 cached-media H200 rows of docs/validation.md § 8, the 6
rows of the H100 host (§ 3: the planned launch and the field report's eager one), the fresh-media visit (13), the
next visit (8), the held-out visit after revision 4 (8) and the last held-out visit after revision 5 (8). For each
fold and structure: start from the structure's committed constants, refit its fitted names (and the H100 host's
factor while H100 rows are in the fit set) on the other folds' rows only (speed_fit.fit), predict the held-out
fold's rows, count the figures within the targets (output tok/s and TPOT ±15 %, TTFT ±25 %).

A host with no row in the fit set has no factor to fit: its rows are scored with host factor 1, what vlmctl does
on a host it has no calibration for. That is the H100 fold (its API server measured 1.6 times slower than the H200
host's when fitted on all rows), so the tables also give the totals without it.

Every row was seen while the structures were designed, so this compares structures fairly (each fold is predicted
by constants that never saw it), but it is not a blind test: the blind tests are the visits scored from
predictions recorded before they ran (docs/validation.md § 11). The refits start from constants fitted on every
row, so a fold's refit may stay near them: if anything CV is optimistic, alike for every structure.

Cost: one fit on 43-50 rows at --step 0.5 (coordinate descent down to a step of 0.005, simulating every fit row
per trial) took 16-44 s for revision 5 and the revision-6 candidate on one core of a shared 2-core machine (both ×
6 folds: 384 s), 135-281 s for the revision-7 candidate (its simulation is about five times slower; all three with
--jobs 2: 1,083 s); --step 0.1 starts finer (faster, stays nearer the start), --folds/--structures run a subset.
A trial is kept when it lowers the loss by more than --min-gain of it: with 0, the fresh fold's refit of revision
5 crept media_new_ms_per_mpixel toward 0 by ever smaller gains and had not stopped after 13 minutes.

    python benchmarks/speed_cv.py --jobs 2        # every fold and structure; writes benchmarks/results/speed_cv.json
    python benchmarks/speed_cv.py --structures rev5 --folds final,held --json /tmp/cv.json
    python benchmarks/speed_cv.py --show                   # the recorded run's table, no fit
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import speed_fit  # noqa: E402
from provenance import git_commit  # noqa: E402
from speed_fit import (CANDIDATE_FITTED, FITTED, HOST_FACTOR, HOSTS, REV7_FITTED, TARGETS, all_56,  # noqa: E402
                       table)

from vlmctl.engines.vllm import speed as constants_module  # noqa: E402
from vlmctl.engines.vllm.speed import SpeedConstants  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "speed_cv.json"
#: Fold name -> the `gpu` labels of its rows (speed_fit's row sets), in the order the visits ran.
FOLDS: dict[str, tuple[str, ...]] = {
    "H200 cached": ("H200",), "H100": ("H100", "H100 field"), "fresh": ("H200 fresh",), "next": ("H200 next",),
    "held": ("H200 held",), "final": ("H200 final",)}
#: Structure name -> (the name of its constants in vlmctl.engines.vllm.speed, the names its fit may change).
#: A third candidate is one more line here.
STRUCTURES: dict[str, tuple[str, tuple[str, ...]]] = {
    "rev5": ("SPEED_V026_REV5", FITTED),
    "rev6": ("SPEED_V026_CANDIDATE", CANDIDATE_FITTED),
    "rev7": ("SPEED_V026_REV7_CANDIDATE", REV7_FITTED),
}
METRICS = tuple(TARGETS)
LABELS = {"output_tokens_per_s": "tok/s", "tpot_ms": "TPOT", "ttft_ms": "TTFT"}
#: A fit's trial is kept when it lowers the loss by more than this fraction of it (speed_fit.fit's min_gain).
MIN_GAIN = 1e-4


def fold_of(row: dict) -> str:
    """The visit a measured row belongs to."""
    return next(name for name, labels in FOLDS.items() if row["gpu"] in labels)


def row_key(row: dict) -> tuple:
    """A measured row's identity: visit label, model, workload (new media or cached), concurrency."""
    return row["gpu"], row["size"], row["workload"], row["cached"], row["concurrency"]


def structure(name: str) -> tuple[SpeedConstants, tuple[str, ...]]:
    """A structure's starting constants and fitted names."""
    attr, names = STRUCTURES[name]
    return getattr(constants_module, attr), names


def scoring_hosts(fitted_hosts: dict[str, float], fit_rows: list[dict]) -> dict[str, float]:
    """The host factors to score with: the fitted ones for hosts with rows in the fit set, 1 for any other."""
    seen = {HOSTS[r["gpu"]] for r in fit_rows}
    return {h: (v if h in seen or h == "h200-host" else 1.0) for h, v in fitted_hosts.items()}


def summarise(result: list[dict]) -> dict:
    """In-target count, figures, misses per metric and each row's errors of a speed_fit table."""
    misses = {m: [f"{t['model']} {t['workload']} c={t['concurrency']} ({t['error'][m]:+.0%})"
                  for t in result if abs(t["error"][m]) > TARGETS[m]] for m in METRICS}
    figures = len(METRICS) * len(result)
    return {"in_target": figures - sum(map(len, misses.values())), "figures": figures, "misses": misses,
            "rows": [{"gpu": t["gpu"], "model": t["model"], "workload": t["workload"],
                      "concurrency": t["concurrency"], "error": t["error"]} for t in result]}


def run_fold(fold: str, name: str, data: list[dict], step: float = 0.5, min_gain: float = MIN_GAIN,
             fit: Callable = speed_fit.fit) -> dict:
    """One fold of one structure: refit on the other folds' rows, score the held-out fold."""
    start, names = structure(name)
    held = [r for r in data if fold_of(r) == fold]
    train = [r for r in data if fold_of(r) != fold]
    t0 = time.monotonic()
    k, hosts = fit(train, start, names=names, hosts=HOST_FACTOR, step=step, min_gain=min_gain)
    seconds = time.monotonic() - t0
    scored_hosts = scoring_hosts(hosts, train)
    return {"fold": fold, "structure": name, "held_out_rows": len(held), "fit_rows": len(train),
            "fit_seconds": round(seconds, 1), "constants": dataclasses.asdict(k), "hosts": scored_hosts,
            "fitted": {n: getattr(k, n) for n in names}, **summarise(table(held, k, scored_hosts))}


def _report(r: dict) -> str:
    return (f"{r['fold']} / {r['structure']}: {r['in_target']} of {r['figures']} ({r['fit_seconds']} s fit on "
            f"{r['fit_rows']} rows)")


def _run_task(task: tuple) -> dict:
    fold, name, step, min_gain = task
    return run_fold(fold, name, all_56(), step, min_gain)


def cross_validate(structures: list[str], folds: list[str], step: float = 0.5, min_gain: float = MIN_GAIN,
                   fit: Callable = speed_fit.fit, log: Callable[[str], None] = lambda s: None,
                   jobs: int = 1) -> list[dict]:
    """Every (fold, structure) result, folds outer; ``jobs`` > 1 runs the folds in that many processes (with
    speed_fit.fit only)."""
    tasks = [(fold, name) for fold in folds for name in structures]
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor, as_completed

        done = {}
        with ProcessPoolExecutor(jobs) as pool:
            futures = {pool.submit(_run_task, (*t, step, min_gain)): t for t in reversed(tasks)}
            for f in as_completed(futures):
                done[futures[f]] = f.result()
                log(_report(done[futures[f]]))
        return [done[t] for t in tasks]
    data = all_56()
    out = []
    for fold, name in tasks:
        out.append(run_fold(fold, name, data, step, min_gain, fit))
        log(_report(out[-1]))
    return out


def rescore(result: dict, data: list[dict]) -> int:
    """A recorded fold's in-target count again, from the constants and host factors it records (no refit)."""
    k = SpeedConstants(**result["constants"])
    held = [r for r in data if fold_of(r) == result["fold"]]
    return summarise(table(held, k, result["hosts"]))["in_target"]


def markdown(results: list[dict], structures: list[str], folds: list[str]) -> str:
    """Per fold: in target / figures for each structure, and its misses per metric (tok/s · TPOT · TTFT)."""
    by = {(r["fold"], r["structure"]): r for r in results}
    head = "| held-out fold | rows | fitted on | " + " | ".join(
        f"{s} in target | {s} misses {' · '.join(LABELS[m] for m in METRICS)}" for s in structures) + " |"
    lines = [head, "|---|---|---|" + "---|---|" * len(structures)]
    for fold in folds:
        first = by[(fold, structures[0])]
        cells = []
        for s in structures:
            r = by[(fold, s)]
            cells += [f"{r['in_target']} / {r['figures']}",
                      " · ".join(str(len(r["misses"][m])) for m in METRICS)]
        lines.append(f"| {fold} | {first['held_out_rows']} | {first['fit_rows']} rows | " + " | ".join(cells) + " |")
    for label, keep in (("all folds", folds), ("without the H100 fold", [f for f in folds if f != "H100"])):
        if not keep or label != "all folds" and "H100" not in folds:
            continue
        cells = []
        for s in structures:
            part = [by[(f, s)] for f in keep]
            cells += [f"**{sum(r['in_target'] for r in part)} / {sum(r['figures'] for r in part)}**",
                      " · ".join(str(sum(len(r["misses"][m]) for r in part)) for m in METRICS)]
        rows = sum(by[(f, structures[0])]["held_out_rows"] for f in keep)
        lines.append(f"| {label} | {rows} | | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--structures", default=",".join(STRUCTURES),
                    help=f"comma-separated, of {', '.join(STRUCTURES)} (default: all)")
    ap.add_argument("--folds", default=",".join(FOLDS), help=f"comma-separated, of {', '.join(FOLDS)} (default: all)")
    ap.add_argument("--step", type=float, default=0.5, help="coordinate descent's starting step (default 0.5)")
    ap.add_argument("--min-gain", type=float, default=MIN_GAIN,
                    help=f"a fit keeps a trial that lowers the loss by more than this fraction (default {MIN_GAIN:g})")
    ap.add_argument("--json", help=f"write the results here (default: {RESULTS.relative_to(ROOT)} when every fold "
                                   "and structure runs)")
    ap.add_argument("--jobs", type=int, default=1, help="fits run in this many processes (default 1)")
    ap.add_argument("--show", nargs="?", const=str(RESULTS), metavar="JSON",
                    help="print the table of a recorded run (default: the committed one) and stop; no fit")
    args = ap.parse_args(argv)
    if args.show:
        try:
            doc = json.loads(Path(args.show).read_text())
        except (OSError, ValueError) as e:
            ap.error(f"--show {args.show}: not a readable JSON file ({e}); write one with: python "
                     "benchmarks/speed_cv.py --json FILE")
        print(markdown(doc["results"], list(doc["structures"]), list(doc["folds"])))
        return 0
    structures = [s.strip() for s in args.structures.split(",") if s.strip()]
    folds = [f.strip() for f in args.folds.split(",") if f.strip()]
    for value, known, what in ((structures, STRUCTURES, "--structures"), (folds, FOLDS, "--folds")):
        bad = [v for v in value if v not in known]
        if bad or not value:
            ap.error(f"{what} {','.join(bad) or repr('')}: each must be one of {', '.join(known)}; "
                     f"e.g. {what} {','.join(known)}")
    if not 0.005 < args.step <= 2:
        ap.error(f"--step {args.step}: must be above 0.005 (where the descent stops) and at most 2; e.g. --step 0.5")
    t0 = time.monotonic()
    if not 0 <= args.min_gain < 0.1:
        ap.error(f"--min-gain {args.min_gain}: must be at least 0 and under 0.1; e.g. --min-gain {MIN_GAIN:g}")
    if not 1 <= args.jobs <= 64:
        ap.error(f"--jobs {args.jobs}: must be 1 to 64; e.g. --jobs 2")
    results = cross_validate(structures, folds, args.step, args.min_gain, log=lambda s: print(s, flush=True),
                             jobs=args.jobs)
    seconds = round(time.monotonic() - t0, 1)
    print()
    print(markdown(results, structures, folds))
    print(f"\n{len(results)} fits, {seconds} s in all (step {args.step})")
    full = set(structures) == set(STRUCTURES) and set(folds) == set(FOLDS)
    path = Path(args.json) if args.json else (RESULTS if full else None)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({
            "what": "leave-one-visit-out cross-validation of speed-model structures (benchmarks/speed_cv.py)",
            "date": dt.date.today().isoformat(), "commit": git_commit(), "step": args.step, "min_gain": args.min_gain,
            "jobs": args.jobs, "seconds": seconds,
            "targets": TARGETS, "structures": {s: {"constants": STRUCTURES[s][0], "fitted": list(STRUCTURES[s][1])}
                                               for s in structures},
            "folds": {f: {"labels": list(FOLDS[f]), "rows": sum(1 for r in all_56() if fold_of(r) == f)}
                      for f in folds},
            "results": results}, indent=1) + "\n")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
