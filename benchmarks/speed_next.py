"""The speed model's predictions for the next held-out H200 visit, written down before it is measured.

None of these rows has run: Qwen2.5-VL-7B at image sizes and prompt/output lengths no earlier run used (640×480
with 200 text tokens and 32 output tokens; 1920×1080 with 48 and 160) and Qwen3-VL-8B (a family no speed run used)
with 1280×720 images; every request its own image (`vlmctl bench --distinct-media`: no prefix-cache or
encoder-cache hits), `--ignore-eos`, 8 s per level. Each model is planned by `vlmctl plan --gpus h200:1
--vllm-version 0.26.0`, served by `vlmctl serve --plan` (vLLM 0.26.0, dummy weights) and measured by `vlmctl bench
--plan` (`benchmarks/gpu/visit_speed_next.sh`). For each row: the median request's TTFT and TPOT and the output
tok/s of the level (``plan.speed`` of the plan served, no calibration file), the settings the engine is served
with, and whether the row is in the fit set (FIT: the two rows the vision encoder's MFU and the renderer's time
per new megapixel are refitted on after the visit) or held out (the other six).

    python benchmarks/speed_next.py --out docs/validation/speed_next/predictions.json     # record
    python benchmarks/speed_next.py --check docs/validation/speed_next/predictions.json   # same as recorded?
    python benchmarks/speed_next.py --compare RUN_DIR      # the visit's runs/ folder against the recorded file
    python benchmarks/speed_next.py --bench-args 7B_640x480  # the visit's `vlmctl bench` flags for one bench file

--check predicts again with the constants recorded in the file: a change to the model's arithmetic or to the plans
shows up as a difference (``recorded`` is left out).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from provenance import recorded_doc, same_as_recorded, write_recorded

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

MODELS = {"7B": "Qwen/Qwen2.5-VL-7B-Instruct", "Q3-8B": "Qwen/Qwen3-VL-8B-Instruct"}
GPU = "h200:1"
VLLM = "0.26.0"
DURATION_S = 8
#: One `vlmctl bench` per entry: (model, workload, text tokens, output tokens, concurrency levels).
BENCHES = [("7B", "image@640x480", 200, 32, (1, 8, 32)), ("7B", "image@1920x1080", 48, 160, (1, 8)),
           ("Q3-8B", "image@1280x720", 48, 96, (1, 8, 32))]
ROWS = [(m, w, p, o, c) for m, w, p, o, levels in BENCHES for c in levels]
#: Designated before the measurement: the rows FIT_CONSTANTS are refitted on; every other row is held out.
FIT = {("7B", "image@1920x1080", 1), ("Q3-8B", "image@1280x720", 1)}
FIT_CONSTANTS = ("vision_mfu", "media_new_ms_per_mpixel")
SERVED = ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size", "max_model_len",
          "gpu_memory_utilization", "max_num_seqs", "max_num_batched_tokens", "enforce_eager", "model_runner",
          "limit_mm_per_prompt", "mm_processor_kwargs", "kv_cache_tokens", "dtype")
TARGETS = {"output_tokens_per_s": 0.15, "tpot_ms": 0.15, "ttft_ms": 0.25}


def key(model: str, workload: str, concurrency: int) -> str:
    return f"{model} {workload} c={concurrency}"


def tag(model: str, workload: str) -> str:
    """The visit's name for one bench: <model>_<WxH> (its files: bench_<tag>.json, plan_<model>.json)."""
    return f"{model}_{workload.split('@')[1]}"


def bench_args(name: str) -> str:
    """The `vlmctl bench` flags of one bench (the visit script asks for them, so the two cannot drift)."""
    for model, workload, prompt, output, levels in BENCHES:
        if tag(model, workload) == name:
            return (f"--mix {workload} --concurrency {','.join(map(str, levels))} --warmup 2 --distinct-media "
                    f"--duration {DURATION_S} --max-tokens {output} --prompt-tokens {prompt} --ignore-eos")
    raise SystemExit(f"no bench '{name}': one of {', '.join(tag(m, w) for m, w, *_ in BENCHES)}")


