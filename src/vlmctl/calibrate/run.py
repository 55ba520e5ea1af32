"""The whole of `vlmctl calibrate`: start the engines, fit, compare before and after, write the calibration file."""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from vlmctl.calibrate.fit import Fitted, Target, before_after, compare, fit
from vlmctl.calibrate.runs import EngineRun, RunSettings, default_runs, run_engine, wait_gpu_free
from vlmctl.engines import vllm as engines
from vlmctl.engines.vllm import Calibration, VllmProfile, resolve
from vlmctl.errors import ConfigError
from vlmctl.plan.calibration import CalibrationFile, RunnerConstants


def query_gpu(launcher: list[str], timeout_s: float = 120.0) -> dict:
    """GPU name, total memory (cudaMemGetInfo) and compute capability, from a short process of its own (the launcher
    with ``--gpu-only``), so no CUDA context of ours sits beside the engines."""
    import subprocess

    from vlmctl.calibrate.logs import parse_log

    try:
        out = subprocess.run([*launcher, "--gpu-only"], capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"could not ask the GPU for its memory ({exc}).",
                          fix="check `python -c 'import torch; print(torch.cuda.mem_get_info())'` on this node") from None
    row = parse_log(out.stdout)
    if "total_gib" not in row:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ConfigError(f"could not ask the GPU for its memory: {tail[0][:300]}",
                          fix="run `vlmctl calibrate` on a node with an NVIDIA GPU and torch with CUDA")
    return row


def gpu_target(info: dict) -> tuple[str, str]:
    """(GPU for the planner: catalog id or a stand-in, with the measured total and compute capability; its name)."""
    from vlmctl.hardware.gpus import gpu_type

    name, total, cc = info["gpu_name"], info["total_gib"], info["compute_capability"]
    try:
        gpu = gpu_type(name).id
    except ConfigError:
        gpu = "calibrated-gpu"
    return f"{gpu}:{total}:{cc}", name


@dataclass
class Report:
    """What one calibration found."""

    engine: VllmProfile
    vllm_version: str
    gpu: str
    rows: list[dict]
    fitted: Fitted
    start: dict[str, Calibration]
    table: list[dict]
    """Per run: measured, predicted before (start constants) and after (fitted) — ``fit.before_after``."""
    file: CalibrationFile
    path: Path | None = None
    skipped: list[str] = field(default_factory=list)


def calibrate(model: str, settings: RunSettings, *, vllm_version: str | None = None,
              runs: list[EngineRun] | None = None, start: dict[str, Calibration] | None = None,
              budget_s: float = 300.0, gpu: str | None = None, plan_model: str | None = None,
              on_run: Callable[[EngineRun, dict | None], None] | None = None,
              on_line: Callable[[str], None] | None = None) -> Report:
    """Start ``runs`` (default: the profile's set), fit the constants, compare before/after; nothing is written.

    ``start``: constants to compare against before the fit (default: the profile's). ``gpu``: the planner's GPU
    (``id`` or ``id:total_gib:cc``), default: what the probe reports. ``plan_model``: the model the planner reads
    (default ``model``).
    """
    version = vllm_version or engines.installed_version()
    if version is None:
        raise ConfigError("vLLM is not installed in this Python environment, so there is nothing to calibrate.",
                          fix="run `vlmctl calibrate` on a GPU node where `python -c 'import vllm'` works, "
                              "or pass --vllm-version with --launcher for a stand-in engine")
    engine = resolve(version).profile
    runs = runs or default_runs(engine)
    target_gpu, gpu_name = (gpu, gpu) if gpu else gpu_target(query_gpu(settings.launcher))
    rows: list[dict] = []
    skipped: list[str] = []
    deadline_left = budget_s
    import time

    t0 = time.monotonic()
    for run in runs:
        left = deadline_left - (time.monotonic() - t0)
        if left < run.est_s * 0.5:
            skipped.append(f"{run.name} ({left:.0f} s left of the {budget_s:.0f} s budget)")
            if on_run:
                on_run(run, None)
            continue
        each = RunSettings(settings.model, settings.logdir, settings.launcher, settings.load_format,
                           min(settings.timeout_s, max(left, 10.0)), settings.settle_s)
        row = run_engine(run, engine, each, on_line)
        rows.append(row)
        if on_run:
            on_run(run, row)
        wait_gpu_free()
    ready = [r for r in rows if r.get("verdict") == "ready"]
    if not ready:
        first = next((r.get("failure") for r in rows if r.get("failure")), "no engine logged its KV cache size")
        raise ConfigError(f"no engine started: {first}",
                          fix=f"read the logs in {settings.logdir}; `vlmctl doctor explain LOG` maps the error")
    target = Target(target_gpu, lambda cfg: plan_model or cfg["model"])
    fit_on = {r.name for r in runs if not r.held_out}
    fitted = fit(rows, engine, target, fit_on)
    start = start or dict(engine.calibrations)
    before = compare(rows, engine, target, start, fit_on)
    after = compare(rows, engine, target, fitted.calibrations, fit_on)
    table = before_after(before, after)
    logged = next((r["vllm_version"] for r in rows if r.get("vllm_version")), version)
    runners = {name: RunnerConstants(constants={c: getattr(fitted.calibrations[name], c) for c in fitted.fitted[name]},
                                     fitted=fitted.fitted[name])
               for name in engine.runners if fitted.fitted.get(name)}
    data = CalibrationFile(vllm_version=logged, gpu=gpu_name,
                           measured_at=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                           engines=sorted(r["name"] for r in ready if r["name"] in fit_on), runners=runners,
                           table=table)
    return Report(engine, logged, gpu_name, rows, fitted, start, table, data, skipped=skipped)


def write(report: Report, path: str | Path) -> Path:
    """Write the calibration file (JSON) that `vlmctl plan` reads."""
    target = Path(path).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(report.file.model_dump_json(indent=1) + "\n", encoding="utf-8")
    report.path = target
    return target
