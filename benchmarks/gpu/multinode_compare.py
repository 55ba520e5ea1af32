"""Per-rank memory of the multi-node runs (benchmarks/gpu/visit_multinode.sh) against the planner.

    python3 benchmarks/gpu/multinode_compare.py parse RUN_DIR... -o docs/validation/multinode_h100.json
    python3 benchmarks/gpu/multinode_compare.py table docs/validation/multinode_h100.json [--json out.json]

``parse`` reads each ``*_engine.log`` (vLLM 0.26, DEBUG, RAY_DEDUP_LOGS=0) and ``*_smi.csv`` of the run folders
and keeps, per worker (``Worker_PP<p>_TP<t>``): weights ("Model loading took"), the torch activation peak and the
non-torch increase of the memory profile, and the GPU memory NVML shows for that process once serving.
``table`` puts the planner's per-GPU weights and activation for the same layout beside them and prints the
errors. The ranks shared one GPU, so vLLM's non-torch and KV figures include the other ranks' memory: they are
listed, not compared (docs/validation.md § 7).
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_WORKER = re.compile(r"\(Worker(?:_PP(?P<pp>\d+))?(?:_TP(?P<tp>\d+))? pid=(?P<pid>\d+)\)")
_FIELDS = {
    "weights_gib": re.compile(r"Model loading took ([\d.]+) GiB"),
    "torch_peak_gib": re.compile(r"torch peak memory increase: ([\d.]+)GiB"),
    "non_torch_gib": re.compile(r"non-torch forward increase memory: ([\d.]+)GiB"),
    "available_kv_gib": re.compile(r"Available KV cache memory: ([\d.]+) GiB"),
}
_CONFIG = {
    "tp": re.compile(r"tensor_parallel_size=(\d+)"),
    "pp": re.compile(r"pipeline_parallel_size=(\d+)"),
    "max_model_len": re.compile(r"max_seq_len=(\d+)"),
    "eager": re.compile(r"enforce_eager=(True|False)"),
}


def parse_run(log: Path) -> dict:
    """One engine log (and the NVML CSV beside it) -> layout, KV tokens and per-worker figures."""
    text = _ANSI.sub("", log.read_text(errors="replace"))
    run: dict = {"tag": log.name.removesuffix("_engine.log")}
    for key, rx in _CONFIG.items():
        m = rx.search(text)
        run[key] = (m.group(1) == "True" if key == "eager" else int(m.group(1))) if m else None
    m = re.search(r"Requested memory: ([\d.]+) \(util\)", text)
    run["gpu_memory_utilization"] = float(m.group(1)) if m else None
    m = re.search(r"reserved ([\d.]+) GiB memory for KV Cache as specified by kv_cache_memory_bytes", text)
    run["kv_cache_memory_gib"] = float(m.group(1)) if m else None
    m = re.search(r"GPU KV cache size: ([\d,]+) tokens", text)
    run["kv_tokens"] = int(m.group(1).replace(",", "")) if m else None
    workers: dict[int, dict] = {}
    for line in text.splitlines():
        w = _WORKER.search(line)
        if not w:
            continue
        row = workers.setdefault(int(w["pid"]), {"pid": int(w["pid"]), "stage": 0, "tp_rank": 0})
        if w["pp"] or w["tp"]:  # early lines say only "(Worker pid=…)"
            row["stage"], row["tp_rank"] = int(w["pp"] or 0), int(w["tp"] or 0)
        for key, rx in _FIELDS.items():
            f = rx.search(line)
            if f and key not in row:
                row[key] = float(f.group(1))
    smi = log.with_name(f"{run['tag']}_smi.csv")
    if smi.exists():
        for rec in csv.reader(smi.read_text().splitlines()[1:]):
            pid, used = int(rec[0]), float(rec[1].split()[0])
            if pid in workers:
                workers[pid]["nvml_used_gib"] = round(used / 1024, 2)
    run["workers"] = sorted((w for w in workers.values() if "weights_gib" in w), key=lambda w: (w["stage"], w["tp_rank"]))
    return run


#: The release these runs used (docs/validation.md § 7).
MEASURED_VLLM = "0.26.0"


def predict(run: dict, model: str = "Qwen/Qwen2.5-VL-7B-Instruct", gpu: str = "h100-80gb") -> list[dict]:
    """The planner's per-GPU figures for the run's layout (one node of TP×PP GPUs: the memory per GPU is the same)."""
    from vlmctl.plan import make_plan

    tp, pp = run["tp"], run["pp"]
    res = make_plan(model, gpus=f"{gpu}:{tp * pp}", tensor_parallel_size=tp, pipeline_parallel_size=pp,
                    gpu_memory_utilization=run["gpu_memory_utilization"] or 0.9, enforce_eager=run["eager"],
                    max_model_len=run["max_model_len"], vllm_version=run.get("vllm_version") or MEASURED_VLLM)
    if res.plan is None:
        raise SystemExit(f"{run['tag']}: the planner gives no plan: {[f.message for f in res.findings]}")
    return [{"stage": g.stage, "tp_rank": g.tp_rank, "weights_gib": g.weights_gib, "activation_gib": g.activation_gib}
            for g in res.plan.per_gpu]


def compare(runs: list[dict]) -> list[dict]:
    """One row per measured worker with the planner's figures and the errors (GiB)."""
    rows = []
    for run in runs:
        pred = {(p["stage"], p["tp_rank"]): p for p in predict(run)}
        for w in run["workers"]:
            p = pred[(w["stage"], w["tp_rank"])]
            row = {"run": run["tag"], "layout": f"TP{run['tp']}xPP{run['pp']}", "stage": w["stage"],
                   "tp_rank": w["tp_rank"], "weights_pred": p["weights_gib"], "weights_meas": w["weights_gib"],
                   "act_pred": p["activation_gib"], "act_meas": w.get("torch_peak_gib"),
                   "non_torch_meas": w.get("non_torch_gib"), "nvml_used": w.get("nvml_used_gib")}
            row["weights_err"] = round(row["weights_meas"] - row["weights_pred"], 2)
            row["act_err"] = None if row["act_meas"] is None else round(row["act_meas"] - row["act_pred"], 2)
            rows.append(row)
    return rows


