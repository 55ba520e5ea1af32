"""Predictions at given constants, the fit of a profile's constants to measured engines, and the table.

A *row* is one measured engine: ``config`` (name, model, runner, engine = vLLM's settings) plus the figures
:func:`vlmctl.calibrate.logs.parse_log` read from its log. The fit is the one docs/validation.md describes:

- weight overhead = measured weights − the planner's raw weights; non-torch = mean measured; CUDA context = total −
  free at start;
- LM activation factor = torch peak ÷ the analytic LM pass, on runs whose profile is the LM pass alone (a runner that
  profiles neither encoder nor sampler, or no media and a negligible sampler);
- ViT factor = torch peak ÷ the analytic ViT peak, on runs whose profile the vision encoder dominates;
- sampler bytes per (row × vocab) = what the rest of the peak leaves on the other runs of a runner that profiles it;
- CUDA-graph estimate = the mean logged estimate (runners that subtract one).

Only constants a run measured are fitted; the others keep the profile's values (``RunnerConstants.fitted`` says which).
The fit does not depend on the constants it starts from.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace
from typing import Callable

from vlmctl.engines.vllm import GIB, Calibration, VllmProfile

#: Measured figures compared per run.
FIELDS = ("weights_gib", "torch_peak_gib", "non_torch_gib", "cudagraph_estimate_gib", "available_kv_gib", "kv_tokens")


@dataclass
class Target:
    """Where the measured engines ran and how to find each row's model."""

    gpu: str
    """GPU catalog id (``h100-80gb``) or ``id:total_gib:cc`` for one the catalog lacks."""
    model_of: Callable[[dict], str]
    """Row config → model (catalog id or folder) to plan with."""


def _cluster(target: Target):
    from vlmctl.clusterspec import ClusterSpec

    gpu, _, rest = target.gpu.partition(":")
    node: dict = {"name": "gpu", "gpu": gpu, "gpu_count": 1}
    if rest:
        total, _, cc = rest.partition(":")
        node["total_gib"] = float(total)
        if cc:
            node["compute_capability"] = cc
    return ClusterSpec.model_validate({"name": "calibrate", "nodes": [node]})


def plan_settings(row: dict, engine: VllmProfile, derived_max_model_len: int | None = None) -> dict:
    """make_plan settings equal to one measured engine (vLLM's defaults where the run left one unset: the derived
    max_model_len, not a fitted one)."""
    cfg = row["config"]
    eng = cfg["engine"]
    kw = {"dtype": eng.get("dtype", "auto"), "gpu_memory_utilization": eng.get("gpu_memory_utilization",
                                                                                engine.default_utilization),
          "enforce_eager": bool(eng.get("enforce_eager", False)), "model_runner": cfg.get("runner"),
          "tensor_parallel_size": 1, "pipeline_parallel_size": 1,
          "vllm_version": row.get("vllm_version") or engine.version,
          "limit_mm_per_prompt": {m: engine.default_mm_limit for m in ("image", "video")}
          | dict(eng.get("limit_mm_per_prompt", {}))}
    for key in ("max_num_batched_tokens", "max_num_seqs", "max_model_len", "quantization", "mm_processor_kwargs",
                "mm_encoder_tp_mode"):
        if key in eng:
            kw[key] = eng[key]
    kw.setdefault("mm_processor_kwargs", {})
    if derived_max_model_len and "max_model_len" not in kw:
        kw["max_model_len"] = derived_max_model_len
    if kw["model_runner"] is None:
        del kw["model_runner"]
    return kw