def _plan(model: str, workload: str, prompt: int, output: int, concurrency: int):
    from vlmctl.plan import make_plan

    result = make_plan(MODELS[model], gpus=GPU, vllm_version=VLLM, concurrency=concurrency, workload=workload,
                       prompt_tokens=prompt, output_tokens=output)
    if not result.ok:
        raise SystemExit(f"{model} on {GPU}: no plan")
    return result.plan


def speed_of(plan, workload: str, prompt: int, output: int, concurrency: int, k) -> dict:
    """The speed model for one row of the plan the visit serves (as ``plan.speed`` rounds it)."""
    from vlmctl.models.loader import load_model_spec
    from vlmctl.plan import speed as spd

    spec = load_model_spec(plan.model)
    work = spd.parse_workload(workload, prompt, output)
    sp = spd.predict(spec, spd.replica_from_plan(spec, plan), plan.data_parallel_size, work, concurrency, k)
    return {"ttft_ms": round(sp.ttft_ms, 1), "tpot_ms": round(sp.tpot_ms, 2),
            "output_tokens_per_s": round(sp.output_tokens_per_s, 1), "decode_step_ms": round(sp.decode_step_ms, 2),
            "bound": sp.bound, "prompt_tokens": sp.prompt_tokens, "media_tokens": sp.media_tokens}


def predictions(k=None) -> dict:
    """Everything but ``recorded``: the constants used (the committed ones unless ``k``) and one entry per row."""
    from speed_fresh import constants_record
    from vlmctl.engines.vllm.speed import speed_constants

    k = k or speed_constants(VLLM)
    rows: dict = {}
    for model, workload, prompt, output, c in ROWS:
        plan = _plan(model, workload, prompt, output, c)
        data = plan.model_dump(mode="json")
        speed = speed_of(plan, workload, prompt, output, c, k)
        rows[key(model, workload, c)] = {
            "model": model, "workload": workload, "concurrency": c, "prompt_tokens": prompt, "output_tokens": output,
            "set": "fit" if (model, workload, c) in FIT else "held out", "bench": f"bench_{tag(model, workload)}.json",
            "served": {f: data[f] for f in SERVED}, "speed": speed}
    return {"gpu": GPU, "vllm_version": VLLM, "media": "distinct (no prefix-cache hits)",
            "fit_constants": list(FIT_CONSTANTS),
            "constants": constants_record(k),
            "constants_source": k.source, "rows": rows}


def measured(run_dir: Path) -> dict[str, dict]:
    """Median TTFT/TPOT (ms) and output tok/s per row key from the visit's bench files."""
    out: dict[str, dict] = {}
    for model, workload, _, _, c in ROWS:
        path = run_dir / f"bench_{tag(model, workload)}.json"
        if not path.exists():
            continue
        bench = json.loads(path.read_text())
        for level in bench["levels"]:
            s = level["summary"]
            if level.get("concurrency") != c or not s["completed"] or not s["ttft_s"]:
                continue
            out[key(model, workload, c)] = {
                "output_tokens_per_s": s["output_throughput"], "ttft_ms": s["ttft_s"]["p50"] * 1e3,
                "tpot_ms": s["tpot_s"]["p50"] * 1e3 if s["tpot_s"] else None,
                "media_reuse": bench["meta"].get("media_reuse")}
    return out


def compare(doc: dict, run_dir: Path) -> tuple[str, dict]:
    """The visit's measurements next to the recorded predictions: a markdown table and a summary per set."""
    got = measured(run_dir)
    notes = []
    lines = ["| model | workload | text / output tokens | c | set | out tok/s meas / pred | TTFT ms meas / pred | "
             "TPOT ms meas / pred |", "|---|---|---|---|---|---|---|---|"]
    for model in MODELS:
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
        head = (f"| {row['model']} | {row['workload']} | {row['prompt_tokens']} / {row['output_tokens']} | "
                f"{row['concurrency']} | {row['set']} |")
        m = got.get(name)
        if m is None:
            lines.append(f"{head} not measured | | |")
            continue
        if m["media_reuse"] not in ("distinct", None):
            notes.append(f"{name}: the bench reused media ({m['media_reuse']}), not what was predicted")
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


