"""The speed model's predictions for the last held-out H200 visit (revision 5), written down before it is measured.

ONE engine: Qwen2.5-VL-7B, planned by `vlmctl plan --gpus h200:1 --vllm-version 0.26.0`, served by `vlmctl serve
--plan` (vLLM 0.26.0, dummy weights) and measured by `vlmctl bench --plan` (`benchmarks/gpu/visit_speed_final.sh`).
None of these rows has run: 1024×576 images (80 text / 64 output tokens) and 1440×1080 images (64 / 96) at
c = 2, 12, 24, and text (256 / 128) at c = 16; every request its own image (`--distinct-media`: no prefix-cache or
encoder-cache hits), `--ignore-eos`, 6 s per level.

One row is designated FIT before the visit, and only for what a user does on a new host: 7B with 960×720 images
(64 / 64) at c = 1 is benched first, and `vlmctl calibrate --from-bench` fits the API server's host factor on it (the
product's own flow; the file lands in the visit's runs/ as cal_7B.json). Every other row is held out, and nothing
else is fitted: the held-out rows are scored blind (host factor 1, as recorded) and with that host factor.

    python benchmarks/speed_final.py --out docs/validation/speed_final/predictions.json     # record
    python benchmarks/speed_final.py --check docs/validation/speed_final/predictions.json   # same as recorded?
    python benchmarks/speed_final.py --compare RUN_DIR      # blind: the visit's runs/ against the recorded file
    python benchmarks/speed_final.py --host RUN_DIR         # the held-out rows with the visit's host factor
    python benchmarks/speed_final.py --bench-args 7B_1024x576   # the visit's `vlmctl bench` flags for one bench

--check predicts again with the constants recorded in the file: a change to the model's arithmetic or to the plans
shows up as a difference (``recorded`` is left out).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from provenance import recorded_doc, same_as_recorded, write_recorded

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

MODELS = {"7B": "Qwen/Qwen2.5-VL-7B-Instruct"}
GPU = "h200:1"
VLLM = "0.26.0"
DURATION_S = 6
#: One `vlmctl bench` per entry, in the visit's order: (model, workload, text tokens, output tokens, levels).
BENCHES = [("7B", "image@960x720", 64, 64, (1,)), ("7B", "image@1024x576", 80, 64, (2, 12, 24)),
           ("7B", "image@1440x1080", 64, 96, (2, 12, 24)), ("7B", "text", 256, 128, (16,))]
ROWS = [(m, w, p, o, c) for m, w, p, o, levels in BENCHES for c in levels]
#: Designated before the measurement: the one row the host factor is fitted on (`vlmctl calibrate --from-bench`);
#: every other row is held out.
FIT = {("7B", "image@960x720", 1)}
FIT_CONSTANTS = ("host_factor",)
SERVED = ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size", "max_model_len",
          "gpu_memory_utilization", "max_num_seqs", "max_num_batched_tokens", "enforce_eager", "model_runner",
          "limit_mm_per_prompt", "mm_processor_kwargs", "kv_cache_tokens", "dtype")
TARGETS = {"output_tokens_per_s": 0.15, "tpot_ms": 0.15, "ttft_ms": 0.25}


def key(model: str, workload: str, concurrency: int) -> str:
    return f"{model} {workload} c={concurrency}"


def tag(model: str, workload: str) -> str:
    """The visit's name for one bench: <model>_<WxH> or <model>_text (its files: bench_<tag>.json,
    plan_<model>.json)."""
    return f"{model}_{workload.split('@')[1] if '@' in workload else workload}"


def bench_args(name: str) -> str:
    """The `vlmctl bench` flags of one bench (the visit script asks for them, so the two cannot drift)."""
    for model, workload, prompt, output, levels in BENCHES:
        if tag(model, workload) == name:
            media = " --distinct-media" if workload != "text" else ""
            return (f"--mix {workload} --concurrency {','.join(map(str, levels))} --warmup 2{media} "
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
    sp = spd.predict(spec, spd.replica_from_plan(spec, plan), plan.data_parallel_size, work, concurrency, k,
                     duration_s=DURATION_S)
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
            "fit_constants": list(FIT_CONSTANTS), "constants": constants_record(k),
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
                "media_reuse": bench["meta"].get("media_reuse"),
                "prompt_tokens": s["total_input_tokens"] / s["completed"],
                "output_tokens": round(s["total_output_tokens"] / s["completed"])}
    return out


def host_factor(run_dir: Path) -> float:
    """The host factor `vlmctl calibrate --from-bench` wrote on the visit (runs/cal_7B.json)."""
    path = run_dir / "cal_7B.json"
    if not path.exists():
        raise SystemExit(f"{path}: no calibration file; on the CPU: vlmctl calibrate --from-bench "
                         f"{run_dir}/bench_7B_960x720.json --plan {run_dir}/plan_7B.json -o {path}")
    return float(json.loads(path.read_text())["speed"]["host_factor"])


def with_host(doc: dict, factor: float) -> dict:
    """The recorded predictions again with the recorded constants and ``factor`` (nothing else fitted)."""
    from speed_fresh import constants_of

    k = dataclasses.replace(constants_of(doc), host_factor=factor)
    out = json.loads(json.dumps(doc))
    for name, row in out["rows"].items():
        plan = _plan(row["model"], row["workload"], row["prompt_tokens"], row["output_tokens"], row["concurrency"])
        row["speed"] = speed_of(plan, row["workload"], row["prompt_tokens"], row["output_tokens"],
                                row["concurrency"], k)
    return out


def compare(doc: dict, run_dir: Path) -> tuple[str, dict]:
    """The visit's measurements next to ``doc``'s predictions: a markdown table and a summary per set."""
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
        if m["media_reuse"] not in ("distinct", None) and row["workload"] != "text":
            notes.append(f"{name}: the bench reused media ({m['media_reuse']}), not what was predicted")
        if m["output_tokens"] != row["output_tokens"]:
            notes.append(f"{name}: {m['output_tokens']} output tokens per request, predicted for {row['output_tokens']}")
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


def main(argv: list[str] | None = None) -> int:
    from speed_fresh import constants_of

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--out", type=Path, help="write the predictions here (with today's date and the commit)")
    mode.add_argument("--check", type=Path, help="regenerate and compare with this file (exit 1 on a difference)")
    mode.add_argument("--compare", type=Path, metavar="RUN_DIR", help="the visit's runs/ folder, blind")
    mode.add_argument("--host", type=Path, metavar="RUN_DIR", help="the visit's runs/ with its fitted host factor")
    mode.add_argument("--bench-args", metavar="BENCH", help="print the `vlmctl bench` flags of one bench")
    ap.add_argument("--predictions", type=Path, default=ROOT / "docs/validation/speed_final/predictions.json")
    args = ap.parse_args(argv)
    if args.bench_args:
        print(bench_args(args.bench_args))
        return 0
    os.environ["VLMCTL_CALIBRATION_DIR"] = str(ROOT / ".no-user-calibration")  # the profile's constants only
    if args.compare:
        print(compare(recorded_doc(args.predictions), args.compare)[0])
        return 0
    if args.host:
        factor = host_factor(args.host)
        print(f"host factor {factor:g} (vlmctl calibrate --from-bench on the fit row); nothing else fitted")
        print(compare(with_host(recorded_doc(args.predictions), factor), args.host)[0])
        return 0
    if args.check:
        recorded = recorded_doc(args.check)
        if not same_as_recorded(recorded, predictions(constants_of(recorded))):
            print(f"{args.check}: the planner now predicts something else than what was recorded", file=sys.stderr)
            return 1
        print(f"{args.check}: unchanged")
        return 0
    write_recorded(args.out, predictions(), "written before the visit measured any of these rows; the FIT row "
                   "only sets the host factor (vlmctl calibrate --from-bench), the others are held out")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
