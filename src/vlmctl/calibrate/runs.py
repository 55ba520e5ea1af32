"""The engine start-ups `vlmctl calibrate` measures, and running one in its own process with a timeout.

Each run is one ``vllm.LLM`` start (``python -m vlmctl.calibrate.probe``) in its own session and process group, with
``VLLM_LOGGING_LEVEL=DEBUG``. It is stopped as soon as vLLM has logged the KV cache size (or failed, or ran out of
time): the memory lines are all logged by then, so nothing waits for graph capture or a server.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from vlmctl.calibrate.logs import parse_log
from vlmctl.engines.vllm import VllmProfile

#: The probe that starts one engine (the default launcher).
PROBE = [sys.executable, "-m", "vlmctl.calibrate.probe"]


@dataclass(frozen=True)
class EngineRun:
    """One engine start-up: vLLM's settings, the runner, and what it measures."""

    name: str
    runner: str
    engine: dict
    """``vllm.LLM`` keyword arguments (vLLM's names)."""
    measures: str
    held_out: bool = False
    """True for a run that only checks the fitted constants."""
    est_s: float = 45.0
    """Typical seconds on one GPU (import, dummy load, profile), for the time budget."""
    model: str | None = None
    """Model folder for this run (None = the calibration's model)."""


def default_runs(engine: VllmProfile) -> list[EngineRun]:
    """The smallest set that measures every constant ``engine``'s runners use, plus one held-out check.

    lm: the default runner with no media and 16 sequences (weights, non-torch, CUDA context, the LM pass);
    sampler: 1024 sequences on the runner that profiles the sampler; vit: vLLM's default media limits (the worst-case
    video) on the runner that profiles the encoder; graphs: CUDA graphs on the runner that subtracts their estimate;
    check (held out): the default runner with graphs, two 1 MP images and 32k context.
    """
    default = engine.default_runner

    def first(attr: str) -> str | None:
        names = [default, *sorted(r for r in engine.runners if r != default)]
        return next((r for r in names if getattr(engine.runners[r], attr)), None)

    base = {"dtype": "bfloat16", "gpu_memory_utilization": 0.9, "max_num_batched_tokens": 8192,
            "max_num_seqs": 1024}
    text = {"limit_mm_per_prompt": {"image": 0, "video": 0}, "max_model_len": 8192}
    runs = [EngineRun(f"lm_{default}", default, base | text | {"enforce_eager": True, "max_num_seqs": 16},
                      "weights, non-torch, CUDA context, LM activation", est_s=40)]
    if sampler := first("profiles_sampler"):
        runs.append(EngineRun(f"sampler_{sampler}", sampler, base | text | {"enforce_eager": True},
                              "sampler bytes per logit", est_s=40))
    if vit := first("profiles_encoder"):
        runs.append(EngineRun(f"vit_{vit}", vit, base | {"enforce_eager": True}, "vision-encoder peak (worst-case "
                              "video at vLLM's default limits)", est_s=60))
    if graphs := first("estimates_cudagraphs"):
        runs.append(EngineRun(f"graphs_{graphs}", graphs, base | text | {"enforce_eager": False},
                              "CUDA-graph estimate", est_s=60))
    runs.append(EngineRun(f"check_{default}", default,
                          base | {"enforce_eager": False, "gpu_memory_utilization": 0.85, "max_model_len": 32768,
                                  "limit_mm_per_prompt": {"image": 2, "video": 0},
                                  "mm_processor_kwargs": {"max_pixels": 1003520}},
                          "held out: checks the fitted constants", held_out=True, est_s=60))
    return runs


def extra_model_runs(engine: VllmProfile, model: str, tag: str) -> list[EngineRun]:
    """For one more model size: its LM-pass run and its sampler run (the constants that vary with the model's
    shape), named with ``tag``."""
    out = []
    for run in default_runs(engine):
        if run.name.startswith(("lm_", "sampler_")):
            out.append(EngineRun(f"{run.name}_{tag}", run.runner, run.engine, run.measures, run.held_out, run.est_s,
                                 model))
    return out


@dataclass
class RunSettings:
    """How to start the engines."""

    model: str
    """Model folder (or id) given to vLLM."""
    logdir: Path
    launcher: list[str] = field(default_factory=lambda: list(PROBE))
    load_format: str = "dummy"
    timeout_s: float = 150.0
    """Per engine: stopped after this many seconds."""
    settle_s: float = 1.0
    """Seconds to keep reading after the KV line (the concurrency line follows it)."""


def _stop(proc: subprocess.Popen, grace_s: float = 5.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=grace_s)
            return
        except subprocess.TimeoutExpired:
            continue


def run_engine(run: EngineRun, engine: VllmProfile, settings: RunSettings,
               on_line: Callable[[str], None] | None = None) -> dict:
    """Start one engine, stop it once the KV cache size is logged (or it failed / timed out); the parsed row."""
    settings.logdir.mkdir(parents=True, exist_ok=True)
    log = settings.logdir / f"{run.name}.log"
    model = run.model or settings.model
    config = {"name": run.name, "model": model, "runner": run.runner, "engine": run.engine,
              "held_out": run.held_out}
    env = dict(os.environ, VLLM_LOGGING_LEVEL="DEBUG", PYTHONUNBUFFERED="1")
    for runner in engine.runners.values():
        for key in runner.env:
            env.pop(key, None)
    env.update(engine.runners[run.runner].env)
    argv = [*settings.launcher, model, json.dumps(run.engine), "--load-format", settings.load_format,
            "--name", run.name]
    stop_at = re.compile(engine.kv_tokens_line + "|PROBE START FAILED|" + "|".join(engine.memory_lines.failures[:2]))
    started = time.monotonic()
    timed_out = False
    with open(log, "w", encoding="utf-8") as fh:
        fh.write(f"# config {json.dumps(config)}\n")
        fh.flush()
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        seen = 0
        done_at = None
        while True:
            text = log.read_text(errors="replace")
            if on_line and len(text) > seen:
                for line in text[seen:].splitlines():
                    on_line(line)
                seen = len(text)
            if done_at is None and stop_at.search(text):
                done_at = time.monotonic()
            if proc.poll() is not None or (done_at and time.monotonic() - done_at >= settings.settle_s):
                break
            if time.monotonic() - started > settings.timeout_s:
                timed_out = True
                break
            time.sleep(0.2)
        _stop(proc)
    row = parse_log(log.read_text(errors="replace"), engine)
    row.update(name=run.name, config=config, wall_s=round(time.monotonic() - started, 1), timed_out=timed_out,
               rc=proc.returncode, pid=proc.pid, log=str(log))
    if timed_out and row.get("verdict") == "unknown":
        row["verdict"] = "timeout"
    return row


def wait_gpu_free(limit_s: float = 30.0, below_mib: int = 1024) -> None:
    """Wait until the GPU's used memory falls below ``below_mib`` (nvidia-smi), at most ``limit_s`` seconds."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=10).stdout
            if int(out.split()[0]) < below_mib:
                return
        except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
            return
        time.sleep(1)
