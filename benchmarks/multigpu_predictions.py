"""The planner's predictions for the multi-GPU layouts, written down before any of them is measured.

For Qwen2.5-VL-7B and Qwen3-VL-8B on one host of H200s (vLLM 0.26.0, the image workload a
`benchmarks/gpu/visit_multigpu.sh` visit sends: one distinct 1280x720 image + 48 text tokens per request, 96 output
tokens), every forced layout — DP 4, DP 2 x TP 2, TP 4, TP 2 x PP 2 on 4 GPUs; DP 2, TP 2, PP 2 on 2 GPUs — at
concurrency 1, 8, 32 and 64: TTFT, TPOT, output tok/s (``plan.speed``, no prefix-cache hits), KV tokens per replica,
the settings the engine is served with and the memory of each rank of one replica; and the layout the planner
picks on its own at each concurrency.

    python benchmarks/multigpu_predictions.py --out docs/validation/multigpu/predictions.json   # record
    python benchmarks/multigpu_predictions.py --check docs/validation/multigpu/predictions.json # same as recorded?
    python benchmarks/multigpu_predictions.py --markdown docs/validation/multigpu/predictions.json

``recorded`` (date, commit) is left out of the comparison; everything else must match to the digit, so any change
to the planner or its constants that moves a prediction shows up as a diff against what was recorded before the
measurement.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from provenance import recorded_doc, same_as_recorded, write_recorded

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

MODELS = {"Qwen2.5-VL-7B": "Qwen/Qwen2.5-VL-7B-Instruct", "Qwen3-VL-8B": "Qwen/Qwen3-VL-8B-Instruct"}
#: name -> (data parallel, tensor parallel, pipeline parallel), by GPU count
LAYOUTS = {4: {"DP4": (4, 1, 1), "DP2xTP2": (2, 2, 1), "TP4": (1, 4, 1), "TP2xPP2": (1, 2, 2)},
           2: {"DP2": (2, 1, 1), "TP2": (1, 2, 1), "PP2": (1, 1, 2)}}
CONCURRENCY = (1, 8, 32, 64)
GPU = "h200"
VLLM = "0.26.0"
WORKLOAD = {"workload": "image@1280x720", "prompt_tokens": 48, "output_tokens": 96}
#: Plan fields an engine is started with; they must not depend on the concurrency planned for.
SERVED = ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size", "pp_layer_partition",
          "max_model_len", "gpu_memory_utilization", "max_num_seqs", "max_num_batched_tokens", "enforce_eager",
          "model_runner", "limit_mm_per_prompt", "mm_processor_kwargs", "kv_cache_tokens")
RANK = ("stage", "tp_rank", "layers", "requested_gib", "weights_gib", "activation_gib", "non_torch_gib",
        "cudagraph_gib", "encoder_runtime_gib", "kv_cache_gib", "kv_blocks")
SPEED = ("ttft_ms", "tpot_ms", "output_tokens_per_s", "decode_step_ms", "bound", "prompt_tokens", "media_tokens")


def layout_name(gpus: int, dp: int, tp: int, pp: int) -> str:
    """The layout's name in LAYOUTS (or DPxTPxPP for one not listed)."""
    for name, lay in LAYOUTS[gpus].items():
        if lay == (dp, tp, pp):
            return name
    return f"DP{dp}xTP{tp}xPP{pp}"


def _plan(model: str, gpus: int, concurrency: int, layout: tuple[int, int, int] | None):
    from vlmctl.plan import make_plan

    forced = {} if layout is None else dict(zip(("data_parallel_size", "tensor_parallel_size",
                                                 "pipeline_parallel_size"), layout))
    result = make_plan(model, gpus=f"{GPU}:{gpus}", vllm_version=VLLM, concurrency=concurrency, **WORKLOAD, **forced)
    if not result.ok:
        first = next(f for f in result.findings if f.severity == "error")
        raise SystemExit(f"{model} on {gpus} x {GPU} {layout}: no plan ({first.id}: {first.message})")
    return result.plan


def _served(plan) -> dict:
    data = plan.model_dump(mode="json")
    return {k: data[k] for k in SERVED}


def _speed(plan) -> dict:
    s = plan.speed.model_dump(mode="json") if hasattr(plan.speed, "model_dump") else dict(plan.speed)
    return {k: s[k] for k in SPEED}


def _ranks(plan) -> list[dict]:
    return [{k: g.model_dump(mode="json")[k] for k in RANK} for g in plan.per_gpu if g.dp_rank == 0]


