"""The planner's predictions next to measured vLLM runs; fit the planner's calibration constants.

Reads the parsed runs (``docs/validation/results/results_*.json``, written on the GPU machine by
calibrate.py), plans each configuration with ``vlmctl.plan.make_plan`` (same model, GPU, dtype, length,
limits, utilization, eager/graphs, model runner) and prints measured vs predicted for each figure.

``--fit``: fit the constants from the training runs only (``TRAIN`` below), then report the error on
every run with the fitted constants, marking which runs were held out. Writes JSON to ``--out``.

    .venv/bin/python benchmarks/gpu/compare_plan.py --fit --out artifacts/calibration.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import asdict, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "validation" / "results"
MODELS = {"3B": "Qwen/Qwen2.5-VL-3B-Instruct", "7B": "Qwen/Qwen2.5-VL-7B-Instruct",
          "32B": "Qwen/Qwen2.5-VL-32B-Instruct", "7B-AWQ": "Qwen/Qwen2.5-VL-7B-Instruct-AWQ"}
#: Runs the constants are fitted on; every other run is held out.
TRAIN = {"A1_v2_7b_bf16_eager_u90_default_worstvideo", "A2_v1_7b_bf16_eager_u90_default_worstvideo",
         "A4_v1_7b_bf16_eager_u90_L8k_img2_px1M", "A5_v1_7b_fp16_graphs_u92_L32k_img4_vid0",
         "A6_v2_3b_bf16_eager_u50_L32k_vid0", "B2_v1_3b_bf16_eager_u50_default",
         "B3_v1_32b_bf16_eager_u95_L8k_img1_vid0", "B5_v2_32b_bf16_eager_u95_L32k"}
GPU = "h100-80gb:1"
GIB = 1 << 30


def load_runs(folder: Path = RESULTS) -> list[dict]:
    """Measured runs (parsed rows) with a start verdict, in file order."""
    rows = []
    for path in sorted(folder.glob("results_*.json")):
        rows += [r for r in json.loads(path.read_text()) if r.get("verdict") in ("ready", "start_failed")
                 and r.get("weights_gib") is not None]
    return rows


def plan_kwargs(cfg: dict) -> dict:
    """make_plan settings equal to one measured engine configuration."""
    eng = cfg["engine"]
    kw = {"dtype": eng.get("dtype", "auto"), "gpu_memory_utilization": eng.get("gpu_memory_utilization", 0.92),
          "enforce_eager": bool(eng.get("enforce_eager", False)), "model_runner": cfg.get("runner", "v2"),
          "max_num_batched_tokens": eng.get("max_num_batched_tokens", 8192),
          "max_num_seqs": eng.get("max_num_seqs", 1024), "tensor_parallel_size": 1, "pipeline_parallel_size": 1,
          "vllm_version": cfg.get("vllm_version", "0.26.0")}
    kw["max_model_len"] = eng.get("max_model_len", 128000)  # vLLM derives 128000 when unset
    if "quantization" in eng:
        kw["quantization"] = eng["quantization"]
    # vLLM's defaults when the run left them unset (999 items per modality, the processor's max_pixels)
    kw["limit_mm_per_prompt"] = {"image": 999, "video": 999} | eng.get("limit_mm_per_prompt", {})
    kw["mm_processor_kwargs"] = eng.get("mm_processor_kwargs", {"max_pixels": 12845056})
    return kw


def predict(row: dict) -> dict:
    """The planner's figures for one measured configuration."""
    from vlmctl.plan import make_plan

    cfg = row["config"]
    res = make_plan(MODELS[cfg["model"]], gpus=GPU, **plan_kwargs(cfg))
    out = {"verdict": "ready" if res.ok else "start_failed",
           "findings": sorted({f.id for f in res.findings})}
    if res.plan is not None and res.plan.per_gpu:
        g = res.plan.per_gpu[0]
        out.update(weights_gib=g.weights_gib, torch_peak_gib=g.activation_gib, non_torch_gib=g.non_torch_gib,
                   cudagraph_estimate_gib=g.cudagraph_gib, available_kv_gib=g.kv_cache_gib,
                   encoder_runtime_gib=g.encoder_runtime_gib,
                   kv_tokens=res.plan.kv_cache_tokens if res.ok else None,
                   max_concurrency=res.plan.max_concurrency if res.ok else None,
                   encoder_tokens=res.plan.media_limits.encoder_tokens if res.plan.media_limits else None)
    out["worst_request_oom"] = "encoder-runtime-oom" in out["findings"]
    return out


