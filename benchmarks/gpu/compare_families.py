"""The planner next to the measured Qwen3-VL / Qwen3.5 engine starts (vLLM 0.26.0, one H200, dummy weights); fit the
families' calibration rows.

Reads ``docs/validation/families/results.json`` (benchmarks/gpu/families_results.py's output: one row per engine
with vLLM's memory lines parsed), plans each configuration with ``vlmctl.plan.make_plan`` (same model, length,
limits, utilization, eager/graphs; runner "default" lets the plan pick the one vLLM picks) and compares.

``--fit`` derives the uncertain terms from the ``TRAIN`` runs only, in this order, and prints them (they are
copied, rounded, into vlmctl/engines/vllm/v0_26.py ``FAMILY_CALIBRATIONS``):

1. weight overhead (buffers beyond parameters and deepstack buffers): F01 (8B), F03 (30B-A3B);
2. the LM pass's per-token buffers a (hidden) and b (MLP) of the dense decoder, V2 runner: F01 (8B) and F02 (32B)
   give two equations in a and b;
3. V1 runner (start-up profile with the vision encoder and the sampler): the sampler bytes per (row × vocab) from
   F07 (image budget 8192 tokens, so the LM path dominates) and the Qwen3 tower's ViT factor from Q02 and Q03
   (Qwen3.5-27B with the 16,384-token image at 128 and 64 sequences: the same peak, so the sampler does not set it
   and the ViT pass does; both rows were evaluated once as held out before they were used here). The first fit took
   the factor from F06, whose peak is its LM path (docs/validation.md § 13);
4. MoE: b over vLLM's fused-MoE workspace width from F11 (V2).

Every other run is held out. ``--markdown`` prints the docs/validation.md table.

    .venv/bin/python benchmarks/gpu/compare_families.py [--fit] [--markdown]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "validation" / "families" / "results.json"
GPU = "h200:1"
GIB = 1 << 30
#: the Qwen3 tower's ViT factor (step 3): held out once (docs/validation.md § 13), then fitted
VIT_ROWS = ("Q02_q35_27b_default_eager_u90_L64k_s128_img2_vid1", "Q03_q35_27b_default_graphs_u90_L32k_s64")
TRAIN = {"F01_8b_default_eager_u90_defaultlen", "F02_32b_default_eager_u90_L32k", "F03_30ba3b_default_eager_u90_L32k",
         "F06_8b_v1_eager_u90_defaultlen", "F07_8b_v1_eager_u80_L64k_img4_vid0_px1M", "F11_30ba3b_v2_eager_u90_L32k"}
#: F03 only fixes the MoE weight overhead (step 1); its torch peak and KV tokens are predicted, not fitted.
KV_FITTED = TRAIN - {"F03_30ba3b_default_eager_u90_L32k"}
#: Qwen3.5 (batch Q), named before the visit (docs/validation/families/q35_predictions.json): Q01 fits the family's
#: weight overhead and LM factor; Q02 takes its place only when Q01 has no memory profile.
Q35_FIT, Q35_FALLBACK = "Q01_q35_27b_default_eager_u90_L32k_s1024", "Q02_q35_27b_default_eager_u90_L64k_s128_img2_vid1"
FIELDS = ("weights_gib", "torch_peak_gib", "non_torch_gib", "available_kv_gib", "kv_tokens")


def load_runs(path: Path = RESULTS) -> list[dict]:
    """Every run that reached a verdict (rows marked not_run are left out)."""
    return [r for r in json.loads(path.read_text())["runs"] if r.get("verdict") in ("ready", "start_failed")]


def plan_kwargs(row: dict) -> dict:
    """make_plan settings equal to one measured engine (vLLM's defaults where the run left one unset)."""
    eng = row["engine"]
    kw = {"dtype": eng.get("dtype", "auto"), "gpu_memory_utilization": eng.get("gpu_memory_utilization", 0.92),
          "enforce_eager": bool(eng.get("enforce_eager", False)),
          "max_num_batched_tokens": eng.get("max_num_batched_tokens", 8192),
          "max_num_seqs": eng.get("max_num_seqs", 1024), "tensor_parallel_size": 1, "pipeline_parallel_size": 1,
          "max_model_len": eng.get("max_model_len", 262144),
          "limit_mm_per_prompt": {"image": 999, "video": 999} | eng.get("limit_mm_per_prompt", {}),
          "mm_processor_kwargs": eng.get("mm_processor_kwargs", {"max_pixels": 16777216}),
          "vllm_version": row.get("vllm_version") or "0.26.0"}  # the release the GPU machine measured
    if row.get("runner_asked") in ("v1", "v2"):
        kw["model_runner"] = row["runner_asked"]
    return kw


def predict(row: dict) -> dict:
    """The planner's figures for one measured configuration."""
    from vlmctl.plan import make_plan

    res = make_plan(row["model"], gpus=GPU, **plan_kwargs(row))
    out = {"verdict": "ready" if res.ok else "start_failed", "runner": res.plan.model_runner if res.plan else None,
           "findings": sorted({f.id for f in res.findings if f.severity == "error"})}
    if res.plan is not None and res.plan.per_gpu:
        g = res.plan.per_gpu[0]
        out.update(weights_gib=g.weights_gib, torch_peak_gib=g.activation_gib, non_torch_gib=g.non_torch_gib,
                   available_kv_gib=g.kv_cache_gib, kv_blocks=g.kv_blocks,
                   kv_tokens=res.plan.kv_cache_tokens if res.ok else None,
                   max_concurrency=res.plan.max_concurrency if res.ok else None)
    return out


def _spec(row: dict):
    from vlmctl.models import catalog_entry

    return catalog_entry(row["model"]).spec()


def fit(rows: list[dict]) -> dict:
    """The family terms from the TRAIN runs (steps 1–4 of the module docstring)."""
    from vlmctl.plan import memory as mem

    by = {r["name"]: r for r in rows}

    def unit_lm(row, a, b):  # LM pass bytes with factor 1 and the given per-token buffers
        s = _spec(row)
        t = row["engine"]["max_num_batched_tokens"]
        return 2 * t * (a * s.hidden_size + b * s.family.mlp_activation_width(s, 1))

    overhead = []
    for name in ("F01_8b_default_eager_u90_defaultlen", "F03_30ba3b_default_eager_u90_L32k"):
        r, s = by[name], _spec(by[name])
        buffers = s.family.persistent_buffer_bytes(s, r["engine"]["max_num_batched_tokens"], 2)
        overhead.append(r["weights_gib"] - (2 * s.total_params + buffers) / GIB)
    r8, r32 = by["F01_8b_default_eager_u90_defaultlen"], by["F02_32b_default_eager_u90_L32k"]
    s8, s32 = _spec(r8), _spec(r32)
    y8, y32 = (r["torch_peak_gib"] * GIB / (2 * r["engine"]["max_num_batched_tokens"]) for r in (r8, r32))
    # y = a·H + b·I for both models: two equations
    det = s8.hidden_size * s32.intermediate_size - s32.hidden_size * s8.intermediate_size
    a = (y8 * s32.intermediate_size - y32 * s8.intermediate_size) / det
    b = (s8.hidden_size * y32 - s32.hidden_size * y8) / det
    f07 = by["F07_8b_v1_eager_u80_L64k_img4_vid0_px1M"]
    s = _spec(f07)
    # F07's items (980 tokens) are smaller than the budget: the profiled encoder step is max_num_batched_tokens
    outputs = mem.encoder_output_bytes(s, f07["engine"]["max_num_batched_tokens"], "bfloat16")
    logits = min(f07["engine"]["max_num_seqs"], f07["engine"]["max_num_batched_tokens"]) * s.vocab_size
    sampler = (f07["torch_peak_gib"] * GIB - outputs - unit_lm(f07, a, b)) / logits
    vits = []
    for name in VIT_ROWS:  # the 16,384-token image (65,536 patches) is the profiled item
        sq = _spec(by[name])
        vits.append(by[name]["torch_peak_gib"] * GIB / sq.family.vit_peak_bytes(sq, 16384 * mem.patches_per_token(sq), 1))
    vit = sum(vits) / len(vits)
    f11 = by["F11_30ba3b_v2_eager_u90_L32k"]
    sm, t = _spec(f11), f11["engine"]["max_num_batched_tokens"]
    b_moe = (f11["torch_peak_gib"] * GIB / (2 * t) - a * sm.hidden_size) / sm.family.mlp_activation_width(sm, 1)
    return {"weight_overhead_gib": round(sum(overhead) / len(overhead), 2), "lm_hidden_buffers": round(a, 2),
            "lm_mlp_buffers": round(b, 2), "sampler_bytes_per_logit": round(sampler, 2), "vit_factor": round(vit, 2),
            "moe_lm_mlp_buffers": round(b_moe, 2)}


def q35_fit_row(rows: list[dict]) -> str | None:
    """The Qwen3.5 row that fits (Q01, else the fallback named with it), or None before the visit."""
    profiled = {r["name"] for r in rows if r.get("weights_gib") is not None}
    return next((n for n in (Q35_FIT, Q35_FALLBACK) if n in profiled), None)


def _plan_gpu(row: dict, constants) -> dict:
    from vlmctl.plan import make_plan

    res = make_plan(row["model"], gpus=GPU, constants=constants, **plan_kwargs(row))
    return res.plan.per_gpu[0].model_dump()


def fit_q35(rows: list[dict]) -> dict:
    """Qwen3.5's two terms from its fit row, on top of Qwen3-VL's V1 row (same tower, same sampler path): the
    weight overhead beyond parameters, then the LM pass factor that puts the V1 profile's torch peak on the
    measurement (the peak is linear in it while the LM path is the larger one)."""
    from dataclasses import replace

    from vlmctl.engines.vllm.v0_26 import FAMILY_CALIBRATIONS

    name = q35_fit_row(rows)
    if name is None:
        return {}
    row = next(r for r in rows if r["name"] == name)
    base = FAMILY_CALIBRATIONS[("v1", "Qwen3-VL")]
    overhead = row["weights_gib"] - _plan_gpu(row, replace(base, weight_overhead_gib=0.0))["weights_gib"]
    lo, hi = (_plan_gpu(row, replace(base, lm_activation_factor=f))["activation_gib"] for f in (0.0, 4.0))
    factor = 4.0 * (row["torch_peak_gib"] - lo) / (hi - lo)
    return {"row": name, "weight_overhead_gib": round(overhead, 2), "lm_activation_factor": round(factor, 3)}


def hybrid_layout(row: dict) -> dict | None:
    """Predicted vs logged cache layout of a hybrid run: attention block, page bytes, one linear layer's state per
    sequence (unpadded), KV-cache groups, blocks and maximum concurrency."""
    from vlmctl.models import catalog_entry
    from vlmctl.plan import memory as mem

    spec = catalog_entry(row["model"]).spec()
    if spec.linear_attention is None:
        return None
    shape = mem.cache_shape(spec, 1, 2, 0, spec.num_hidden_layers)
    pred = {"block_size": shape["block_size"], "page_bytes": shape["page"],
            "state_bytes_per_layer": spec.family.linear_state_bytes(spec, 1, 2),
            "groups": 1 + shape["state_blocks"], "layers_per_group": shape["group_size"]}
    lay = row.get("kv_layout") or {}
    attn = [g for g in lay.get("groups", []) if "Mamba" not in g["spec"]]
    state = [g for g in lay.get("groups", []) if "Mamba" in g["spec"]]
    meas = {"block_size": attn[0]["block_size"] if attn else row.get("attention_block_size_logged"),
            "page_bytes": attn[0]["page_size_bytes"] if attn else None,
            "state_bytes_per_layer": state[0].get("state_bytes_unpadded") if state else None,
            "groups": len(lay.get("groups", [])) or None,
            "layers_per_group": max((g["layers"] for g in lay.get("groups", [])), default=None),
            "num_blocks": lay.get("num_blocks")}
    return {"measured": meas, "predicted": pred}


def compare(rows: list[dict]) -> list[dict]:
    """One record per run: measured, predicted, KV-token error, verdict match, split (and for hybrids the cache
    layout and the maximum concurrency)."""
    out = []
    fitted = KV_FITTED | set(VIT_ROWS) | ({q35_fit_row(rows)} - {None})
    for r in rows:
        p = predict(r)
        m = {k: r.get(k) for k in FIELDS}
        err = None
        if m["kv_tokens"] and p.get("kv_tokens"):
            err = round(100.0 * (p["kv_tokens"] - m["kv_tokens"]) / m["kv_tokens"], 2)
        rec = {"name": r["name"], "model": r["model"], "split": "fit" if r["name"] in fitted else "held out",
               "runner_measured": r.get("runner_used"), "runner_predicted": p.get("runner"),
               "measured": m, "predicted": {k: p.get(k) for k in FIELDS},
               "verdict_measured": r["verdict"], "verdict_predicted": p["verdict"], "kv_tokens_err_pct": err,
               "findings": p["findings"]}
        layout = hybrid_layout(r)
        if layout is not None:
            layout["measured"]["max_concurrency"] = r.get("max_concurrency")
            layout["predicted"]["max_concurrency"] = p.get("max_concurrency")
            rec["hybrid"] = layout
        out.append(rec)
    return out


def markdown(records: list[dict]) -> str:
    from vlmctl.calibrate.fit import fmt_cell

    head = ("| run | split | runner m/p | verdict m/p | weights GiB m/p | torch peak GiB m/p | non-torch m/p "
            "| KV GiB m/p | KV tokens m/p | KV err % |")
    lines = [head, "|" + "---|" * 10]
    for r in records:
        m, p = r["measured"], r["predicted"]
        cells = [r["name"], r["split"], f"{r['runner_measured'] or '—'}/{r['runner_predicted'] or '—'}",
                 f"{r['verdict_measured']}/{r['verdict_predicted']}"]
        cells += [f"{fmt_cell(m.get(k))} / {fmt_cell(p.get(k))}" for k in FIELDS]
        cells.append(fmt_cell(r["kv_tokens_err_pct"]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_hybrid(records: list[dict]) -> str:
    """The hybrid runs' cache layout and concurrency, measured / predicted."""
    keys = ("block_size", "page_bytes", "state_bytes_per_layer", "groups", "layers_per_group", "max_concurrency")
    lines = ["| run | split | attention block | page B/layer | state B/layer/seq | groups | layers/group "
             "| max concurrency | blocks m |", "|" + "---|" * 9]
    for r in records:
        h = r.get("hybrid")
        if not h or r["verdict_measured"] != "ready":
            continue
        m, p = h["measured"], h["predicted"]
        cells = [r["name"], r["split"]] + [f"{m.get(k) if m.get(k) is not None else '—'} / {p.get(k)}" for k in keys]
        lines.append("| " + " | ".join(cells + [str(m.get("num_blocks") or "—")]) + " |")
    return "\n".join(lines)


PREDICTIONS = ROOT / "docs" / "validation" / "families" / "q35_predictions.json"
SERVES = ROOT / "docs" / "validation" / "families" / "serve_q35" / "summary.jsonl"
SERVE_Q2VL = ROOT / "docs" / "validation" / "families" / "serve_q2vl" / "summary.jsonl"


def _err(pred, meas) -> str:
    return f"{100.0 * (pred - meas) / meas:+.2f}" if pred and meas else "—"


def markdown_q35(records: list[dict], predictions: Path = PREDICTIONS, serves: Path = SERVES) -> str:
    """Qwen3.5 and the visit's serves: KV tokens measured, predicted before the visit (the committed predictions
    file) and predicted now (after the fit), with both errors."""
    before = {r["name"]: r for r in json.loads(predictions.read_text())["rows"]}
    now_serves = {}
    if serves.exists():
        import q35_predictions
        from parse_vllm_log import parse_log

        now_serves = {r["folder"]: r for r in q35_predictions.serve_rows()}
    lines = ["| run | split | runner m/p | verdict m/p | weights GiB m/p | torch peak GiB m/p | KV GiB m/p "
             "| KV tokens measured | before the visit (err %) | now (err %) | max concurrency m/p |", "|" + "---|" * 11]
    for r in records:
        if r["name"] not in before or r["verdict_measured"] != "ready":
            continue
        m, p, b = r["measured"], r["predicted"], before[r["name"]]["predicted"]
        conc = r.get("hybrid", {})
        cells = [r["name"], r["split"], f"{r['runner_measured']}/{r['runner_predicted']}",
                 f"{r['verdict_measured']}/{r['verdict_predicted']}"]
        cells += [f"{m.get(k)} / {p.get(k)}" for k in ("weights_gib", "torch_peak_gib", "available_kv_gib")]
        cells += [f"{m['kv_tokens']:,}", f"{b['kv_tokens']:,} ({_err(b['kv_tokens'], m['kv_tokens'])})",
                  f"{p['kv_tokens']:,} ({_err(p['kv_tokens'], m['kv_tokens'])})",
                  f"{conc.get('measured', {}).get('max_concurrency')} / {conc.get('predicted', {}).get('max_concurrency')}"]
        lines.append("| " + " | ".join(cells) + " |")
    for line in serves.read_text().splitlines() if serves.exists() else []:
        s = json.loads(line)
        name = f"S_{s['model']}_serve_plan"
        b, n = before[name]["predicted"], now_serves[s["model"]]["predicted"]
        api = ", ".join(f"{k} {v}" for k, v in s["api"].items())
        excerpt = serves.parent / f"engine_excerpt_{s['model']}.log"
        lg = parse_log(excerpt.read_text(errors="replace")) if excerpt.exists() else {}
        cells = [f"{name} (`vlmctl serve --plan`; API: {api})", "held out", f"{lg.get('runner', '—')}/{n['runner']}",
                 "ready/ready"]
        cells += [f"{lg.get(k, '—')} / {n[k]}" for k in ("weights_gib", "torch_peak_gib", "available_kv_gib")]
        cells += [f"{s['kv_tokens_logged']:,}", f"{b['kv_tokens']:,} ({_err(b['kv_tokens'], s['kv_tokens_logged'])})",
                 f"{n['kv_tokens']:,} ({_err(n['kv_tokens'], s['kv_tokens_logged'])})",
                 f"{s['max_concurrency_logged']} / {n['max_concurrency']}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--fit", action="store_true", help="print the terms fitted on the TRAIN runs")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--q35-markdown", action="store_true", help="the Qwen3.5 visit's table (before/after the fit)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    rows = load_runs(args.results)
    if args.fit:
        ready = [r for r in rows if r["verdict"] == "ready"]
        print(json.dumps(fit(ready) | {"qwen3_5": fit_q35(ready)}, indent=1))
    records = compare(rows)
    if args.q35_markdown:
        print(markdown_q35(records))
        print()
        print(markdown_hybrid(records))
    elif args.markdown:
        print(markdown(records))
        if any(r.get("hybrid") and r["verdict_measured"] == "ready" for r in records):
            print()
            print(markdown_hybrid(records))
    elif not args.fit:
        for r in records:
            print(json.dumps({k: r[k] for k in ("name", "split", "verdict_measured", "verdict_predicted",
                                                "kv_tokens_err_pct")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
