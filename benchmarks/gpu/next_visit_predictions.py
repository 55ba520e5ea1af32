"""The planner's predictions for the next families visit, written before it runs (benchmarks/gpu/visit_families_next.sh):
Q05 (Qwen3.5-35B-A3B, the Qwen3.5-MoE start never measured), N01 (Qwen3-VL-8B, V1, 16 sequences, the 16,384-token
image: a profile whose peak the ViT pass sets) and `vlmctl serve --plan` of Qwen2-VL-7B (image and video requests).

Every row is held out: the Qwen3 tower's ViT factor (0.85) was fitted on Q02 and Q03 before this file was written, and
N01 is its check on another model of the tower (with deepstack). Per row: verdict, runner, weights / torch peak /
KV GiB, KV tokens, maximum concurrency and the cache layout; N01 also its two paths (ViT pass, LM path), whose larger
one is the predicted peak, and the claims the measurement decides. ``recorded`` names the commit of the planner.

    PYTHONPATH=src .venv/bin/python benchmarks/gpu/next_visit_predictions.py [--out FILE] [--check FILE]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "src"))
import compare_families as cf  # noqa: E402
import q35_predictions as q35  # noqa: E402
from family_folders import hub_id  # noqa: E402

OUT = ROOT / "docs" / "validation" / "families" / "next_visit_predictions.json"
PROBES = ("Q05_q35_35ba3b_default_eager_u90_L32k_s1024", "N01_8b_v1_eager_u90_L32k_s16_img1_vid0")
SERVES = ("Q2VL-7B",)
VIT_PROBE = "N01_8b_v1_eager_u90_L32k_s16_img1_vid0"
#: N01's torch peak decides the ViT factor's claim: within this fraction of the predicted ViT pass.
VIT_TOLERANCE = 0.10
#: F06 (Qwen3-VL-8B, V1, 1,024 sequences, the same image): its measured peak and its planned LM path (GiB).
F06_PEAK, F06_LM_PATH = 2.90, 2.79


def _configs() -> dict[str, dict]:
    return {c["name"]: c for c in json.loads((HERE / "families_configs.json").read_text())}


def vit_paths(row: dict) -> dict:
    """The V1 profile's two paths for one probe (GiB): the ViT pass and the LM path (encoder outputs, LM pass,
    sampler); the planner's torch peak is the larger."""
    from vlmctl.engines.vllm.v0_26 import FAMILY_CALIBRATIONS
    from vlmctl.models import catalog_entry
    from vlmctl.plan import memory as mem

    spec = catalog_entry(row["model"]).spec()
    eng = row["engine"]
    cal = FAMILY_CALIBRATIONS[("v1", spec.family.name)]
    step = spec.family.image_tokens(spec, 16777216)
    vit = mem.vit_peak_bytes(spec, step * mem.patches_per_token(spec), 1, cal)
    lm = mem.encoder_output_bytes(spec, step, "bfloat16") + mem.lm_activation_bytes(
        spec, tp=1, tokens=eng["max_num_batched_tokens"], seqs=eng["max_num_seqs"], last=True, cal=cal)
    return {"image_tokens": step, "vit_factor": cal.vit_factor, "vit_pass_gib": round(vit / cf.GIB, 3),
            "lm_path_gib": round(lm / cf.GIB, 3)}


def probe_rows() -> list[dict]:
    configs = _configs()
    rows = []
    for name in PROBES:
        cfg = configs[name]
        model = hub_id(cfg["model"])
        row = {"name": name, "model": model, "engine": cfg["engine"], "runner_asked": cfg["runner"]}
        p = cf.predict(row)
        pred = {k: p.get(k) for k in ("verdict", "runner", "weights_gib", "torch_peak_gib", "non_torch_gib",
                                      "available_kv_gib", "kv_blocks", "kv_tokens", "max_concurrency")}
        out = {"name": name, "kind": "probe", "model": model, "folder": cfg["model"], "runner_asked": cfg["runner"],
               "engine": cfg["engine"], "split": "held out", "predicted": pred | {"layout": q35.layout(model)}}
        if name == VIT_PROBE:
            paths = vit_paths(row)
            out["predicted"]["paths"] = paths
            lo, hi = (round(paths["vit_pass_gib"] * (1 + s * VIT_TOLERANCE), 2) for s in (-1, 1))
            out["claims"] = {
                "vit_sets_the_peak": f"predicted ViT pass {paths['vit_pass_gib']} GiB > LM path "
                                     f"{paths['lm_path_gib']} GiB",
                "vit_factor_holds": f"measured torch peak within ±{VIT_TOLERANCE:.0%} of the ViT pass: {lo}–{hi} GiB",
                "f06_was_its_lm_path": f"measured torch peak below F06's {F06_PEAK} GiB (same model, image and "
                                       f"runner at 1,024 sequences; F06's planned LM path {F06_LM_PATH} GiB)"}
        rows.append(out)
    return rows


def predictions() -> dict:
    rows = probe_rows() + q35.serve_rows(SERVES)
    return {"meta": {"written": "before the visit, from the committed planner (vLLM profile 0.26.0, h200:1)",
                     "fit": [], "held_out": [r["name"] for r in rows],
                     "fitted_before": "the Qwen3 tower's ViT factor 0.85 on Q02 and Q03 (seen once as held out)",
                     "target": "held-out KV tokens within ±3 %; start/fail verdicts 100 %; N01's claims",
                     "serve_plan_args": q35.SERVE_ARGS},
            "rows": rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help=f"write (default {OUT.relative_to(ROOT)})")
    ap.add_argument("--check", type=Path, default=None, help="regenerate and compare with this file (exit 1 on a difference)")
    args = ap.parse_args()
    doc = predictions()
    from provenance import recorded_doc, same_as_recorded, write_recorded

    if args.check:
        same = same_as_recorded(recorded_doc(args.check), doc)
        print("same as recorded" if same else f"differs from {args.check}: the planner moved since it was recorded")
        return 0 if same else 1
    write_recorded(args.out or OUT, doc, "written before any of these runs existed (held out)")
    for r in doc["rows"]:
        p = r["predicted"]
        print(f"{r['name']:48s} {r['split']:8s} {p['runner']} peak={p['torch_peak_gib']} kv={p['kv_tokens']} "
              f"conc={p['max_concurrency']} {p.get('paths', '')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
