"""Planner speed: 4 nodes × 8 mixed GPUs, every catalog model; median of N runs must be ≤ 100 ms.

    python benchmarks/plan_speed.py [--runs 15] [--out artifacts/plan_speed.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from vlmctl.clusterspec import ClusterSpec
from vlmctl.models import CATALOG
from vlmctl.plan import make_plan

CLUSTER = ClusterSpec.model_validate({"nodes": [
    {"name": "turing-a", "gpu": "rtx-2080-ti", "gpu_count": 8},
    {"name": "turing-b", "gpu": "titan-rtx", "gpu_count": 8},
    {"name": "ampere", "gpu": "a100-40gb", "gpu_count": 8},
    {"name": "ada", "gpu": "l40s", "gpu_count": 8},
]})
TARGET_MS = 100.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--out", default="artifacts/plan_speed.json")
    args = ap.parse_args()
    make_plan("Qwen/Qwen2.5-VL-3B-Instruct", cluster=CLUSTER)  # warm imports
    rows = []
    for model in CATALOG:
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            result = make_plan(model, cluster=CLUSTER)
            times.append((time.perf_counter() - t0) * 1000)
        p = result.plan
        rows.append({"model": model, "median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1),
                     "ok": result.ok, "dp": p.data_parallel_size if p else None, "tp": p.tensor_parallel_size if p else None,
                     "pp": p.pipeline_parallel_size if p else None, "kv_tokens": p.kv_cache_tokens if p else None})
    table = Table(title=f"vlmctl plan on 4 nodes × 8 mixed GPUs ({args.runs} runs each; target median ≤ {TARGET_MS:.0f} ms)")
    for col in ("model", "median ms", "max ms", "starts", "DP × TP × PP", "KV tokens"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["model"], f"{r['median_ms']:.1f}", f"{r['max_ms']:.1f}", str(r["ok"]),
                      f"{r['dp']} × {r['tp']} × {r['pp']}", f"{r['kv_tokens']:,}" if r["kv_tokens"] else "-")
    Console().print(table)
    worst = max(r["median_ms"] for r in rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"target_ms": TARGET_MS, "worst_median_ms": worst, "rows": rows}, indent=2))
    print(f"worst median {worst:.1f} ms -> {'PASS' if worst <= TARGET_MS else 'FAIL'}; wrote {out}")
    return 0 if worst <= TARGET_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