def predictions() -> dict:
    """Everything but ``recorded``: per model, per GPU count, each layout and the planner's own picks."""
    out: dict = {"gpu": GPU, "vllm_version": VLLM, "concurrency": list(CONCURRENCY), **WORKLOAD,
                 "prefix_cache_hits": 0.0, "models": {}}
    for short, model in MODELS.items():
        per_count: dict = {}
        for gpus, layouts in LAYOUTS.items():
            rows: dict = {}
            for name, lay in layouts.items():
                plans = {c: _plan(model, gpus, c, lay) for c in CONCURRENCY}
                served = {c: _served(p) for c, p in plans.items()}
                if any(s != served[CONCURRENCY[-1]] for s in served.values()):
                    raise SystemExit(f"{short} {name}: the served settings depend on the concurrency planned for")
                rows[name] = {"served": served[CONCURRENCY[-1]], "ranks": _ranks(plans[CONCURRENCY[-1]]),
                              "speed": {str(c): _speed(p) for c, p in plans.items()}}
            picks = {}
            for c in CONCURRENCY:
                p = _plan(model, gpus, c, None)
                name = layout_name(gpus, p.data_parallel_size, p.tensor_parallel_size, p.pipeline_parallel_size)
                picks[str(c)] = {"layout": name, "served": _served(p), **_speed(p)}
            per_count[str(gpus)] = {"layouts": rows, "pick": picks}
        out["models"][short] = {"model": model, "gpus": per_count}
    return out


def markdown(doc: dict) -> str:
    """The docs table: one row per model x GPUs x layout, the four concurrencies side by side, the pick marked."""
    cs = doc["concurrency"]
    head = "/".join(str(c) for c in cs)
    lines = [f"| model | GPUs | layout | TTFT ms at c={head} | TPOT ms | output tok/s | KV tokens / replica "
             f"| GiB per rank: weights + activation + KV (requested) | planner picks it at c |",
             "|---|---|---|---|---|---|---|---|---|"]
    for short, m in doc["models"].items():
        for gpus, g in m["gpus"].items():
            for name, row in g["layouts"].items():
                sp = [row["speed"][str(c)] for c in cs]
                mem = "; ".join(dict.fromkeys(
                    f"{r['weights_gib']:.2f} + {r['activation_gib']:.2f} + {r['kv_cache_gib']:.2f} "
                    f"({r['requested_gib']:.2f})" for r in row["ranks"]))
                picked = ", ".join(str(c) for c in cs if g["pick"][str(c)]["layout"] == name) or "—"
                ttft = " / ".join(f"{x['ttft_ms']:,.0f}" for x in sp)
                tpot = " / ".join(f"{x['tpot_ms']:.2f}" for x in sp)
                tok = " / ".join(f"{x['output_tokens_per_s']:,.0f}" for x in sp)
                lines.append(f"| {short} | {gpus} | {name} | {ttft} | {tpot} | {tok} | "
                             f"{row['served']['kv_cache_tokens']:,} | {mem} | {picked} |")
    return "\n".join(lines)


SHORT = {"7B": "Qwen2.5-VL-7B", "Q3-8B": "Qwen3-VL-8B"}  # the visit's folder names


def _pct(measured: float | None, predicted: float) -> str:
    return f"{(predicted / measured - 1) * 100:+.0f}%" if measured else "—"


