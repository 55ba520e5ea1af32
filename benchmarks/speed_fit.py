"""The speed model against every measured `vlmctl bench` run: predicted next to measured, fitted rows and held out.

The first 48 measured rows are the fit set of revision 5 (earlier held-out reports used every one of them; its
held-out test was docs/validation/speed_final/, whose 8 rows complete the 56 that revision 6, the default, is fitted
on): cached-media rows, the H200 speed visit
(docs/validation/speed/results.json: 3B/7B/32B image at concurrency 1/8/32, 7B text and video) and the H100 runs of
docs/validation.md § 3 (7B planned and the field report's eager launch, 1/8/32) — those benches reused four images
(two videos) per size, so after the first requests the image sits in vLLM's prefix cache: they are predicted with
the media cached —, the fresh-media rows (docs/validation/speed_fresh/: every image or video new) and the next
visit's rows (docs/validation/speed_next/: new 640x480 and 1920x1080 images on 7B, 1280x720 on Qwen3-VL-8B) and
the held-out visit after revision 4 (docs/validation/speed_held/: 3B at 1024x768 and 800x600, Qwen3-VL-8B at 640x360
and 1600x1200). Each row is simulated with as many requests as its level completed.
Median TTFT and TPOT, output tok/s over the level.

    python benchmarks/speed_fit.py              # revision 5 on its 48 rows
    python benchmarks/speed_fit.py --fit        # refit revision 5 on its 48 rows (and the H100 host's factor)
    python benchmarks/speed_fit.py --candidate  # all 56 rows (the last held-out visit's too): revision 5 against
                                                # revision 6, the default (--fit: refit revision 6 on them)
    python benchmarks/speed_fit.py --rev7       # all 56 rows: revision 5, the revision-6 candidate, then the
                                                # revision-7 candidate (--fit: refit it on them, host_spread kept)
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path

from vlmctl.engines.vllm.speed import SPEED_V026_CANDIDATE, SPEED_V026_REV5, SPEED_V026_REV7_CANDIDATE
from vlmctl.models.loader import load_model_spec
from vlmctl.plan import PlanResult, make_plan
from vlmctl.plan import speed as spd

ROOT = Path(__file__).resolve().parents[1]
H200 = ROOT / "docs/validation/speed"
H100 = ROOT / "docs/validation/serve"
FRESH = ROOT / "docs/validation/speed_fresh"
NEXT = ROOT / "docs/validation/speed_next"
HELD = ROOT / "docs/validation/speed_held"
FINAL = ROOT / "docs/validation/speed_final"
MODELS = {"3B": "Qwen/Qwen2.5-VL-3B-Instruct", "7B": "Qwen/Qwen2.5-VL-7B-Instruct",
          "32B": "Qwen/Qwen2.5-VL-32B-Instruct", "Q3-8B": "Qwen/Qwen3-VL-8B-Instruct"}
#: The constants fitted on the 48 rows (link latencies and Ethernet keep their reference values: one GPU per run;
#: gap_ms is the bench client's measured gap, not fitted).
FITTED = ("bandwidth_fraction", "prefill_mfu", "step_ms", "layer_us", "seq_us", "request_ms", "api_ms",
          "media_ms_per_mpixel", "eager_layer_ms", "vision_mfu", "media_new_ms_per_mpixel", "media_item_ms",
          "media_new_item_ms", "media_new_latency_ms", "stream_us", "encoder_call_ms")
#: The API server's host of each row against the H200 host's (the constants' own): fitted with them.
HOSTS = {"H200": "h200-host", "H200 fresh": "h200-host", "H200 next": "h200-host", "H200 held": "h200-host",
         "H200 final": "h200-host", "H100": "h100-host", "H100 field": "h100-host"}
HOST_FACTOR = {"h200-host": 1.0, "h100-host": 1.63}
#: The revision-6 candidate's own terms, fitted with FITTED on all 56 rows.
CANDIDATE_FITTED = (*FITTED, "media_item_latency_ms", "encoder_budget")
#: The revision-7 candidate's fitted terms, on all 56 rows: the revision-6 candidate's; its own term, host_spread,
#: is measured on the concurrency-1 levels' requests (vlmctl.engines.vllm.speed SPEED_V026_REV7_CANDIDATE), not fitted.
REV7_FITTED = CANDIDATE_FITTED
#: Physical bounds: fractions of a datasheet figure stay fractions.
BOUNDS = {"bandwidth_fraction": (0.3, 1.0), "prefill_mfu": (0.2, 0.8), "vision_mfu": (0.2, 0.8),
          "encoder_budget": (0.1, 1.0)}
TARGETS = {"output_tokens_per_s": 0.15, "tpot_ms": 0.15, "ttft_ms": 0.25}


def _label(mix: list[str]) -> str:
    return mix[0].split("=")[0]


def rows() -> list[dict]:
    """Every measured row with cached media: where, model, workload, concurrency, the plan it ran, the measured
    medians; all of them are the fit set of the committed constants."""
    out = []
    data = json.loads((H200 / "results.json").read_text())
    plans = {size: PlanResult.model_validate_json((H200 / f"plan_{size}.json").read_text()).plan
             for size in ("3B", "7B", "32B")}
    for r in data["rows"]:
        out.append({"gpu": "H200", "size": r["size"], "workload": _label(r["mix"]), "concurrency": r["concurrency"],
                    "plan": plans[r["size"]], "prompt_tokens": r["prompt_tokens_per_request"],
                    "output_tokens": round(r["output_tokens_per_request"]), "cached": True,
                    "requests": r["completed"],
                    "measured": {"output_tokens_per_s": r["output_throughput"], "ttft_ms": r["ttft_s"]["p50"] * 1e3,
                                 "tpot_ms": r["tpot_s"]["p50"] * 1e3}})
    field = make_plan(MODELS["7B"], gpus="h100-80gb:1", vllm_version="0.26.0", enforce_eager=True,
                      gpu_memory_utilization=0.5, max_num_seqs=2, max_model_len=4096, dtype="float16").plan
    for name, path, plan in (("H100", "bench_plan_u0.70.json", None), ("H100 field", "bench_field.json", field)):
        bench = json.loads((H100 / path).read_text())
        if plan is None:
            plan = PlanResult.model_validate_json((H100 / "plan7b.json").read_text()).plan
        for level in bench["levels"]:
            s = level["summary"]
            out.append({"gpu": name, "size": "7B", "workload": _label(bench["meta"]["mix"]),
                        "concurrency": level["concurrency"], "plan": plan, "cached": True,
                        "prompt_tokens": s["total_input_tokens"] / s["completed"],
                        "output_tokens": round(s["total_output_tokens"] / s["completed"]),
                        "requests": s["completed"],
                        "measured": {"output_tokens_per_s": s["output_throughput"],
                                     "ttft_ms": s["ttft_s"]["p50"] * 1e3, "tpot_ms": s["tpot_s"]["p50"] * 1e3}})
    for r in out:
        r["fit"] = True
    return out


def fresh_rows() -> list[dict]:
    """The fresh-media visit's rows (every image or video new): ``designated`` says fit or held out as set in its
    predictions file before it was measured; since the revision they are all fit rows (``fit`` True)."""
    if not (FRESH / "results.json").exists():
        return []
    designated = json.loads((FRESH / "predictions.json").read_text())["rows"]
    data = json.loads((FRESH / "results.json").read_text())
    plans = {size: PlanResult.model_validate_json((FRESH / f"plan_{size}.json").read_text()).plan
             for size in MODELS if (FRESH / f"plan_{size}.json").exists()}
    out = []
    for r in data["rows"]:
        workload = _label(r["mix"])
        name = f"{r['size']} {workload} c={r['concurrency']}"
        if name not in designated or not r["completed"]:
            continue
        out.append({"gpu": "H200 fresh", "size": r["size"], "workload": workload, "concurrency": r["concurrency"],
                    "plan": plans[r["size"]], "prompt_tokens": r["prompt_tokens_per_request"],
                    "output_tokens": round(r["output_tokens_per_request"]), "requests": r["completed"],
                    "cached": False, "fit": True, "designated": designated[name]["set"],
                    "measured": {"output_tokens_per_s": r["output_throughput"], "ttft_ms": r["ttft_s"]["p50"] * 1e3,
                                 "tpot_ms": r["tpot_s"]["p50"] * 1e3}})
        if r.get("media_reuse", "distinct") != "distinct" and workload != "text":
            raise SystemExit(f"{name}: the bench reused media ({r['media_reuse']}); the fresh rows need new media")
    return out


def _visit_rows(visit, folder: Path, gpu: str, models: dict[str, str] | None = None) -> list[dict]:
    """A recorded visit's rows (benchmarks/speed_visits.py) as fit rows, each with the set it was designated before it
    was measured (``designated``); none when the visit's predictions or benches are not in ``folder``."""
    from speed_visits import key

    if not (folder / "predictions.json").exists() or not any(folder.glob("bench_*.json")):
        return []
    doc = json.loads((folder / "predictions.json").read_text())
    return [r | {"gpu": gpu, "designated": doc["rows"][key(r["size"], r["workload"], r["concurrency"])]["set"],
                 "fit": True}
            for r in visit.fit_rows(doc, folder, models)]


