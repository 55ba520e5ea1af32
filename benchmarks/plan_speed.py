"""Planner speed: every catalog model on five GPU sets; the median of N runs must be ≤ 100 ms for each.

GPU sets: one H100, 4 × H100, two nodes of 8 × RTX 2080 Ti, two nodes of 2 × H200, and a rack of 4 nodes × 8
mixed GPUs (2080 Ti, Titan RTX, A100-40GB, L40S). Each pair is planned once to warm up, then timed N times in
this process (make_plan: model lookup, search, ranking, explanation).

    python benchmarks/plan_speed.py [--runs 15] [--prefer throughput|latency|context] [--out artifacts/plan_speed.json]

``--prefer context`` is the slowest request kind: it sizes every pipeline depth.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.table import Table

from vlmctl.clusterspec import ClusterSpec
from vlmctl.models import CATALOG
from vlmctl.plan import make_plan
from provenance import git_commit

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = ClusterSpec.model_validate({"nodes": [
    {"name": "turing-a", "gpu": "rtx-2080-ti", "gpu_count": 8},
    {"name": "turing-b", "gpu": "titan-rtx", "gpu_count": 8},
    {"name": "ampere", "gpu": "a100-40gb", "gpu_count": 8},
    {"name": "ada", "gpu": "l40s", "gpu_count": 8},
]})
GPU_SETS: dict[str, dict] = {
    "1 × H100": {"gpus": "h100-80gb:1"},
    "4 × H100": {"gpus": "h100-80gb:4"},
    "2 × 8 2080 Ti": {"gpus": "rtx-2080-ti:8,rtx-2080-ti:8"},
    "2 × 2 H200": {"gpus": "h200:2,h200:2"},
    "4 × 8 mixed": {"cluster": CLUSTER},
}
TARGET_MS = 100.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--prefer", choices=("throughput", "latency", "context"), default="throughput")
    ap.add_argument("--out", default="artifacts/plan_speed.json")
    args = ap.parse_args()
    load_before = os.getloadavg()
    rows = []
    for model in CATALOG:
        for name, where in GPU_SETS.items():
            make_plan(model, **where, prefer=args.prefer)  # warm: imports, first-use caches
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                result = make_plan(model, **where, prefer=args.prefer)
                times.append((time.perf_counter() - t0) * 1000)
            p = result.plan
            rows.append({"model": model, "gpus": name, "median_ms": round(statistics.median(times), 1),
                         "max_ms": round(max(times), 1), "ok": result.ok,
                         "layout": f"{p.data_parallel_size} × {p.tensor_parallel_size} × {p.pipeline_parallel_size}"
                         if p else None, "kv_tokens": p.kv_cache_tokens if p else None})
    load_after = os.getloadavg()
    table = Table(title=f"vlmctl plan --prefer {args.prefer}: median ms of {args.runs} runs per model and GPU set "
                        f"(target ≤ {TARGET_MS:.0f} ms)")
    table.add_column("model")
    for name in GPU_SETS:
        table.add_column(name, justify="right")
    table.add_column("4 × 8 mixed: DP × TP × PP")
    by = {(r["model"], r["gpus"]): r for r in rows}
    for model in CATALOG:
        cells = [f"{by[model, n]['median_ms']:.1f}" for n in GPU_SETS]
        table.add_row(model.removeprefix("Qwen/"), *cells, str(by[model, "4 × 8 mixed"]["layout"]))
    Console(width=150).print(table)
    worst = max(rows, key=lambda r: r["median_ms"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "target_ms": TARGET_MS, "runs": args.runs, "prefer": args.prefer, "worst_median_ms": worst["median_ms"],
        "worst": f"{worst['model']} on {worst['gpus']}",
        "measured": {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": git_commit(),
                     "cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                     "load_average_1m": [round(load_before[0], 2), round(load_after[0], 2)]},
        "rows": rows}, indent=1, ensure_ascii=False) + "\n")
    ok = worst["median_ms"] <= TARGET_MS
    print(f"worst median {worst['median_ms']:.1f} ms ({worst['model']} on {worst['gpus']}) -> "
          f"{'PASS' if ok else 'FAIL'}; wrote {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
