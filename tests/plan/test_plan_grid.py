"""The planner's results over a grid (every catalog model × five GPU sets × four request kinds) stay what
plan_grid.json recorded: speeding the search up must not change a plan.

Each entry holds the SHA-256 of the result's canonical JSON and a summary to read a difference by. After a change
that is meant to alter plans, re-record and review the summaries' diff:

    PYTHONPATH=src python tests/plan/test_plan_grid.py --record
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from vlmctl.clusterspec import ClusterSpec
from vlmctl.models import CATALOG
from vlmctl.plan import make_plan

FIXTURE = Path(__file__).with_name("plan_grid.json")
CALIBRATION_DIR = "/nonexistent/vlmctl-calibration"
"""Findings name the per-user calibration file: the same (absent) folder when recording and testing."""
MIXED = ClusterSpec.model_validate({"nodes": [
    {"name": "turing-a", "gpu": "rtx-2080-ti", "gpu_count": 8},
    {"name": "turing-b", "gpu": "titan-rtx", "gpu_count": 8},
    {"name": "ampere", "gpu": "a100-40gb", "gpu_count": 8},
    {"name": "ada", "gpu": "l40s", "gpu_count": 8},
]})
GPU_SETS = {"h100-80gb:1": "h100-80gb:1", "h100-80gb:4": "h100-80gb:4",
            "rtx-2080-ti:8,rtx-2080-ti:8": "rtx-2080-ti:8,rtx-2080-ti:8", "h200:2,h200:2": "h200:2,h200:2",
            "4 nodes x 8 mixed": MIXED}
REQUESTS = {"default": {},
            "latency c32 image": {"prefer": "latency", "concurrency": 32, "workload": "image@1280x720"},
            "context": {"prefer": "context"},
            "c64 tpot<=20": {"concurrency": 64, "max_tpot_ms": 20.0}}


def _key(model: str, gpus: str, request: str) -> str:
    return f"{model} | {gpus} | {request}"


def _plan(model: str, gpus: str, request: str):
    where = GPU_SETS[gpus]
    kw = {"cluster": where} if isinstance(where, ClusterSpec) else {"gpus": where}
    return make_plan(model, **kw, **REQUESTS[request])


def _entry(result) -> dict:
    text = json.dumps(result.model_dump(mode="json"), sort_keys=True)
    p = result.plan
    return {"sha256": hashlib.sha256(text.encode()).hexdigest(), "ok": result.ok,
            "layout": f"DP {p.data_parallel_size} × TP {p.tensor_parallel_size} × PP {p.pipeline_parallel_size}"
            if p else None, "kv_tokens": p.kv_cache_tokens if p else None,
            "findings": sorted(f.id for f in result.findings)}


def _scenarios() -> list[tuple[str, str, str]]:
    return [(m, g, r) for m in CATALOG for g in GPU_SETS for r in REQUESTS]


def test_grid_covers_the_catalog():
    recorded = json.loads(FIXTURE.read_text())
    assert sorted(recorded) == sorted(_key(*s) for s in _scenarios()), "catalog or grid changed: re-record"


@pytest.mark.parametrize("model", list(CATALOG))
def test_plans_unchanged(model, monkeypatch):
    monkeypatch.setenv("VLMCTL_CALIBRATION_DIR", CALIBRATION_DIR)
    recorded = json.loads(FIXTURE.read_text())
    diffs = []
    for gpus in GPU_SETS:
        for request in REQUESTS:
            key = _key(model, gpus, request)
            now = _entry(_plan(model, gpus, request))
            if now != recorded.get(key):
                diffs.append(f"{key}: recorded {recorded.get(key)}, now {now}")
    assert not diffs, "\n".join(diffs)


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        raise SystemExit("usage: python tests/plan/test_plan_grid.py --record")
    import os

    os.environ["VLMCTL_CALIBRATION_DIR"] = CALIBRATION_DIR
    FIXTURE.write_text(json.dumps({_key(*s): _entry(_plan(*s)) for s in _scenarios()}, indent=1,
                                  ensure_ascii=False) + "\n")
    print(f"wrote {FIXTURE}")
