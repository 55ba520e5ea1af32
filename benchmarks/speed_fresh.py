"""The speed model's predictions for the fresh-media H200 visit, written down before it is measured.

The visit (`benchmarks/gpu/visit_speed.sh`): Qwen2.5-VL 7B, 3B and 32B on one H200, each planned by `vlmctl plan
--gpus h200:1 --vllm-version 0.26.0` and served by `vlmctl serve --plan` (vLLM 0.26.0, dummy weights); `vlmctl
bench --distinct-media` (every image or video its own: no prefix-cache or encoder-cache hits), 48 text tokens and 96
output tokens per request (`--ignore-eos`): image@1280x720 at concurrency 1/8/32 on every model, and on 7B text at
1/32 and video@640x360x8 at 1/8. For each row: the median request's TTFT and TPOT and the output tok/s of the
level (``plan.speed`` of the plan the visit serves, no calibration file), the settings the engine is served with,
and whether the row is in the fit set (FIT: the rows the vision encoder's MFU and the API server's time for new
media are fitted on after the visit) or held out.

    python benchmarks/speed_fresh.py --out docs/validation/speed_fresh/predictions.json      # record
    python benchmarks/speed_fresh.py --check docs/validation/speed_fresh/predictions.json    # same as recorded?
    python benchmarks/speed_fresh.py --compare RUN_DIR     # the visit's runs/ folder against the recorded file

--check predicts again with the constants recorded in the file (the fit after the visit changes the committed
ones, not the record): a change to the model's arithmetic or to the plans shows up as a difference; ``recorded``
(date, commit) is left out. The model's structure has changed since this file was recorded (docs/validation.md
§ 11, "Revision fitted on all 32 rows"), so --check reports a difference now; the record is what its commit
predicted.
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

MODELS = {"7B": "Qwen/Qwen2.5-VL-7B-Instruct", "3B": "Qwen/Qwen2.5-VL-3B-Instruct",
          "32B": "Qwen/Qwen2.5-VL-32B-Instruct"}
GPU = "h200:1"
VLLM = "0.26.0"
PROMPT_TOKENS, OUTPUT_TOKENS = 48, 96
#: (model, workload, concurrency) in the visit's order; "bench" is the visit's bench file tag.
ROWS = [("7B", "image@1280x720", c) for c in (1, 8, 32)] + [("7B", "text", c) for c in (1, 32)] \
    + [("7B", "video@640x360x8", c) for c in (1, 8)] \
    + [("3B", "image@1280x720", c) for c in (1, 8, 32)] + [("32B", "image@1280x720", c) for c in (1, 8, 32)]
#: Designated before the measurement: the rows the new-media constants are fitted on; every other row is held out.
FIT = {("7B", "image@1280x720", 1), ("7B", "image@1280x720", 32)}
#: The constants fitted on FIT (everything else stays as fitted on the 19 cached-media rows).
FIT_CONSTANTS = ("vision_mfu", "media_new_ms_per_mpixel")
#: Plan fields the engine is started with (the compare says when the visit served something else).
SERVED = ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size", "max_model_len",
          "gpu_memory_utilization", "max_num_seqs", "max_num_batched_tokens", "enforce_eager", "model_runner",
          "limit_mm_per_prompt", "mm_processor_kwargs", "kv_cache_tokens", "dtype")
SPEED = ("ttft_ms", "tpot_ms", "output_tokens_per_s", "decode_step_ms", "bound", "prompt_tokens", "media_tokens")
TARGETS = {"output_tokens_per_s": 0.15, "tpot_ms": 0.15, "ttft_ms": 0.25}


def key(model: str, workload: str, concurrency: int) -> str:
    return f"{model} {workload} c={concurrency}"


def bench_tag(model: str, workload: str) -> str:
    """The visit's bench file for a row: bench_<model>_<image|text|video>.json."""
    return f"bench_{model}_{workload.split('@')[0]}.json"


def _plan(model: str, workload: str, concurrency: int):
    from vlmctl.plan import make_plan

    result = make_plan(MODELS[model], gpus=GPU, vllm_version=VLLM, concurrency=concurrency, workload=workload,
                       prompt_tokens=PROMPT_TOKENS, output_tokens=OUTPUT_TOKENS)
    if not result.ok:
        raise SystemExit(f"{model} on {GPU}: no plan")
    return result.plan


def constants_record(k) -> dict:
    """The constants as a predictions file records them: every field but ``source``; a term a later revision added
    (default 0, or the "waves" queueing of revisions 1-4) only when it is set, so files recorded before it still
    check."""
    fields = {f.name: f.default for f in dataclasses.fields(k)}
    return {f: v for f, v in dataclasses.asdict(k).items()
            if f != "source" and not (fields[f] in (0.0, "waves") and v == fields[f])}


def constants_of(doc: dict):
    """The speed constants a recorded file was predicted with."""
    from vlmctl.engines.vllm.speed import SpeedConstants

    return SpeedConstants(source=doc["constants_source"], **doc["constants"])