def _table(rows: list[dict]) -> str:
    head = ("layout", "stage", "tp", "weights pred", "meas", "act pred", "meas", "non-torch*", "NVML used*")
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in rows:
        vals = (r["layout"], r["stage"], r["tp_rank"], r["weights_pred"], r["weights_meas"], r["act_pred"],
                "-" if r["act_meas"] is None else r["act_meas"], r["non_torch_meas"] or "-", r["nvml_used"] or "-")
        lines.append(" | ".join(str(v) for v in vals))
    return "\n".join(f"| {line} |" for line in lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("parse")
    p.add_argument("dirs", nargs="+", type=Path)
    p.add_argument("-o", "--out", type=Path, required=True)
    t = sub.add_parser("table")
    t.add_argument("data", type=Path)
    t.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "parse":
        runs = [parse_run(log) for d in args.dirs for log in sorted(d.glob("*_engine.log"))]
        runs = [r for r in runs if r["workers"] and r["tp"]]
        args.out.write_text(json.dumps({"runs": runs}, indent=1) + "\n")
        print(f"{len(runs)} runs, {sum(len(r['workers']) for r in runs)} workers -> {args.out}")
        return 0
    rows = compare(json.loads(args.data.read_text())["runs"])
    print(_table(rows))
    w = max(abs(r["weights_err"]) for r in rows)
    acts = [abs(r["act_err"]) for r in rows if r["act_err"] is not None]
    print(f"\nweights: max |error| {w:.2f} GiB over {len(rows)} ranks; activation: max |error| "
          f"{max(acts):.2f} GiB over {len(acts)} ranks (* includes the other ranks sharing the GPU)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
