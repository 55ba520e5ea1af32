"""The planner against the measured Qwen3-VL and Qwen3.5 engine starts on the H200 (CPU-only regression test).

Re-plans every run of docs/validation/families/results.json with vLLM 0.26's profile and the Qwen3-VL calibration
rows (fitted on F01, F02, F03's weights, F06, F07, F11, and the tower's ViT factor on Q02 and Q03:
benchmarks/gpu/compare_families.py) and checks
docs/validation.md § 9's and § 13's targets: the runner vLLM used, the start verdict of every engine that reached its memory
profile, and KV tokens within ±3 % — on the held-out runs too.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks" / "gpu"))
from compare_families import VIT_ROWS, compare, load_runs  # noqa: E402


def test_every_measured_family_run_replans_within_3_percent():
    runs = load_runs()
    profiled = [r for r in runs if r.get("weights_gib") is not None]
    # the Qwen3.5 starts failed before the model was built (a package missing from the GPU bundle): outside
    # what a memory plan predicts, so they are only checked to have no memory figures
    assert all(r["verdict"] == "start_failed" for r in runs if r not in profiled)
    assert len(profiled) >= 10
    records = {r["name"]: r for r in compare(profiled)}
    assert [n for n, r in records.items() if r["verdict_measured"] != r["verdict_predicted"]] == []
    assert [n for n, r in records.items() if r["runner_measured"] != r["runner_predicted"]] == []
    errors = {n: r["kv_tokens_err_pct"] for n, r in records.items()}
    assert all(e is not None and abs(e) <= 3.0 for e in errors.values()), errors
    held_out = [n for n, r in records.items() if r["split"] == "held out"]
    assert len(held_out) >= 5 and max(abs(errors[n]) for n in held_out) <= 3.0


def test_qwen3_vl_vit_factor_is_the_fit_and_the_v2_reserve_uses_it():
    """The committed Qwen3-VL constants are what compare_families.fit derives from the measured runs; the V2 run-time
    reserve takes the V1-profiled factor (the same eager ViT pass) instead of Qwen2.5-VL's 1.70; every Qwen3-tower
    family shares it."""
    from compare_families import fit
    from vlmctl.engines.vllm.v0_26 import FAMILY_CALIBRATIONS, V2

    fitted = fit([r for r in load_runs() if r["verdict"] == "ready"])
    v1, v2 = FAMILY_CALIBRATIONS[("v1", "Qwen3-VL")], FAMILY_CALIBRATIONS[("v2", "Qwen3-VL")]
    assert v1.vit_factor == fitted["vit_factor"] == v2.vit_factor != V2.vit_factor
    assert {c.vit_factor for c in FAMILY_CALIBRATIONS.values()} == {fitted["vit_factor"]}
    assert (v1.lm_hidden_buffers, v1.lm_mlp_buffers, v1.sampler_bytes_per_logit) == (
        fitted["lm_hidden_buffers"], fitted["lm_mlp_buffers"], fitted["sampler_bytes_per_logit"])


def test_qwen3_5_hybrid_layout_and_held_out_runs():
    """Qwen3.5-27B on the H200: vLLM's cache layout (attention block, page, per-sequence state of one linear layer,
    groups) equals the planner's; maximum concurrency and KV tokens within ±3 % on the held-out runs, both with the
    predictions committed before the visit and with the current planner; the Qwen3.5 rows are Q01's fit. Q02 and Q03
    were held out for that check, then fitted the tower's ViT factor: their pre-visit predictions stay blind ones."""
    import json

    from compare_families import PREDICTIONS, fit_q35
    from vlmctl.engines.vllm.v0_26 import FAMILY_CALIBRATIONS

    runs = [r for r in load_runs() if r["name"].startswith("Q") and r.get("weights_gib") is not None]
    assert {r["name"][:3] for r in runs} >= {"Q01", "Q02", "Q03", "Q04"}
    records = {r["name"]: r for r in compare(runs)}
    block = {"_27b_": 784, "_35ba3b_": 1056}  # vLLM's "Setting attention block size to N tokens" per model
    for name, rec in records.items():
        m, p = rec["hybrid"]["measured"], rec["hybrid"]["predicted"]
        assert m["block_size"] == p["block_size"] == next(b for k, b in block.items() if k in name), name
        if m["page_bytes"] is not None:  # Q04 was stopped after its KV lines, before the layout dump
            assert (m["page_bytes"], m["state_bytes_per_layer"], m["groups"], m["layers_per_group"]) == (
                p["page_bytes"], p["state_bytes_per_layer"], p["groups"], p["layers_per_group"]), name
        assert abs(p["max_concurrency"] / m["max_concurrency"] - 1) <= 0.03, name
    held_out = [n for n, r in records.items() if r["split"] == "held out"]
    assert held_out == ["Q04_q35_27b_v2_eager_u85_L32k_s512_img1_vid0", "Q05_q35_35ba3b_default_eager_u90_L32k_s1024"]
    assert {n for n, r in records.items() if r["split"] == "fit"} == {"Q01_q35_27b_default_eager_u90_L32k_s1024",
                                                                      *VIT_ROWS}
    before = {r["name"]: r["predicted"]["kv_tokens"] for r in json.loads(PREDICTIONS.read_text())["rows"]}
    for name in (held_out[0], *VIT_ROWS):
        measured = records[name]["measured"]["kv_tokens"]
        assert abs(records[name]["kv_tokens_err_pct"]) <= 3.0 and abs(before[name] / measured - 1) <= 0.03, name
    fitted = fit_q35([r for r in load_runs() if r["verdict"] == "ready"])
    row = FAMILY_CALIBRATIONS[("v1", "Qwen3.5")]
    assert fitted["row"].startswith("Q01")
    assert row.weight_overhead_gib == fitted["weight_overhead_gib"]
    assert row.lm_activation_factor == round(fitted["lm_activation_factor"], 2)