# ---- fitting --------------------------------------------------------------------------------------

def _terms(row: dict) -> dict:
    """Analytic pieces for one run at unit factors: LM pass, sampler rows×vocab, ViT bytes, encoder outputs."""
    from vlmctl.models import catalog_entry
    from vlmctl.plan import memory as mem
    from vlmctl.plan.calibration import calibration

    cfg = row["config"]
    spec = catalog_entry(MODELS[cfg["model"]]).spec()
    eng = cfg["engine"]
    unit = replace(calibration("0.26.0", "v1"), lm_activation_factor=1.0, sampler_bytes_per_logit=0.0, vit_factor=1.0)
    T, S = eng.get("max_num_batched_tokens", 8192), eng.get("max_num_seqs", 1024)
    lm = mem.lm_activation_bytes(spec, tp=1, tokens=T, seqs=S, last=True, cal=unit)
    step = predict_encoder_tokens(row)
    patches = step * mem.patches_per_token(spec)
    return {"lm": lm, "logits": min(S, T) * spec.vocab_size, "vit": mem.vit_peak_bytes(spec, patches, 1, unit),
            "outputs": mem.encoder_output_bytes(spec, step, eng.get("dtype", "bfloat16")), "patches": patches}


def predict_encoder_tokens(row: dict) -> int:
    """Encoder tokens of the profile step (the measured budget line when vLLM logged one)."""
    if row.get("encoder_budget_tokens"):
        return row["encoder_budget_tokens"]
    return predict(row).get("encoder_tokens") or 0


def fit(rows: list[dict], base) -> dict:
    """Fit the constants of ``base`` (V2 calibration) from the TRAIN rows; returns {runner: Calibration}."""
    train = [r for r in rows if r["name"] in TRAIN and r.get("verdict") == "ready"]
    non_torch = round(statistics.mean(r["non_torch_gib"] for r in train), 2)
    overhead = []
    for r in train:
        p = predict(r)
        overhead.append(r["weights_gib"] - (p["weights_gib"] - base.weight_overhead_gib))
    weight_overhead = round(statistics.mean(overhead), 2)
    v2 = [r for r in train if r["config"]["runner"] == "v2"]
    lm_factor = round(statistics.mean(r["torch_peak_gib"] * GIB / _terms(r)["lm"] for r in v2), 3)
    v1 = [r for r in train if r["config"]["runner"] == "v1"]
    vit_rows, lm_rows = [], []
    for r in v1:
        t = _terms(r)
        (vit_rows if t["vit"] > lm_factor * t["lm"] + 1.0 * GIB else lm_rows).append((r, t))
    vit_factor = round(statistics.mean(r["torch_peak_gib"] * GIB / t["vit"] for r, t in vit_rows), 3)
    sampler = round(statistics.mean((r["torch_peak_gib"] * GIB - t["outputs"] - lm_factor * t["lm"]) / t["logits"]
                                    for r, t in lm_rows), 2)
    graphs = [r["cudagraph_estimate_gib"] for r in v1 if r.get("cudagraph_estimate_gib")]
    cuda_ctx = round(statistics.mean(79.18 - r["init_free_gib"] for r in train if r.get("init_free_gib")), 2)
    # V2's vit_factor only sizes the run-time reserve: it comes from the API runs (docs/validation.md § 2), kept as is
    common = dict(weight_overhead_gib=weight_overhead, non_torch_gib=non_torch, cuda_context_gib=cuda_ctx,
                  lm_activation_factor=lm_factor)
    return {
        "v2": replace(base, **common, sampler_bytes_per_logit=0.0, cudagraph_gib=0.0),
        "v1": replace(base, **common, model_runner="v1", encoder_in_profile=True, vit_factor=vit_factor,
                      sampler_bytes_per_logit=sampler, cudagraph_gib=round(statistics.mean(graphs), 2) if graphs else base.cudagraph_gib),
        "fit_rows": {"vit": [r["name"] for r, _ in vit_rows], "sampler": [r["name"] for r, _ in lm_rows],
                     "lm": [r["name"] for r in v2]},
    }