def next_rows() -> list[dict]:
    """The next visit's rows (every image new; Qwen2.5-VL-7B and Qwen3-VL-8B): ``designated`` says fit or held out
    as set in its predictions file before it was measured; since revision 4 they are all fit rows (``fit`` True)."""
    from speed_next import VISIT

    return _visit_rows(VISIT, NEXT, "H200 next")


def held_rows() -> list[dict]:
    """The held-out visit after revision 4 (every image new; Qwen2.5-VL-3B and Qwen3-VL-8B): ``designated`` says
    fit or held out as set in its predictions file before it was measured; since revision 5 all are fit rows."""
    from speed_held import VISIT

    return _visit_rows(VISIT, HELD, "H200 held", MODELS)


def final_rows() -> list[dict]:
    """The last held-out visit after revision 5 (every image new; Qwen2.5-VL-7B): ``designated`` says fit or held
    out as set in its predictions file before it was measured; the revision-6 candidate uses them all as fit rows."""
    from speed_final import VISIT

    return _visit_rows(VISIT, FINAL, "H200 final", MODELS)


def all_measured() -> list[dict]:
    """Revision 5's fit set: cached media, the fresh-media visit, the next visit and the held-out visit (48 rows)."""
    return rows() + fresh_rows() + next_rows() + held_rows()