def test_serve_plans_of_the_visit_replan_within_3_percent():
    """The two `vlmctl serve --plan` engines (Qwen3-VL-30B-A3B, Qwen3.5-27B): planned again from the same folders and
    arguments, KV tokens within ±3 % of what vLLM logged, and both answered an image and a video request."""
    import json

    import q35_predictions
    from compare_families import SERVES

    logged = {s["model"]: s for s in map(json.loads, SERVES.read_text().splitlines())}
    assert set(logged) == {"30B-A3B", "27B"}
    for row in q35_predictions.serve_rows():
        s = logged[row["folder"]]
        assert s["api"] == {"image": 200, "worst_video": 200}
        assert abs(row["predicted"]["kv_tokens"] / s["kv_tokens_logged"] - 1) <= 0.03, row["folder"]


def test_next_visit_runs_against_the_predictions_recorded_before_it():
    """The second families visit (N01: Qwen3-VL-8B whose peak is its ViT pass; Q05: Qwen3.5-35B-A3B, the first
    Qwen3.5-MoE start; the Qwen2-VL-7B `vlmctl serve --plan`), all held out: the recorded predictions and the current
    planner within ±3 % of vLLM's KV tokens, the verdicts and runners as predicted, N01's peak within ±10 % of the
    ViT-factor prediction, and the serve answering an image and a video request."""
    import json

    import next_visit_predictions
    from compare_families import SERVE_Q2VL

    recorded = {r["name"]: r for r in json.loads(next_visit_predictions.OUT.read_text())["rows"]}
    runs = {r["name"]: r for r in load_runs() if r["name"][:3] in ("N01", "Q05")}
    assert set(runs) == {n for n in recorded if not n.startswith("S_")}
    records = {r["name"]: r for r in compare(list(runs.values()))}
    for name, rec in records.items():
        before = recorded[name]["predicted"]
        assert rec["split"] == "held out" and recorded[name]["split"] == "held out", name
        assert rec["verdict_measured"] == before["verdict"] == rec["verdict_predicted"], name
        assert rec["runner_measured"] == before["runner"] == rec["runner_predicted"], name
        assert abs(before["kv_tokens"] / runs[name]["kv_tokens"] - 1) <= 0.03, name
        assert abs(rec["kv_tokens_err_pct"]) <= 3.0, name
    n01 = next(n for n in runs if n.startswith("N01"))
    assert abs(runs[n01]["torch_peak_gib"] / recorded[n01]["predicted"]["torch_peak_gib"] - 1) <= 0.10
    serve = json.loads(SERVE_Q2VL.read_text().strip())
    assert serve["api"] == {"image": 200, "worst_video": 200}
    assert abs(recorded["S_Q2VL-7B_serve_plan"]["predicted"]["kv_tokens"] / serve["kv_tokens_logged"] - 1) <= 0.03