FIELDS = ("weights_gib", "torch_peak_gib", "non_torch_gib", "cudagraph_estimate_gib", "available_kv_gib", "kv_tokens")


def compare(rows: list[dict]) -> list[dict]:
    """One record per run: measured, predicted, relative KV-token error, verdict match."""
    out = []
    for r in rows:
        p = predict(r)
        m = {k: r.get(k) for k in FIELDS}
        m["cudagraph_estimate_gib"] = m["cudagraph_estimate_gib"] or 0.0
        err = None
        if m["kv_tokens"] and p.get("kv_tokens"):
            err = round(100.0 * (p["kv_tokens"] - m["kv_tokens"]) / m["kv_tokens"], 2)
        req = r.get("requests", {})
        worst = req.get("worst_video")
        out.append({"name": r["name"], "split": "fit" if r["name"] in TRAIN else "held out",
                    "runner": r["config"]["runner"], "measured": m, "predicted": {k: p.get(k) for k in FIELDS},
                    "verdict_measured": r["verdict"], "verdict_predicted": p["verdict"],
                    "kv_tokens_err_pct": err,
                    "worst_video_measured": None if worst is None else ("ok" if worst.startswith("ok") else "OOM"),
                    "worst_video_predicted": None if worst is None else ("OOM" if p["worst_request_oom"] else "ok"),
                    "findings": p["findings"]})
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
    """The validation table: measured / predicted per figure."""
    head = ("| run | split | verdict m/p | weights GiB m/p | torch peak GiB m/p | non-torch m/p | graphs est. m/p "
            "| KV GiB m/p | KV tokens m/p | KV err % |")
    lines = [head, "|" + "---|" * 10]
    for r in records:
        m, p = r["measured"], r["predicted"]
        cells = [r["name"], r["split"], f"{r['verdict_measured']}/{r['verdict_predicted']}"]
        for k in FIELDS:
            cells.append(f"{_fmt(m.get(k))} / {_fmt(p.get(k))}")
        cells.append(_fmt(r["kv_tokens_err_pct"]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--fit", action="store_true", help="fit constants on TRAIN runs, evaluate with them")
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "calibration.json")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from vlmctl.engines.vllm import profile

    rows = load_runs(args.results)
    report: dict = {"runs": len(rows)}
    if args.fit:
        engine = profile("0.26.0")
        fitted = fit(rows, engine.calibration("v2"))
        engine.calibrations.update(v2=fitted["v2"], v1=fitted["v1"])
        report["fitted"] = {k: asdict(v) for k, v in fitted.items() if k in ("v1", "v2")}
        report["fit_rows"] = fitted["fit_rows"]
        print(json.dumps(report["fitted"], indent=1))
    records = compare(rows)
    report["records"] = records
    held = [r for r in records if r["split"] == "held out"]
    errs = [abs(r["kv_tokens_err_pct"]) for r in held if r["kv_tokens_err_pct"] is not None]
    report["held_out_max_abs_kv_err_pct"] = max(errs) if errs else None
    report["verdict_mismatches"] = [r["name"] for r in records if r["verdict_measured"] != r["verdict_predicted"]]
    report["worst_video_mismatches"] = [r["name"] for r in records
                                        if r["worst_video_measured"] != r["worst_video_predicted"]]
    print(markdown(records))
    print(f"\nheld-out max |KV tokens error|: {report['held_out_max_abs_kv_err_pct']} %; verdict mismatches: "
          f"{report['verdict_mismatches']}; worst-video mismatches: {report['worst_video_mismatches']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
