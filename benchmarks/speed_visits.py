"""The speed model's held-out H200 visits: what each one measures, and the commands they share.

A visit is declared once (``Visit``: its engines, its benches, the rows designated fit before it ran, the constants
fitted on them, where its predictions are recorded) in its own script — `speed_fresh.py`, `speed_next.py`,
`speed_held.py`, `speed_final.py`, `speed_rev6.py` — and every visit has the same commands:

    python benchmarks/speed_VISIT.py --out PREDICTIONS      # record the predictions, before the visit
    python benchmarks/speed_VISIT.py --check PREDICTIONS    # the model still predicts what was recorded?
    python benchmarks/speed_VISIT.py --compare RUN_DIR      # blind: the visit's runs/ against the recorded file
    python benchmarks/speed_VISIT.py --host RUN_DIR         # with the host factor the fit row gave (host visits)
    python benchmarks/speed_VISIT.py --fit RUN_DIR          # fit the designated rows, then the held-out table once
    python benchmarks/speed_VISIT.py --bench-args TAG       # the visit's `vlmctl bench` flags for one bench
    python benchmarks/speed_VISIT.py --benches MODEL        # the visit's benches of one engine, in order
    python benchmarks/speed_VISIT.py --fit-bench            # the bench the host factor is calibrated on
    python benchmarks/speed_VISIT.py --add-candidates PREDICTIONS  # record the later candidates, before the visit

--check predicts again with the constants recorded in the file: a change to the model's arithmetic or to the plans
shows up as a difference (``recorded``, the date and commit, is left out). A candidate declared after the file was
recorded (``Visit.more_candidates``) is added to it by --add-candidates with its own date and commit, leaving every
entry already in the file as it was.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from provenance import git_commit, recorded_doc, same_as_recorded, write_recorded

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

GPU = "h200:1"
VLLM = "0.26.0"
#: Plan fields the engine is started with (the compare says when the visit served something else).
SERVED = ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size", "max_model_len",
          "gpu_memory_utilization", "max_num_seqs", "max_num_batched_tokens", "enforce_eager", "model_runner",
          "limit_mm_per_prompt", "mm_processor_kwargs", "kv_cache_tokens", "dtype")
TARGETS = {"output_tokens_per_s": 0.15, "tpot_ms": 0.15, "ttft_ms": 0.25}
HOST_ONLY = ("host_factor",)


def key(model: str, workload: str, concurrency: int) -> str:
    return f"{model} {workload} c={concurrency}"


def constants_record(k) -> dict:
    """The constants as a predictions file records them: every field but ``source``; a term a later revision added
    (default 0, or the "waves" queueing of revisions 1-4) only when it is set, so files recorded before it still
    check."""
    fields = {f.name: f.default for f in dataclasses.fields(k)}
    return {f: v for f, v in dataclasses.asdict(k).items()
            if f != "source" and not (fields[f] in (0.0, "waves") and v == fields[f])}


def without_records(doc: dict) -> dict:
    """A predictions file's content without its provenance: ``recorded``, and each later candidate's own."""
    out = json.loads(json.dumps(doc))
    out.pop("recorded", None)
    for entry in out.get("more_candidates", {}).values():
        entry.pop("recorded", None)
    return out


def measured_levels(bench: dict, concurrency: int) -> list[dict]:
    """The summaries of a bench file's levels at ``concurrency`` that completed requests and timed a first token."""
    return [level["summary"] for level in bench["levels"] if level.get("concurrency") == concurrency
            and level["summary"]["completed"] and level["summary"]["ttft_s"]]


def constants_of(doc: dict):
    """The speed constants a recorded file was predicted with."""
    from vlmctl.engines.vllm.speed import SpeedConstants

    return SpeedConstants(source=doc["constants_source"], **doc["constants"])