class Predictor:
    """Plans each measured configuration with given constants (memoised per row and constants)."""

    def __init__(self, engine: VllmProfile, target: Target) -> None:
        self.engine, self.target = engine, target
        self._cluster = _cluster(target)
        self._memo: dict = {}

    def plan(self, row: dict, cal: Calibration):
        key = (row["name"], cal)
        if key not in self._memo:
            from vlmctl.plan import make_plan

            model = self.target.model_of(row["config"])
            self._memo[key] = make_plan(model, cluster=self._cluster, constants=cal,
                                        **plan_settings(row, self.engine, self.spec(row).derived_max_model_len))
        return self._memo[key]

    def spec(self, row: dict):
        """The model spec of a row's configuration."""
        from vlmctl.models.loader import load_model_spec

        return load_model_spec(self.target.model_of(row["config"]))

    def predict(self, row: dict, cal: Calibration) -> dict:
        """The planner's figures for one row."""
        res = self.plan(row, cal)
        out = {"verdict": "ready" if res.ok else "start_failed", "findings": sorted({f.id for f in res.findings})}
        if res.plan is not None and res.plan.per_gpu:
            g = res.plan.per_gpu[0]
            out.update(weights_gib=g.weights_gib, torch_peak_gib=g.activation_gib, non_torch_gib=g.non_torch_gib,
                       cudagraph_estimate_gib=g.cudagraph_gib, available_kv_gib=g.kv_cache_gib,
                       encoder_runtime_gib=g.encoder_runtime_gib, total_gib=g.total_gib,
                       kv_tokens=res.plan.kv_cache_tokens if res.ok else None,
                       encoder_tokens=res.plan.media_limits.encoder_tokens)
        out["worst_request_oom"] = "encoder-runtime-oom" in out["findings"]
        return out

    def terms(self, row: dict, cal: Calibration) -> dict:
        """Analytic pieces at unit factors (bytes): raw weights, LM pass, rows × vocab, ViT peak, encoder outputs."""
        from vlmctl.plan import memory as mem

        spec = self.spec(row)
        unit = replace(cal, lm_activation_factor=1.0, sampler_bytes_per_logit=0.0, vit_factor=1.0,
                       weight_overhead_gib=0.0)
        settings = plan_settings(row, self.engine, spec.derived_max_model_len)
        bare = self.predict(row, unit)
        tokens = settings.get("max_num_batched_tokens") or self.engine.batch_defaults.fallback[0]
        seqs = settings.get("max_num_seqs") or self.engine.batch_defaults.fallback[1]
        step = row.get("encoder_budget_tokens") or bare.get("encoder_tokens") or 0
        limits = settings["limit_mm_per_prompt"]
        if not any(limits.values()):
            step = 0
        patches = step * mem.patches_per_token(spec)
        dtype = settings["dtype"] if settings["dtype"] != "auto" else "bfloat16"
        return {"weights": (bare.get("weights_gib") or 0.0) * GIB,
                "lm": mem.lm_activation_bytes(spec, tp=1, tokens=tokens, seqs=seqs, last=True, cal=unit),
                "logits": min(seqs, tokens) * spec.vocab_size,
                "vit": mem.vit_peak_bytes(spec, patches, 1, unit) if step else 0.0,
                "outputs": mem.encoder_output_bytes(spec, step, dtype) if step else 0.0,
                "total_gib": bare.get("total_gib")}


@dataclass
class Fitted:
    """Fitted constants per runner, which constants each run informed, and what was carried over."""

    calibrations: dict[str, Calibration]
    fitted: dict[str, list[str]]
    """Runner → constants measured by the fit."""
    used: dict[str, list[str]] = field(default_factory=dict)
    """Constant → names of the runs it was fitted on."""


def _mean(values: list[float], digits: int) -> float | None:
    return round(statistics.mean(values), digits) if values else None


def fit(rows: list[dict], engine: VllmProfile, target: Target, fit_on: set[str] | None = None,
        base: dict[str, Calibration] | None = None) -> Fitted:
    """Fit ``engine``'s constants on the ready ``rows`` named in ``fit_on`` (all ready rows when None).

    ``base`` gives the constants of each runner that the runs cannot measure (default: the profile's).
    """
    base = dict(base or engine.calibrations)
    predictor = Predictor(engine, target)
    train = [r for r in rows if r.get("verdict") == "ready" and r.get("weights_gib") is not None
             and (fit_on is None or r["name"] in fit_on)]
    used: dict[str, list[str]] = {}
    terms = {r["name"]: predictor.terms(r, base[_runner(r, engine)]) for r in train}

    def note(constant: str, rs: list[dict]) -> None:
        if rs:
            used[constant] = [r["name"] for r in rs]

    common: dict[str, float] = {}
    value = _mean([r["weights_gib"] - terms[r["name"]]["weights"] / GIB for r in train], 2)
    if value is not None:
        common["weight_overhead_gib"] = value
        note("weight_overhead_gib", train)
    rs = [r for r in train if r.get("non_torch_gib") is not None]
    if (value := _mean([r["non_torch_gib"] for r in rs], 2)) is not None:
        common["non_torch_gib"] = value
        note("non_torch_gib", rs)
    rs = [r for r in train if r.get("init_free_gib") is not None and terms[r["name"]]["total_gib"]]
    if (value := _mean([terms[r["name"]]["total_gib"] - r["init_free_gib"] for r in rs], 2)) is not None:
        common["cuda_context_gib"] = value
        note("cuda_context_gib", rs)

    def runner_of(r: dict):
        return engine.runners[_runner(r, engine)]

    def media(r: dict) -> bool:
        return terms[r["name"]]["vit"] > 0

    peaked = [r for r in train if r.get("torch_peak_gib") is not None]
    lm_rows = [r for r in peaked if not (runner_of(r).profiles_encoder and media(r))
               and (not runner_of(r).profiles_sampler
                    or base[_runner(r, engine)].sampler_bytes_per_logit * terms[r["name"]]["logits"]
                    < 0.02 * r["torch_peak_gib"] * GIB)]
    lm_factor = _mean([r["torch_peak_gib"] * GIB / terms[r["name"]]["lm"] for r in lm_rows], 3)
    if lm_factor is not None:
        common["lm_activation_factor"] = lm_factor
        note("lm_activation_factor", lm_rows)
    a = lm_factor if lm_factor is not None else base[engine.default_runner].lm_activation_factor
    vit_rows = [r for r in peaked if runner_of(r).profiles_encoder and media(r)
                and terms[r["name"]]["vit"] > a * terms[r["name"]]["lm"] + GIB]
    sampler_rows = [r for r in peaked if runner_of(r).profiles_sampler and r not in lm_rows and r not in vit_rows]

    calibrations: dict[str, Calibration] = {}
    fitted: dict[str, list[str]] = {}
    for name, runner in engine.runners.items():
        own: dict[str, float] = dict(common)
        mine = [r for r in vit_rows if _runner(r, engine) == name]
        if (value := _mean([r["torch_peak_gib"] * GIB / terms[r["name"]]["vit"] for r in mine], 3)) is not None:
            own["vit_factor"] = value
            note(f"vit_factor ({name})", mine)
        mine = [r for r in sampler_rows if _runner(r, engine) == name]
        value = _mean([(r["torch_peak_gib"] * GIB - terms[r["name"]]["outputs"] - a * terms[r["name"]]["lm"])
                       / terms[r["name"]]["logits"] for r in mine], 2)
        if value is not None:
            own["sampler_bytes_per_logit"] = value
            note(f"sampler_bytes_per_logit ({name})", mine)
        mine = [r for r in train if _runner(r, engine) == name and runner.estimates_cudagraphs
                and r.get("cudagraph_estimate_gib")]
        if (value := _mean([r["cudagraph_estimate_gib"] for r in mine], 2)) is not None:
            own["cudagraph_gib"] = value
            note(f"cudagraph_gib ({name})", mine)
        cal = base[name]
        fitted[name] = sorted(own)
        # what the runner's start-up does not do is zero by vLLM's source, not by measurement
        if not runner.profiles_sampler:
            own["sampler_bytes_per_logit"] = 0.0
        if not runner.estimates_cudagraphs:
            own["cudagraph_gib"] = 0.0
        calibrations[name] = replace(cal, **own, unmeasured=tuple(c for c in cal.unmeasured if c not in own))
    return Fitted(calibrations, fitted, used)