def fit_rows(doc: dict, run_dir: Path, models: dict[str, str] | None = None) -> list[dict]:
    """The visit's rows in benchmarks/speed_fit.py's form (plans as served, measured lengths), fit as designated."""
    from vlmctl.plan import PlanResult

    out = []
    models = models or MODELS
    for name, row in doc["rows"].items():
        path = run_dir / row["bench"]
        plan_file = run_dir / f"plan_{row['model']}.json"
        if not path.exists() or not plan_file.exists():
            continue
        plan = PlanResult.model_validate_json(plan_file.read_text()).plan
        plan = plan.model_copy(update={"model": models.get(row["model"], MODELS.get(row["model"])), "model_path": None})
        for level in json.loads(path.read_text())["levels"]:
            s = level["summary"]
            if level.get("concurrency") != row["concurrency"] or not s["completed"] or not s["ttft_s"]:
                continue
            out.append({"gpu": "H200 fresh", "size": row["model"], "workload": row["workload"],
                        "concurrency": row["concurrency"], "plan": plan, "cached": False, "fit": row["set"] == "fit",
                        "prompt_tokens": s["total_input_tokens"] / s["completed"],
                        "output_tokens": round(s["total_output_tokens"] / s["completed"]),
                        "requests": s["completed"],
                        "measured": {"output_tokens_per_s": s["output_throughput"],
                                     "ttft_ms": s["ttft_s"]["p50"] * 1e3, "tpot_ms": s["tpot_s"]["p50"] * 1e3}})
    return out


def fit_and_hold_out(doc: dict, run_dir: Path) -> tuple[dict, list[dict]]:
    """FIT_CONSTANTS fitted on the FIT rows (all else as recorded with the predictions), and the table of every row
    with them."""
    import speed_fit
    from speed_fresh import constants_of

    rows = fit_rows(doc, run_dir)
    if not any(r["fit"] for r in rows):
        raise SystemExit(f"{run_dir}: none of the designated fit rows was measured")
    k, _ = speed_fit.fit(rows, constants_of(doc), FIT_CONSTANTS, fit_hosts=False)
    return {n: round(getattr(k, n), 4) for n in FIT_CONSTANTS}, speed_fit.table(rows, k)


def main(argv: list[str] | None = None) -> int:
    from speed_fresh import constants_of

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--out", type=Path, help="write the predictions here (with today's date and the commit)")
    mode.add_argument("--check", type=Path, help="regenerate and compare with this file (exit 1 on a difference)")
    mode.add_argument("--compare", type=Path, metavar="RUN_DIR", help="the visit's runs/ folder against --predictions")
    mode.add_argument("--bench-args", metavar="BENCH", help="print the `vlmctl bench` flags of one bench")
    mode.add_argument("--fit", type=Path, metavar="RUN_DIR", help="fit the FIT rows, then the held-out table once")
    ap.add_argument("--predictions", type=Path, default=ROOT / "docs/validation/speed_next/predictions.json")
    args = ap.parse_args(argv)
    if args.bench_args:
        print(bench_args(args.bench_args))
        return 0
    if args.compare:
        print(compare(json.loads(args.predictions.read_text()), args.compare)[0])
        return 0
    if args.fit:
        fitted, table = fit_and_hold_out(json.loads(args.predictions.read_text()), args.fit)
        print(fitted)
        for t in table:
            m, p, e = t["measured"], t["predicted"], t["error"]
            print(f"| {t['model']} | {t['workload']} | {t['concurrency']} | {t['set']} | " + " | ".join(
                f"{m[x]:,.1f} / {p[x]:,.1f} ({e[x]:+.0%})" for x in ("output_tokens_per_s", "ttft_ms", "tpot_ms")) + " |")
        held = [t for t in table if t["set"] == "held out"]
        inside = sum(abs(t["error"][m]) <= tol for t in held for m, tol in TARGETS.items())
        print(f"held out: {inside} of {3 * len(held)} figures within the targets")
        return 0
    os.environ["VLMCTL_CALIBRATION_DIR"] = str(ROOT / ".no-user-calibration")  # the profile's constants only
    if args.check:
        recorded = recorded_doc(args.check)
        if not same_as_recorded(recorded, predictions(constants_of(recorded))):
            print(f"{args.check}: the planner now predicts something else than what was recorded", file=sys.stderr)
            return 1
        print(f"{args.check}: unchanged")
        return 0
    write_recorded(args.out, predictions(), "written before the visit measured any of these rows; FIT rows are "
                   "fitted after it, the others held out")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
