"""The planner next to the measured Qwen3-VL / Qwen3.5 engine starts (vLLM 0.26.0, one H200, dummy weights).

Reads the parsed runs (``docs/validation/families/results_*.json``, written on the GPU machine by calibrate.py
with benchmarks/gpu/families_configs.json), plans each configuration with ``vlmctl.plan.make_plan`` (same
model, length, limits, utilization, eager/graphs, runner — "default" lets the plan pick the runner vLLM
picks) and prints measured vs predicted per figure; ``--markdown`` prints the docs/validation.md table.

    .venv/bin/python benchmarks/gpu/compare_families.py [--markdown] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "validation" / "families"
MODELS = {"8B": "Qwen/Qwen3-VL-8B-Instruct", "32B": "Qwen/Qwen3-VL-32B-Instruct",
          "30B-A3B": "Qwen/Qwen3-VL-30B-A3B-Instruct", "27B": "Qwen/Qwen3.5-27B", "35B-A3B": "Qwen/Qwen3.5-35B-A3B"}
GPU = "h200:1"
#: Runs the family calibration rows were fitted on (engines/vllm/v0_26.py); every other run is held out.
TRAIN: set[str] = set()
FIELDS = ("weights_gib", "torch_peak_gib", "non_torch_gib", "cudagraph_estimate_gib", "available_kv_gib", "kv_tokens")


def load_runs(folder: Path = RESULTS) -> list[dict]:
    """Measured runs (parsed rows) with a start verdict, in file order."""
    rows = []
    for path in sorted(folder.glob("results_*.json")):
        rows += [r for r in json.loads(path.read_text()) if r.get("verdict") in ("ready", "start_failed")]
    return rows


def plan_kwargs(cfg: dict) -> dict:
    """make_plan settings equal to one measured engine configuration (vLLM's defaults where it left one unset)."""
    eng = cfg["engine"]
    kw = {"dtype": eng.get("dtype", "auto"), "gpu_memory_utilization": eng.get("gpu_memory_utilization", 0.92),
          "enforce_eager": bool(eng.get("enforce_eager", False)),
          "max_num_batched_tokens": eng.get("max_num_batched_tokens", 8192),
          "max_num_seqs": eng.get("max_num_seqs", 1024), "tensor_parallel_size": 1, "pipeline_parallel_size": 1,
          "max_model_len": eng.get("max_model_len", 262144),
          "limit_mm_per_prompt": {"image": 999, "video": 999} | eng.get("limit_mm_per_prompt", {}),
          "mm_processor_kwargs": eng.get("mm_processor_kwargs", {"max_pixels": 16777216}),
          "vllm_version": cfg.get("vllm_version", "0.26.0")}  # the release the GPU machine measures
    if cfg.get("runner") in ("v1", "v2"):
        kw["model_runner"] = cfg["runner"]
    if "enable_expert_parallel" in eng:
        kw["enable_expert_parallel"] = eng["enable_expert_parallel"]
    return kw


def predict(row: dict) -> dict:
    """The planner's figures for one measured configuration."""
    from vlmctl.plan import make_plan

    cfg = row["config"]
    res = make_plan(MODELS[cfg["model"]], gpus=GPU, **plan_kwargs(cfg))
    out = {"verdict": "ready" if res.ok else "start_failed", "runner": res.plan.model_runner if res.plan else None,
           "findings": sorted({f.id for f in res.findings if f.severity == "error"})}
    if res.plan is not None and res.plan.per_gpu:
        g = res.plan.per_gpu[0]
        out.update(weights_gib=g.weights_gib, torch_peak_gib=g.activation_gib, non_torch_gib=g.non_torch_gib,
                   cudagraph_estimate_gib=g.cudagraph_gib, available_kv_gib=g.kv_cache_gib, kv_blocks=g.kv_blocks,
                   kv_tokens=res.plan.kv_cache_tokens if res.ok else None)
    return out


def measured_blocks(row: dict) -> int | None:
    """num_blocks from the run's KV-layout dump (PROBE KVCFG), when it has one."""
    dump = row.get("kv_layout") or {}
    return dump.get("num_blocks") if isinstance(dump, dict) else None


def compare(rows: list[dict]) -> list[dict]:
    """One record per run: measured, predicted, KV-token error, verdict match."""
    out = []
    for r in rows:
        p = predict(r)
        m = {k: r.get(k) for k in FIELDS}
        m["cudagraph_estimate_gib"] = m["cudagraph_estimate_gib"] or 0.0
        err = None
        if m["kv_tokens"] and p.get("kv_tokens"):
            err = round(100.0 * (p["kv_tokens"] - m["kv_tokens"]) / m["kv_tokens"], 2)
        out.append({"name": r["name"], "model": r["config"]["model"], "split": "fit" if r["name"] in TRAIN else
                    "held out", "runner_measured": r.get("runner"), "runner_predicted": p.get("runner"),
                    "measured": m, "predicted": {k: p.get(k) for k in FIELDS},
                    "verdict_measured": r["verdict"], "verdict_predicted": p["verdict"], "kv_tokens_err_pct": err,
                    "findings": p["findings"], "failure": (r.get("failure") or "")[:160]})
    return out


def _fmt(x) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.2f}"
    if isinstance(x, int):
        return f"{x:,}"
    return str(x)


def markdown(records: list[dict]) -> str:
    head = ("| run | split | runner m/p | verdict m/p | weights GiB m/p | torch peak GiB m/p | non-torch m/p "
            "| graphs est. m/p | KV GiB m/p | KV tokens m/p | KV err % |")
    lines = [head, "|" + "---|" * 11]
    for r in records:
        m, p = r["measured"], r["predicted"]
        cells = [r["name"], r["split"], f"{r['runner_measured']}/{r['runner_predicted']}",
                 f"{r['verdict_measured']}/{r['verdict_predicted']}"]
        cells += [f"{_fmt(m.get(k))} / {_fmt(p.get(k))}" for k in FIELDS]
        cells.append(_fmt(r["kv_tokens_err_pct"]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    records = compare(load_runs(args.results))
    if args.json:
        args.json.write_text(json.dumps(records, indent=1) + "\n")
    if args.markdown:
        print(markdown(records))
    else:
        for r in records:
            print(json.dumps({k: r[k] for k in ("name", "verdict_measured", "verdict_predicted", "kv_tokens_err_pct")}
                             | {"m": r["measured"], "p": r["predicted"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