@dataclasses.dataclass(frozen=True)
class Visit:
    """One visit, declared before it ran.

    ``benches``: one `vlmctl bench` each, in the visit's order: (model, workload, text tokens, output tokens,
    concurrency levels). ``fit``: the (model, workload, concurrency) rows designated fit before the measurement;
    ``fit_constants``: what is fitted on them (``("host_factor",)``: only the product's own `vlmctl calibrate
    --from-bench`, into runs/cal_<model>.json). ``timed_levels``: each row predicted as a ``duration_s`` bench level
    (the simulation's clients stop sending when it ends). ``bench_by_kind``: bench files named by media kind
    (bench_<model>_image.json), not by size, with the lengths recorded once for the whole file (the fresh-media
    visit's layout)."""

    name: str
    models: dict[str, str]
    benches: tuple[tuple[str, str, int, int, tuple[int, ...]], ...]
    fit: frozenset[tuple[str, str, int]]
    fit_constants: tuple[str, ...]
    duration_s: int
    note: str
    timed_levels: bool = False
    bench_by_kind: bool = False
    candidate: str = ""
    """A second set of constants (its name in vlmctl.engines.vllm.speed) whose predictions the file records too,
    in its ``candidate`` entry, and which --compare, --host and --check score beside the committed ones."""
    more_candidates: tuple[str, ...] = ()
    """Candidates declared after the file was first recorded, each predicted before the visit measured anything and
    kept in the file's ``more_candidates`` entry under its name (with its own ``recorded`` date and commit); scored
    like ``candidate``."""

    @property
    def predictions_path(self) -> Path:
        return ROOT / "docs/validation" / self.name / "predictions.json"

    @property
    def rows(self) -> list[tuple[str, str, int, int, int]]:
        """(model, workload, text tokens, output tokens, concurrency) per row, in the visit's order."""
        return [(m, w, p, o, c) for m, w, p, o, levels in self.benches for c in levels]

    @property
    def host_visit(self) -> bool:
        return self.fit_constants == HOST_ONLY

    def tag(self, model: str, workload: str) -> str:
        """The visit's name for one bench: <model>_<WxH> or <model>_text (<model>_<kind> for the fresh-media visit);
        its files are bench_<tag>.json, and plan_<model>.json for its engine."""
        if self.bench_by_kind:
            return f"{model}_{workload.split('@')[0]}"
        return f"{model}_{workload.split('@')[1] if '@' in workload else workload}"

    def bench_args(self, name: str) -> str:
        """The `vlmctl bench` flags of one bench (the visit script asks for them, so the two cannot drift)."""
        for model, workload, prompt, output, levels in self.benches:
            if self.tag(model, workload) == name:
                media = " --distinct-media" if workload != "text" else ""
                warmup = 1 if workload.startswith("video") else 2
                return (f"--mix {workload} --concurrency {','.join(map(str, levels))} --warmup {warmup}{media} "
                        f"--duration {self.duration_s} --max-tokens {output} --prompt-tokens {prompt} --ignore-eos")
        raise SystemExit(f"no bench '{name}': one of {', '.join(self.tag(m, w) for m, w, *_ in self.benches)}")

    def benches_of(self, model: str) -> list[str]:
        """The bench tags of one engine, in the visit's order."""
        if model not in self.models:
            raise SystemExit(f"no model '{model}' in this visit: one of {', '.join(self.models)}")
        return [self.tag(m, w) for m, w, *_ in self.benches if m == model]

    def fit_bench(self) -> str:
        """The bench of the host visit's fit row (its only level, so the host factor sees only that row)."""
        model, workload, _ = next(iter(self.fit))
        return self.tag(model, workload)

    def plan(self, model: str, workload: str, prompt: int, output: int, concurrency: int):
        from vlmctl.plan import make_plan

        result = make_plan(self.models[model], gpus=GPU, vllm_version=VLLM, concurrency=concurrency,
                           workload=workload, prompt_tokens=prompt, output_tokens=output)
        if not result.ok:
            raise SystemExit(f"{model} on {GPU}: no plan")
        return result.plan

    def speed_of(self, plan, workload: str, prompt: int, output: int, concurrency: int, k) -> dict:
        """The speed model for one row of the plan the visit serves (as ``plan.speed`` rounds it)."""
        from vlmctl.models.loader import load_model_spec
        from vlmctl.plan import speed as spd

        spec = load_model_spec(plan.model)
        work = spd.parse_workload(workload, prompt, output)
        timed = {"duration_s": self.duration_s} if self.timed_levels else {}
        sp = spd.predict(spec, spd.replica_from_plan(spec, plan), plan.data_parallel_size, work, concurrency, k,
                         **timed)
        return {"ttft_ms": round(sp.ttft_ms, 1), "tpot_ms": round(sp.tpot_ms, 2),
                "output_tokens_per_s": round(sp.output_tokens_per_s, 1),
                "decode_step_ms": round(sp.decode_step_ms, 2), "bound": sp.bound, "prompt_tokens": sp.prompt_tokens,
                "media_tokens": sp.media_tokens}

    def candidate_constants(self, doc: dict | None = None, name: str | None = None):
        """A candidate's constants (the first one unless ``name``): as ``doc`` recorded them, else the named ones of
        vlmctl.engines.vllm.speed."""
        from vlmctl.engines.vllm import speed

        name = name or self.candidate
        if doc is not None:
            entry = doc.get("candidate") if name == self.candidate else doc.get("more_candidates", {}).get(name)
            if entry is not None:
                return constants_of(entry)
        return getattr(speed, name)

    def candidate_names(self, doc: dict) -> list[str]:
        """The candidates ``doc`` records, in order."""
        return ([doc["candidate"]["name"]] if "candidate" in doc else []) + list(doc.get("more_candidates", {}))

    def as_candidate(self, doc: dict, name: str | None = None) -> dict:
        """``doc`` with a candidate's constants and predictions (the first one unless ``name``) in place of the
        committed ones (for --compare)."""
        out = json.loads(json.dumps(doc))
        first, more = out.pop("candidate"), out.pop("more_candidates", {})
        cand = first if name in (None, first["name"]) else more[name]
        out["constants"], out["constants_source"] = cand["constants"], cand["constants_source"]
        for key_, row in out["rows"].items():
            row["speed"] = cand["rows"][key_]
        return out

    def candidate_predictions(self, name: str, kc) -> dict:
        """One candidate's entry: its constants and its prediction per row."""
        entry = {"name": name, "constants": constants_record(kc), "constants_source": kc.source, "rows": {}}
        for model, workload, prompt, output, c in self.rows:
            plan = self.plan(model, workload, prompt, output, c)
            entry["rows"][key(model, workload, c)] = self.speed_of(plan, workload, prompt, output, c, kc)
        return entry

    def predictions(self, k=None, candidate=None, more: dict | None = None) -> dict:
        """Everything but ``recorded``: the constants used (the committed ones unless ``k``) and one entry per row;
        with a candidate, its constants (``candidate``, else the named ones) and its predictions per row too; so
        for each later candidate (its constants from ``more`` by name, else the named ones)."""
        from vlmctl.engines.vllm.speed import speed_constants

        k = k or speed_constants(VLLM)
        rows: dict = {}
        for model, workload, prompt, output, c in self.rows:
            plan = self.plan(model, workload, prompt, output, c)
            data = plan.model_dump(mode="json")
            lengths = {} if self.bench_by_kind else {"prompt_tokens": prompt, "output_tokens": output}
            rows[key(model, workload, c)] = {
                "model": model, "workload": workload, "concurrency": c, **lengths,
                "set": "fit" if (model, workload, c) in self.fit else "held out",
                "bench": f"bench_{self.tag(model, workload)}.json",
                "served": {f: data[f] for f in SERVED}, "speed": self.speed_of(plan, workload, prompt, output, c, k)}
        head = {"gpu": GPU, "vllm_version": VLLM}
        if self.bench_by_kind:
            head |= {"prompt_tokens": self.benches[0][2], "output_tokens": self.benches[0][3]}
        doc = {**head, "media": "distinct (no prefix-cache hits)", "fit_constants": list(self.fit_constants),
               "constants": constants_record(k), "constants_source": k.source, "rows": rows}
        if self.candidate:
            doc["candidate"] = self.candidate_predictions(self.candidate, candidate or self.candidate_constants())
        if self.more_candidates:
            doc["more_candidates"] = {name: self.candidate_predictions(
                name, (more or {}).get(name) or self.candidate_constants(name=name)) for name in self.more_candidates}
        return doc

    def add_candidates(self, path: Path) -> list[str]:
        """Record in ``path`` the later candidates it lacks, each with today's date and the commit; every entry
        already there stays as it was. Returns the names added."""
        import datetime as dt

        doc = json.loads(path.read_text())
        more = doc.setdefault("more_candidates", {})
        added = [name for name in self.more_candidates if name not in more]
        for name in added:
            entry = self.candidate_predictions(name, self.candidate_constants(name=name))
            more[name] = {"recorded": {"date": dt.date.today().isoformat(), "commit": git_commit(),
                                       "note": f"{name} added before the visit measured any of these rows"}, **entry}
        path.write_text(json.dumps(doc, indent=1) + "\n")
        return added

    def lengths(self, doc: dict, row: dict) -> tuple[int, int]:
        return row.get("prompt_tokens", doc.get("prompt_tokens")), row.get("output_tokens", doc.get("output_tokens"))

    def measured(self, run_dir: Path) -> dict[str, dict]:
        """Median TTFT/TPOT (ms) and output tok/s per row key from the visit's bench files."""
        out: dict[str, dict] = {}
        for model, workload, _, _, c in self.rows:
            path = run_dir / f"bench_{self.tag(model, workload)}.json"
            if not path.exists():
                continue
            bench = json.loads(path.read_text())
            for s in measured_levels(bench, c):
                out[key(model, workload, c)] = {
                    "output_tokens_per_s": s["output_throughput"], "ttft_ms": s["ttft_s"]["p50"] * 1e3,
                    "tpot_ms": s["tpot_s"]["p50"] * 1e3 if s["tpot_s"] else None,
                    "media_reuse": bench["meta"].get("media_reuse"),
                    "output_tokens": round(s["total_output_tokens"] / s["completed"])
                    if "total_output_tokens" in s else None}
        return out

    def host_factor(self, run_dir: Path) -> float:
        """The host factor `vlmctl calibrate --from-bench` wrote on the visit (runs/cal_<model>.json)."""
        model = next(iter(self.fit))[0]
        path = run_dir / f"cal_{model}.json"
        if not path.exists():
            raise SystemExit(f"{path}: no calibration file; on the CPU: vlmctl calibrate --from-bench "
                             f"{run_dir}/bench_{self.fit_bench()}.json --plan {run_dir}/plan_{model}.json -o {path}")
        return float(json.loads(path.read_text())["speed"]["host_factor"])

    def with_host(self, doc: dict, factor: float) -> dict:
        """The recorded predictions again with the recorded constants and ``factor`` (nothing else fitted)."""
        k = dataclasses.replace(constants_of(doc), host_factor=factor)
        out = json.loads(json.dumps(doc))
        for row in out["rows"].values():
            prompt, output = self.lengths(doc, row)
            plan = self.plan(row["model"], row["workload"], prompt, output, row["concurrency"])
            row["speed"] = self.speed_of(plan, row["workload"], prompt, output, row["concurrency"], k)
        return out

    def compare(self, doc: dict, run_dir: Path) -> tuple[str, dict]:
        """The visit's measurements next to ``doc``'s predictions: a markdown table and a summary per set."""
        got = self.measured(run_dir)
        notes = []
        tokens = "" if self.bench_by_kind else " text / output tokens |"
        lines = [f"| model | workload |{tokens} c | set | out tok/s meas / pred | TTFT ms meas / pred | "
                 "TPOT ms meas / pred |", "|---|---|---|---|---|---|" + "---|" * (not self.bench_by_kind) + "---|"]
        for model in self.models:
            plan_file = run_dir / f"plan_{model}.json"
            if not plan_file.exists():
                continue
            served = json.loads(plan_file.read_text()).get("plan", {})
            row = next(r for r in doc["rows"].values() if r["model"] == model)
            moved = {f: (served.get(f), v) for f, v in row["served"].items() if served.get(f) != v}
            if moved:
                notes.append(f"{model}: served with other settings than predicted for (served, predicted): {moved}")
        summary: dict = {"fit": [0, 0], "held out": [0, 0]}
        for name, row in doc["rows"].items():
            prompt, output = self.lengths(doc, row)
            lengths = "" if self.bench_by_kind else f" {prompt} / {output} |"
            head = f"| {row['model']} | {row['workload']} |{lengths} {row['concurrency']} | {row['set']} |"
            m = got.get(name)
            if m is None:
                lines.append(f"{head} not measured | | |")
                continue
            if m["media_reuse"] not in ("distinct", None) and row["workload"] != "text":
                notes.append(f"{name}: the bench reused media ({m['media_reuse']}), not what was predicted")
            if m["output_tokens"] is not None and m["output_tokens"] != output:
                notes.append(f"{name}: {m['output_tokens']} output tokens per request, predicted for {output}")
            cells = []
            for metric in ("output_tokens_per_s", "ttft_ms", "tpot_ms"):
                meas, pred = m[metric], row["speed"][metric]
                if meas is None:
                    cells.append("—")
                    continue
                err = pred / meas - 1
                inside = abs(err) <= TARGETS[metric]
                summary[row["set"]][0] += inside
                summary[row["set"]][1] += 1
                cells.append(f"{meas:,.1f} / {pred:,.1f} ({err:+.0%}){'' if inside else ' ✗'}")
            lines.append(f"{head} " + " | ".join(cells) + " |")
        tail = [f"{s}: {a} of {b} figures within the targets (output tok/s and TPOT ±15 %, TTFT ±25 %)"
                for s, (a, b) in summary.items() if b]
        return "\n".join([*notes, *lines, "", *tail]), summary

    def fit_rows(self, doc: dict, run_dir: Path, models: dict[str, str] | None = None) -> list[dict]:
        """The visit's rows in benchmarks/speed_fit.py's form (plans as served, measured lengths), fit as
        designated; ``models`` names the engines' checkpoints where the visit's own names are not enough."""
        from vlmctl.plan import PlanResult

        out = []
        models = models or self.models
        for row in doc["rows"].values():
            path = run_dir / row["bench"]
            plan_file = run_dir / f"plan_{row['model']}.json"
            if not path.exists() or not plan_file.exists():
                continue
            plan = PlanResult.model_validate_json(plan_file.read_text()).plan
            plan = plan.model_copy(update={"model": models.get(row["model"], self.models.get(row["model"])),
                                           "model_path": None})
            for s in measured_levels(json.loads(path.read_text()), row["concurrency"]):
                out.append({"gpu": "H200 fresh", "size": row["model"], "workload": row["workload"],
                            "concurrency": row["concurrency"], "plan": plan, "cached": False,
                            "fit": row["set"] == "fit", "prompt_tokens": s["total_input_tokens"] / s["completed"],
                            "output_tokens": round(s["total_output_tokens"] / s["completed"]),
                            "requests": s["completed"],
                            "measured": {"output_tokens_per_s": s["output_throughput"],
                                         "ttft_ms": s["ttft_s"]["p50"] * 1e3, "tpot_ms": s["tpot_s"]["p50"] * 1e3}})
        return out

    def fit_and_hold_out(self, doc: dict, run_dir: Path) -> tuple[dict, list[dict]]:
        """The fit constants fitted on the FIT rows (all else as recorded with the predictions), and the table of
        every row with them."""
        import speed_fit

        rows = self.fit_rows(doc, run_dir)
        if not any(r["fit"] for r in rows):
            raise SystemExit(f"{run_dir}: none of the designated fit rows was measured")
        k, _ = speed_fit.fit(rows, constants_of(doc), self.fit_constants, fit_hosts=False)
        return {n: round(getattr(k, n), 4) for n in self.fit_constants}, speed_fit.table(rows, k)


