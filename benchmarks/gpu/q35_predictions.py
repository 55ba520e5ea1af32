"""The planner's predictions for the Qwen3.5 visit, written before it runs: every engine of batch Q
(benchmarks/gpu/families_configs.json) and both `vlmctl serve --plan` engines of visit_q35_serve.sh.

Per engine: verdict, runner, weights / torch peak / KV GiB, KV tokens and maximum concurrency (vLLM's two log
lines), and for the hybrids the cache layout vLLM 0.26 builds: attention block size after page-size unification,
page bytes, layers per group, state blocks per request and the per-sequence linear-attention state (conv + recurrent,
unpadded, over all linear layers). The split (which rows fit the Qwen3.5 terms, which are held out) is fixed here,
before any measurement.

    PYTHONPATH=src .venv/bin/python benchmarks/gpu/q35_predictions.py [--out docs/validation/families/q35_predictions.json]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "src"))
import compare_families as cf  # noqa: E402
from family_folders import FAMILIES  # noqa: E402

OUT = ROOT / "docs" / "validation" / "families" / "q35_predictions.json"
#: Fits the Qwen3.5 terms (weight overhead and the V1 profile's LM activation); everything else is held out.
FIT = ("Q01_q35_27b_default_eager_u90_L32k_s1024",)
#: Takes Q01's place (and leaves the held-out set) only if Q01 reports no memory profile (its first start compiles
#: the Triton gated-DeltaNet kernels and may run out of time).
FIT_FALLBACK = "Q02_q35_27b_default_eager_u90_L64k_s128_img2_vid1"
#: `vlmctl plan` arguments of visit_q35_serve.sh (the same line runs on the GPU machine).
SERVE_ARGS = ["--gpus", "h200:1", "--vllm-version", "0.26.0", "--enforce-eager", "--max-model-len", "16384",
              "--limit-mm-per-prompt", '{"image":2,"video":1}', "--json"]
SERVES = ("30B-A3B", "27B")


def layout(model: str, tp: int = 1, kv_bytes: int = 2) -> dict:
    """The cache layout the planner assumes for one GPU holding every layer (hybrids: block, groups, state)."""
    from vlmctl.models import catalog_entry
    from vlmctl.plan import memory as mem

    spec = catalog_entry(model).spec()
    shape = mem.cache_shape(spec, tp, kv_bytes, 0, spec.num_hidden_layers)
    out = {"block_size": shape["block_size"], "page_bytes_per_layer": shape["page"],
           "layers_per_group": shape["group_size"]}
    if shape["state_blocks"]:
        fam = spec.family
        per_layer = fam.linear_state_bytes(spec, tp, kv_bytes)
        linear = sum(1 for i in range(spec.num_hidden_layers) if spec.layer_type(i) != "full_attention")
        out |= {"linear_layers": linear, "full_attention_layers": spec.num_hidden_layers - linear,
                "state_bytes_per_layer_per_seq": per_layer, "state_bytes_per_seq": shape["state_bytes"],
                "state_blocks_per_request": shape["state_blocks"],
                "state_dtypes": {"conv": "bfloat16 (model dtype)", "recurrent": spec.linear_attention.ssm_dtype}}
    return out


def probe_rows(configs: Path) -> list[dict]:
    rows = []
    for cfg in json.loads(configs.read_text()):
        if cfg["batch"] != "Q":
            continue
        model = FAMILIES[cfg["model"]][0]
        row = {"name": cfg["name"], "model": model, "engine": cfg["engine"], "runner_asked": cfg["runner"]}
        p = cf.predict(row)
        res_concurrency = _concurrency(row)
        rows.append({"name": cfg["name"], "kind": "probe", "model": model, "folder": cfg["model"],
                     "runner_asked": cfg["runner"], "engine": cfg["engine"],
                     "split": "fit" if cfg["name"] in FIT else "held out",
                     "predicted": {k: p.get(k) for k in ("verdict", "runner", "weights_gib", "torch_peak_gib",
                                                         "non_torch_gib", "available_kv_gib", "kv_blocks",
                                                         "kv_tokens")}
                     | {"max_concurrency": res_concurrency, "layout": layout(model)}})
    return rows


def _concurrency(row: dict) -> float | None:
    from vlmctl.plan import make_plan

    res = make_plan(row["model"], gpus=cf.GPU, **cf.plan_kwargs(row))
    return res.plan.max_concurrency if res.ok and res.plan else None


def serve_rows(names: tuple[str, ...] = SERVES) -> list[dict]:
    """Plan the weight-less folders exactly as visit_q35_serve.sh does on the GPU machine."""
    import family_folders

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            folder = Path(tmp) / name
            family_folders.write(name, folder)
            plan_file = Path(tmp) / f"plan_{name}.json"
            subprocess.run([sys.executable, "-m", "vlmctl.cli.main", "plan", str(folder), *SERVE_ARGS,
                            "-o", str(plan_file)], check=True, capture_output=True, cwd=ROOT,
                           env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin", "NO_COLOR": "1"})
            plan = json.loads(plan_file.read_text())["plan"]
            g = plan["per_gpu"][0]
            model = family_folders.hub_id(name)
            rows.append({"name": f"S_{name}_serve_plan", "kind": "serve", "model": model, "folder": name,
                         "plan_args": SERVE_ARGS, "split": "held out",
                         "predicted": {"verdict": "ready", "runner": plan["model_runner"],
                                       "gpu_memory_utilization": plan["gpu_memory_utilization"],
                                       "weights_gib": g["weights_gib"], "torch_peak_gib": g["activation_gib"],
                                       "available_kv_gib": g["kv_cache_gib"], "kv_blocks": g["kv_blocks"],
                                       "kv_tokens": plan["kv_cache_tokens"],
                                       "max_concurrency": plan["max_concurrency"], "layout": layout(model)}})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", type=Path, default=HERE / "families_configs.json")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    rows = probe_rows(args.configs) + serve_rows()
    meta = {"written": "before the visit, from the committed planner (vLLM profile 0.26.0, h200:1)",
            "fit": list(FIT), "fit_fallback_if_fit_row_missing": FIT_FALLBACK, "held_out": [r["name"] for r in rows if r["split"] == "held out"],
            "target": "held-out KV tokens within ±3 %; start/fail verdicts 100 %",
            "fit_terms": "Qwen3.5 weight overhead and V1 LM activation, from the fit row only "
                         "(the others keep the committed constants)"}
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    for r in rows:
        p = r["predicted"]
        print(f"{r['name']:52s} {r['split']:8s} {p['runner']} kv={p['kv_tokens']} conc={p['max_concurrency']} "
              f"block={p['layout']['block_size']} state/seq={p['layout'].get('state_bytes_per_seq')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