def compare(doc: dict, run_dir: Path) -> str:
    """A visit's measurements (``RUN_DIR/<model>_<layout>/``) next to the recorded predictions, and the picks."""
    lines = ["| model | GPUs | layout | c | out tok/s meas / pred | TTFT p50 ms meas / pred "
             "| TPOT p50 ms meas / pred |", "|---|---|---|---|---|---|---|"]
    mem = ["| model | layout | process | weights GiB meas / pred | torch peak / activation pred | KV GiB meas / pred "
           "| KV tokens meas / pred |", "|---|---|---|---|---|---|---|"]
    measured: dict = {}
    notes: list[str] = []
    for folder in sorted(p for p in run_dir.iterdir() if (p / "bench.json").exists()):
        model, _, name = folder.name.partition("_")
        if model not in SHORT:
            continue
        short = SHORT[model]
        gpus = next((g for g, names in LAYOUTS.items() if name in names), None)
        if gpus is None:
            continue
        row = doc["models"][short]["gpus"][str(gpus)]["layouts"][name]
        if (folder / "plan.json").exists():  # the engine must be the one predicted for
            served = json.loads((folder / "plan.json").read_text())
            served = served.get("plan", served)
            moved = {k: (served.get(k), v) for k, v in row["served"].items() if served.get(k) != v}
            if moved:
                notes.append(f"{short} {name}: served with other settings than predicted for (served, predicted): "
                             f"{moved}")
        for level in json.loads((folder / "bench.json").read_text())["levels"]:
            c, s = level["concurrency"], level["summary"]
            pred = row["speed"].get(str(c))
            if pred is None or not s["completed"]:
                continue
            tok = s["output_throughput"]
            ttft = s["ttft_s"]["p50"] * 1e3 if s["ttft_s"] else None
            tpot = s["tpot_s"]["p50"] * 1e3 if s["tpot_s"] else None
            measured.setdefault((short, gpus, c), {})[name] = tok
            ptok, pttft, ptpot = pred["output_tokens_per_s"], pred["ttft_ms"], pred["tpot_ms"]
            cells = [f"{tok:,.0f} / {ptok:,.0f} ({_pct(tok, ptok)})",
                     f"{ttft:,.1f} / {pttft:,.1f} ({_pct(ttft, pttft)})" if ttft else "—",
                     f"{tpot:.2f} / {ptpot:.2f} ({_pct(tpot, ptpot)})" if tpot else "—"]
            lines.append(f"| {short} | {gpus} | {name} | {c} | " + " | ".join(cells) + " |")
        if (folder / "memory.json").exists():
            ranks = row["ranks"]
            for proc in json.loads((folder / "memory.json").read_text())["processes"]:
                r = ranks[0]
                tp = re.search(r"TP(\d+)", proc["process"])
                pp = re.search(r"PP(\d+)", proc["process"])
                key = (int(pp.group(1)) if pp else 0, int(tp.group(1)) if tp else 0)
                r = next((x for x in ranks if (x["stage"], x["tp_rank"]) == key), r)
                if "weights_gib" not in proc and "kv_tokens" not in proc:
                    continue
                cells = [f"{proc.get('weights_gib', '—')} / {r['weights_gib']:.2f}",
                         f"{proc.get('torch_peak_gib', '—')} / {r['activation_gib']:.2f}",
                         f"{proc.get('available_kv_gib', '—')} / {r['kv_cache_gib']:.2f}",
                         f"{proc.get('kv_tokens', '—')} / {row['served']['kv_cache_tokens']}"]
                mem.append(f"| {short} | {name} | {proc['process']} | " + " | ".join(cells) + " |")
    picks = ["| model | GPUs | c | pick | best measured | pick's share of the best | within 5 % |",
             "|---|---|---|---|---|---|---|"]
    for (short, gpus, c), got in sorted(measured.items()):
        pick = doc["models"][short]["gpus"][str(gpus)]["pick"][str(c)]["layout"]
        best = max(got, key=got.get)
        if pick in got:
            share = got[pick] / got[best]
            verdict = "yes" if share >= 0.95 else "NO"
            picks.append(f"| {short} | {gpus} | {c} | {pick} | {best} | {share:.1%} | {verdict} |")
        else:
            picks.append(f"| {short} | {gpus} | {c} | {pick} | {best} | not measured | — |")
    return "\n".join([*notes, "Speed (prediction error = predicted / measured − 1):", "", *lines, "",
                      "Memory per process (one engine log):", "", *mem, "", "The planner's pick:", "", *picks])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--out", type=Path, help="write the predictions here (with today's date and the commit)")
    mode.add_argument("--check", type=Path, help="regenerate and compare with this file (exit 1 on a difference)")
    mode.add_argument("--markdown", type=Path, help="print the docs table of this file")
    mode.add_argument("--compare", type=Path, metavar="RUN_DIR",
                      help="a visit's run folder (visit_multigpu.sh's /tmp/mg) against --predictions")
    ap.add_argument("--predictions", type=Path, default=ROOT / "docs" / "validation" / "multigpu" / "predictions.json")
    args = ap.parse_args(argv)
    if args.compare:
        print(compare(json.loads(args.predictions.read_text()), args.compare))
        return 0
    os.environ["VLMCTL_CALIBRATION_DIR"] = str(ROOT / ".no-user-calibration")  # the profile's constants only
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return 0
    doc = predictions()
    if args.check:
        if not same_as_recorded(recorded_doc(args.check), doc):
            print(f"{args.check}: the planner now predicts something else than what was recorded", file=sys.stderr)
            return 1
        print(f"{args.check}: unchanged")
        return 0
    write_recorded(args.out, doc, "written before any multi-GPU run of these layouts existed (held out)")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