def main(visit: Visit, description: str, argv: list[str] | None = None) -> int:
    """The visit's command line (the module docstring lists the commands)."""
    ap = argparse.ArgumentParser(description=description)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--out", type=Path, help="write the predictions here (with today's date and the commit)")
    mode.add_argument("--check", type=Path, help="regenerate and compare with this file (exit 1 on a difference)")
    mode.add_argument("--compare", type=Path, metavar="RUN_DIR", help="the visit's runs/ folder, blind")
    if visit.host_visit:
        mode.add_argument("--host", type=Path, metavar="RUN_DIR", help="the visit's runs/ with its fitted host factor")
        mode.add_argument("--fit-bench", action="store_true", help="print the bench the host factor is fitted on")
    else:
        mode.add_argument("--fit", type=Path, metavar="RUN_DIR", help="fit the FIT rows, then the held-out table once")
    mode.add_argument("--bench-args", metavar="BENCH", help="print the `vlmctl bench` flags of one bench")
    mode.add_argument("--benches", metavar="MODEL", help="print the benches of one engine, in the visit's order")
    if visit.more_candidates:
        mode.add_argument("--add-candidates", type=Path, metavar="PREDICTIONS",
                          help="record the later candidates this file lacks (the rest stays as it is)")
    ap.add_argument("--predictions", type=Path, default=visit.predictions_path)
    args = ap.parse_args(argv)
    if args.bench_args:
        print(visit.bench_args(args.bench_args))
        return 0
    if args.benches:
        print(" ".join(visit.benches_of(args.benches)))
        return 0
    if getattr(args, "fit_bench", False):
        print(visit.fit_bench())
        return 0
    os.environ["VLMCTL_CALIBRATION_DIR"] = str(ROOT / ".no-user-calibration")  # the profile's constants only
    if getattr(args, "add_candidates", None):
        added = visit.add_candidates(args.add_candidates)
        print(f"{args.add_candidates}: added {', '.join(added) or 'nothing (every candidate is recorded)'}")
        return 0
    scoring = args.compare or getattr(args, "host", None)
    docs = [("", without_records(recorded_doc(args.predictions)))] if scoring else []
    if docs and "candidate" in docs[0][1]:
        doc = docs[0][1]
        docs = [("the default when recorded: ", doc),
                *((f"candidate ({name}): ", visit.as_candidate(doc, name)) for name in visit.candidate_names(doc))]
    if scoring:
        factor = None if args.compare else visit.host_factor(scoring)
        if factor is not None:
            print(f"host factor {factor:g} (vlmctl calibrate --from-bench on the fit row); nothing else fitted")
        for title, doc in docs:
            print(f"{title}{doc['constants_source'].split(',')[0]}\n" if title else "", end="")
            scored = doc if factor is None else visit.with_host(doc, factor)
            print(visit.compare(scored, scoring)[0] + ("\n" if title else ""))
        return 0
    if getattr(args, "fit", None):
        fitted, table = visit.fit_and_hold_out(recorded_doc(args.predictions), args.fit)
        print(fitted)
        for t in table:
            m, p, e = t["measured"], t["predicted"], t["error"]
            print(f"| {t['model']} | {t['workload']} | {t['concurrency']} | {t['set']} | " + " | ".join(
                f"{m[x]:,.1f} / {p[x]:,.1f} ({e[x]:+.0%})" for x in ("output_tokens_per_s", "ttft_ms", "tpot_ms")) + " |")
        from speed_fit import score

        held = [t for t in table if t["set"] == "held out"]
        print(f"held out: {score(held)} of {3 * len(held)} figures within the targets")
        return 0
    if args.check:
        recorded = without_records(recorded_doc(args.check))
        first = visit.candidate_constants(recorded) if visit.candidate else None
        again = visit.predictions(constants_of(recorded), first,
                                  {n: visit.candidate_constants(recorded, n) for n in visit.more_candidates})
        if not same_as_recorded(recorded, again):
            print(f"{args.check}: the planner now predicts something else than what was recorded", file=sys.stderr)
            return 1
        print(f"{args.check}: unchanged")
        return 0
    write_recorded(args.out, visit.predictions(), visit.note)
    print(f"wrote {args.out}")
    return 0
