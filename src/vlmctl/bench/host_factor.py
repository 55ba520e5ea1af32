"""The speed model's API-server host factor, read off one `vlmctl bench --plan` run on the user's own host.

The speed constants were measured on one host; the API server's times per request (event loop and renderer:
parsing, chat template, media decoding and processing) scale with the host's CPU, and they set TTFT at concurrency
≥ 8 and the requests/s ceiling (docs/planner.md § speed). The factor is the one number that makes the plan's speed
model agree best with the bench: least squares of log(predicted / measured) over each level's median TTFT and
output tok/s, on a log-spaced search between 0.1 and 20. ``vlmctl calibrate --from-bench`` writes it into the
calibration file ``vlmctl plan`` reads.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from dataclasses import dataclass
from pathlib import Path

from vlmctl.errors import ConfigError

LOW, HIGH = 0.1, 20.0
HOW = ("a bench with one workload at fixed concurrency levels against the plan, e.g. vlmctl bench --plan plan.json "
       "--mix image@1280x720 --concurrency 1,8,32 --out bench.json")


@dataclass
class HostFit:
    """The fitted factor and the bench's levels predicted before (factor 1) and after."""

    factor: float
    before: list[dict]
    after: list[dict]
    bench: str

    @property
    def levels(self) -> int:
        return len(self.after)


def read_bench(path: str | Path) -> dict:
    """A `vlmctl bench --out` file (a one-line ConfigError when it is not one)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data["meta"]["mix"], list) \
                or not isinstance(data["levels"], list):
            raise TypeError("not a bench result")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"--from-bench {path}: not a `vlmctl bench --out` file ({type(exc).__name__}: {exc}).",
                          fix=HOW) from None
    return data


def _loss(rows: list[dict]) -> float:
    total = 0.0
    for r in rows:
        for metric in ("ttft_ms", "output_tokens_per_s"):
            measured, predicted = r[metric]
            if measured and predicted and measured > 0 and predicted > 0:
                total += math.log(predicted / measured) ** 2
    return total


def fit_host_factor(plan, result: dict, bench: str = "bench") -> HostFit:
    """The host factor that best matches ``result`` (a bench run against ``plan``)."""
    from vlmctl.bench.from_plan import predicted_levels
    from vlmctl.engines.vllm.speed import speed_constants

    base = speed_constants(plan.vllm_version)

    def rows(factor: float) -> list[dict]:
        return predicted_levels(plan, result, dataclasses.replace(base, host_factor=factor))

    before = rows(1.0)
    if not before:
        raise ConfigError(f"--from-bench {bench}: no level of it can be predicted (it needs one workload at fixed "
                          f"concurrency levels, completed requests, and the plan's model and GPUs known to vlmctl).",
                          fix=HOW)
    lo, hi = math.log(LOW), math.log(HIGH)
    grid = [lo + (hi - lo) * i / 60 for i in range(61)]
    best = min(grid, key=lambda x: _loss(rows(math.exp(x))))
    a, b = best - (hi - lo) / 60, best + (hi - lo) / 60
    for _ in range(30):  # golden section inside the best grid cell's neighbours
        m1, m2 = a + 0.382 * (b - a), a + 0.618 * (b - a)
        if _loss(rows(math.exp(m1))) <= _loss(rows(math.exp(m2))):
            b = m2
        else:
            a = m1
    factor = round(min(HIGH, max(LOW, math.exp((a + b) / 2))), 3)
    return HostFit(factor, before, rows(factor), bench)


def write_host_factor(fit: HostFit, plan, path: str | Path) -> Path:
    """Put the factor into the calibration file at ``path`` (kept as it is otherwise; created when absent)."""
    from vlmctl.plan.calibration import CalibrationFile, HostSpeed, read_calibration_file

    target = Path(path).expanduser()
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    speed = HostSpeed(host_factor=fit.factor, measured_at=now, bench=str(fit.bench), levels=fit.levels)
    if target.exists():
        data = read_calibration_file(target)
        if data.vllm_version.split(".")[:2] != plan.vllm_version.split(".")[:2]:
            raise ConfigError(f"{target} is for vLLM {data.vllm_version}, the plan for vLLM {plan.vllm_version}: "
                              "a host factor belongs with the constants of the release it was fitted with.",
                              fix="-o another file, or bench a plan made for the file's release")
        data = data.model_copy(update={"speed": speed})
    else:
        gpus = sorted({g.gpu_type for g in plan.per_gpu})
        data = CalibrationFile(vllm_version=plan.vllm_version, gpu=",".join(gpus), measured_at=now, engines=[],
                               runners={}, speed=speed)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(data.model_dump_json(indent=1) + "\n", encoding="utf-8")
    return target