def all_56() -> list[dict]:
    """Every measured row, the revision-6 candidate's fit set: revision 5's 48 and the last held-out visit's 8."""
    return all_measured() + final_rows()


def constants_for(row: dict, k, hosts: dict[str, float] | None = None):
    """``k`` with the row's API-server host factor."""
    factor = (hosts or HOST_FACTOR)[HOSTS[row["gpu"]]]
    return k if factor == k.host_factor else dataclasses.replace(k, host_factor=factor)


def predict(row: dict, k, hosts: dict[str, float] | None = None) -> spd.Speed:
    """The model's prediction for one measured row (media cached or new, as the bench sent them)."""
    if "_replica" not in row:
        spec = load_model_spec(MODELS[row["size"]])
        work = spd.parse_workload(row["workload"])
        media = spd.media_tokens(spec, work, row["plan"].media_limits.max_pixels)
        text = max(1, round(row["prompt_tokens"]) - media - spd.template_tokens(spec))
        row["_work"] = dataclasses.replace(work, prompt_tokens=text, output_tokens=row["output_tokens"],
                                           repeat=media > 0 and row["cached"])
        row["_spec"], row["_replica"] = spec, spd.replica_from_plan(spec, row["plan"])
    return spd.predict(row["_spec"], row["_replica"], row["plan"].data_parallel_size, row["_work"],
                       row["concurrency"], constants_for(row, k, hosts), requests=row.get("requests"))


def errors(row: dict, k, hosts: dict[str, float] | None = None) -> dict[str, float]:
    """Relative error per metric: predicted / measured − 1."""
    sp = predict(row, k, hosts)
    return {m: getattr(sp, m) / row["measured"][m] - 1 for m in TARGETS}