def speed_of(plan, workload: str, concurrency: int, k) -> dict:
    """The speed model for one row of the plan the visit serves (as ``plan.speed`` rounds it)."""
    from vlmctl.models.loader import load_model_spec
    from vlmctl.plan import speed as spd

    spec = load_model_spec(plan.model)
    work = spd.parse_workload(workload, PROMPT_TOKENS, OUTPUT_TOKENS)
    sp = spd.predict(spec, spd.replica_from_plan(spec, plan), plan.data_parallel_size, work, concurrency, k)
    return {"ttft_ms": round(sp.ttft_ms, 1), "tpot_ms": round(sp.tpot_ms, 2),
            "output_tokens_per_s": round(sp.output_tokens_per_s, 1), "decode_step_ms": round(sp.decode_step_ms, 2),
            "bound": sp.bound, "prompt_tokens": sp.prompt_tokens, "media_tokens": sp.media_tokens}


def predictions(k=None) -> dict:
    """Everything but ``recorded``: the constants used (the committed ones unless ``k``) and one entry per row."""
    from vlmctl.engines.vllm.speed import speed_constants

    k = k or speed_constants(VLLM)
    rows: dict = {}
    for model, workload, c in ROWS:
        plan = _plan(model, workload, c)
        data = plan.model_dump(mode="json")
        rows[key(model, workload, c)] = {
            "model": model, "workload": workload, "concurrency": c,
            "set": "fit" if (model, workload, c) in FIT else "held out", "bench": bench_tag(model, workload),
            "served": {f: data[f] for f in SERVED}, "speed": speed_of(plan, workload, c, k)}
    return {"gpu": GPU, "vllm_version": VLLM, "prompt_tokens": PROMPT_TOKENS, "output_tokens": OUTPUT_TOKENS,
            "media": "distinct (no prefix-cache hits)", "fit_constants": list(FIT_CONSTANTS),
            "constants": constants_record(k),
            "constants_source": k.source, "rows": rows}


def measured(run_dir: Path) -> dict[str, dict]:
    """Median TTFT/TPOT (ms) and output tok/s per row key from the visit's bench files, and the served plans."""
    out: dict[str, dict] = {}
    for model, workload, c in ROWS:
        path = run_dir / bench_tag(model, workload)
        if not path.exists():
            continue
        bench = json.loads(path.read_text())
        for level in bench["levels"]:
            s = level["summary"]
            if level.get("concurrency") != c or not s["completed"] or not s["ttft_s"]:
                continue
            out[key(model, workload, c)] = {
                "output_tokens_per_s": s["output_throughput"], "ttft_ms": s["ttft_s"]["p50"] * 1e3,
                "tpot_ms": s["tpot_s"]["p50"] * 1e3 if s["tpot_s"] else None, "completed": s["completed"],
                "failed": s["failed"], "media_reuse": bench["meta"].get("media_reuse"),
                "prompt_tokens": s["total_input_tokens"] / s["completed"],
                "output_tokens": s["total_output_tokens"] / s["completed"]}
    return out


def compare(doc: dict, run_dir: Path) -> tuple[str, dict]:
    """The visit's measurements next to the recorded predictions: a markdown table and a summary per set."""
    got = measured(run_dir)
    notes, lines = [], ["| model | workload | c | set | out tok/s meas / pred | TTFT ms meas / pred | TPOT ms meas / pred |",
                        "|---|---|---|---|---|---|---|"]
    for size in MODELS:
        plan_file = run_dir / f"plan_{size}.json"
        if not plan_file.exists():
            continue
        served = json.loads(plan_file.read_text()).get("plan", {})
        row = next(r for r in doc["rows"].values() if r["model"] == size)
        moved = {f: (served.get(f), v) for f, v in row["served"].items() if served.get(f) != v}
        if moved:
            notes.append(f"{size}: served with other settings than predicted for (served, predicted): {moved}")
    summary: dict = {"fit": [0, 0], "held out": [0, 0]}
    for name, row in doc["rows"].items():
        m = got.get(name)
        if m is None:
            lines.append(f"| {row['model']} | {row['workload']} | {row['concurrency']} | {row['set']} | not measured | | |")
            continue
        if m["media_reuse"] not in ("distinct", None) and row["workload"] != "text":
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
        lines.append(f"| {row['model']} | {row['workload']} | {row['concurrency']} | {row['set']} | " + " | ".join(cells) + " |")
    tail = [f"{s}: {a} of {b} figures within the targets (output tok/s and TPOT ±15 %, TTFT ±25 %)"
            for s, (a, b) in summary.items() if b]
    return "\n".join([*notes, *lines, "", *tail]), summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--out", type=Path, help="write the predictions here (with today's date and the commit)")
    mode.add_argument("--check", type=Path, help="regenerate and compare with this file (exit 1 on a difference)")
    mode.add_argument("--compare", type=Path, metavar="RUN_DIR", help="the visit's runs/ folder against --predictions")
    ap.add_argument("--predictions", type=Path, default=ROOT / "docs/validation/speed_fresh/predictions.json")
    args = ap.parse_args(argv)
    if args.compare:
        print(compare(json.loads(args.predictions.read_text()), args.compare)[0])
        return 0
    os.environ["VLMCTL_CALIBRATION_DIR"] = str(ROOT / ".no-user-calibration")  # the profile's constants only
    if args.check:
        recorded = recorded_doc(args.check)
        if not same_as_recorded(recorded, predictions(constants_of(recorded))):
            print(f"{args.check}: the planner now predicts something else than what was recorded", file=sys.stderr)
            return 1
        print(f"{args.check}: unchanged")
        return 0
    write_recorded(args.out, predictions(), "written before the fresh-media visit measured any of these rows; FIT "
                   "rows are fitted after it, the others held out")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