def _runner(row: dict, engine: VllmProfile) -> str:
    return row["config"].get("runner") or row.get("runner") or engine.default_runner


def compare(rows: list[dict], engine: VllmProfile, target: Target, calibrations: dict[str, Calibration],
            fit_on: set[str] | None = None) -> list[dict]:
    """One record per run: measured and predicted figures, the KV-token error, the verdicts."""
    predictor = Predictor(engine, target)
    out = []
    for r in rows:
        if r.get("verdict") not in ("ready", "start_failed") or r.get("weights_gib") is None:
            continue
        p = predictor.predict(r, calibrations[_runner(r, engine)])
        measured = {k: r.get(k) for k in FIELDS}
        measured["cudagraph_estimate_gib"] = measured["cudagraph_estimate_gib"] or 0.0
        err = None
        if measured["kv_tokens"] and p.get("kv_tokens"):
            err = round(100.0 * (p["kv_tokens"] - measured["kv_tokens"]) / measured["kv_tokens"], 2)
        worst = r.get("requests", {}).get("worst_video")
        out.append({"name": r["name"], "split": "fit" if fit_on is None or r["name"] in fit_on else "held out",
                    "runner": _runner(r, engine), "measured": measured, "predicted": {k: p.get(k) for k in FIELDS},
                    "verdict_measured": r["verdict"], "verdict_predicted": p["verdict"], "kv_tokens_err_pct": err,
                    "worst_video_measured": None if worst is None else ("ok" if worst.startswith("ok") else "OOM"),
                    "worst_video_predicted": None if worst is None else ("OOM" if p["worst_request_oom"] else "ok"),
                    "findings": p["findings"]})
    return out


def fmt_cell(x) -> str:
    """One table cell: — for None, floats to 2 places, integers with thousands separators."""
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
        cells += [f"{fmt_cell(m.get(k))} / {fmt_cell(p.get(k))}" for k in FIELDS]
        cells.append(fmt_cell(r["kv_tokens_err_pct"]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def before_after(before: list[dict], after: list[dict]) -> list[dict]:
    """One row per run: measured KV tokens and torch peak, predicted before and after the fit, errors."""
    by_name = {r["name"]: r for r in before}
    out = []
    for r in after:
        b = by_name.get(r["name"], {})
        out.append({"name": r["name"], "split": r["split"], "runner": r["runner"],
                    "kv_measured": r["measured"]["kv_tokens"], "kv_before": b.get("predicted", {}).get("kv_tokens"),
                    "err_before_pct": b.get("kv_tokens_err_pct"), "kv_after": r["predicted"]["kv_tokens"],
                    "err_after_pct": r["kv_tokens_err_pct"], "peak_measured": r["measured"]["torch_peak_gib"],
                    "peak_before": b.get("predicted", {}).get("torch_peak_gib"),
                    "peak_after": r["predicted"]["torch_peak_gib"],
                    "verdict": f"{r['verdict_measured']}/{b.get('verdict_predicted', '—')}/{r['verdict_predicted']}"})
    return out