def fit(all_rows: list[dict], k, names: tuple[str, ...] = FITTED, hosts: dict[str, float] | None = None,
        fit_hosts: bool = True, step: float = 0.5, min_gain: float = 0.0):
    """Coordinate descent on ``names`` (and the host factors of hosts other than the constants' own): least
    squares of log(predicted / measured) over the rows marked fit. Returns (constants, host factors).

    A trial is kept when it lowers the loss by more than ``min_gain`` of it (0: any decrease; then a term whose
    best value is 0 creeps toward it by the same step for as long as each move lowers the loss at all, which can
    take thousands of sweeps)."""
    fit_rows = [r for r in all_rows if r["fit"]]
    hosts = dict(hosts or HOST_FACTOR)
    free_hosts = [h for h in {HOSTS[r["gpu"]] for r in fit_rows} if h != "h200-host"] if fit_hosts else []

    def loss(c, hs) -> float:
        return sum(math.log1p(e) ** 2 for r in fit_rows for e in errors(r, c, hs).values())

    best = loss(k, hosts)
    while step > 0.005:
        improved = False
        for name in (*names, *free_hosts):
            for factor in (1 + step, 1 / (1 + step)):
                if name in free_hosts:
                    trial_k, trial_h = k, {**hosts, name: hosts[name] * factor}
                else:
                    trial_k, trial_h = dataclasses.replace(k, **{name: getattr(k, name) * factor}), hosts
                    lo, hi = BOUNDS.get(name, (0, math.inf))
                    if not lo <= getattr(trial_k, name) <= hi:
                        continue
                value = loss(trial_k, trial_h)
                if value < best * (1 - min_gain):
                    k, hosts, best, improved = trial_k, trial_h, value, True
        if not improved:
            step /= 2
    return k, hosts


def table(all_rows: list[dict], k, hosts: dict[str, float] | None = None) -> list[dict]:
    out = []
    for r in all_rows:
        sp = predict(r, k, hosts)
        out.append({"gpu": r["gpu"], "model": r["size"], "workload": r["workload"] + ("" if r["cached"] else " new"),
                    "concurrency": r["concurrency"], "set": "fit" if r["fit"] else "held out",
                    "measured": {m: round(v, 2) for m, v in r["measured"].items()},
                    "predicted": {m: round(getattr(sp, m), 2) for m in TARGETS},
                    "error": {m: round(e, 3) for m, e in errors(r, k, hosts).items()}})
    return out


def score(result: list[dict]) -> int:
    """Figures of a table within the targets."""
    return sum(abs(t["error"][m]) <= tol for t in result for m, tol in TARGETS.items())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit", action="store_true", help="refit revision 5 on its 48 rows")
    ap.add_argument("--candidate", action="store_true",
                    help="all 56 rows with revision 6, the default (after revision 5's score on them)")
    ap.add_argument("--rev7", action="store_true",
                    help="all 56 rows with the revision-7 candidate (after revision 5's and the revision-6 candidate's "
                         "scores on them)")
    ap.add_argument("--out", help="also write the table as JSON here")
    args = ap.parse_args()
    k = SPEED_V026_REV5
    data = all_measured()
    hosts = HOST_FACTOR
    names = FITTED
    if args.candidate or args.rev7:
        data, names = all_56(), REV7_FITTED if args.rev7 else CANDIDATE_FITTED
        print(f"revision 5 on all {len(data)} rows: {score(table(data, k))} of {3 * len(data)} figures within the "
              "targets")
        if args.rev7:
            print(f"the revision-6 candidate on all {len(data)} rows: {score(table(data, SPEED_V026_CANDIDATE))} of "
                  f"{3 * len(data)} figures within the targets")
        k = SPEED_V026_REV7_CANDIDATE if args.rev7 else SPEED_V026_CANDIDATE
    if args.fit:
        k, hosts = fit(data, k, names=names)
        print({name: round(getattr(k, name), 4) for name in names}, {h: round(v, 3) for h, v in hosts.items()})
    result = table(data, k, hosts)
    print("| GPU | model | workload | c | set | out tok/s meas / pred | TTFT ms meas / pred | TPOT ms meas / pred |")
    print("|---|---|---|---|---|---|---|---|")
    for t in result:
        m, p, e = t["measured"], t["predicted"], t["error"]
        cells = [f"{m[x]:,.1f} / {p[x]:,.1f} ({e[x]:+.0%})" for x in ("output_tokens_per_s", "ttft_ms", "tpot_ms")]
        print(f"| {t['gpu']} | {t['model']} | {t['workload']} | {t['concurrency']} | {t['set']} | " + " | ".join(cells)
              + " |")
    print(f"all {len(result)} rows: {score(result)} of {3 * len(result)} figures within the targets")
    for name in ("cached", "H200 fresh", "H200 next", "H200 held", "H200 final"):
        part = [t for t in result if t["gpu"] == name or name == "cached" and "new" not in t["workload"]]
        if part:
            print(f"{name} (fit): {score(part)} of {3 * len(part)} figures within the targets; worst",
                  {m: f"{max(abs(t['error'][m]) for t in part):.0%}" for m in TARGETS})
    if args.out:
        Path(args.out).write_text(json.dumps({"constants": dataclasses.asdict(k), "rows": result}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
