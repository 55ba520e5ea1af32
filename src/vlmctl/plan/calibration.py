"""The calibration constants a plan uses: a vLLM version profile's, or a calibration file's.

Everything else in vlmctl.plan is vLLM's own arithmetic (source lines in docs/planner.md). The constants are the
terms vLLM *measures* at start-up and we can only estimate. Each supported vLLM version carries its own
(``vlmctl.engines.vllm``); ``vlmctl calibrate`` fits them on the user's GPU and writes a calibration file, which a plan
reads from ``--calibration FILE`` or from the per-user folder (``vlmctl.envs.calibration_dir``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vlmctl.engines.vllm import GIB, Calibration, VllmProfile, parse_version, resolve
from vlmctl.engines.vllm.profile import CONSTANTS
from vlmctl.errors import ConfigError, did_you_mean
from vlmctl.findings import Finding

__all__ = ["GIB", "Calibration", "CalibrationFile", "Chosen", "HostSpeed", "RunnerConstants", "calibration", "choose",
           "default_calibration_path", "read_calibration_file"]

FORMAT = 1


class RunnerConstants(BaseModel):
    """Fitted constants for one model runner."""

    model_config = ConfigDict(extra="forbid")

    constants: dict[str, float]
    """Constant name (see ``vlmctl.engines.vllm.profile.Calibration``) → value."""
    fitted: list[str] = Field(default_factory=list)
    """The constants the fit measured; the others were carried over from the profile."""

    @field_validator("constants", "fitted")
    @classmethod
    def _known(cls, value):
        for name in value:
            if name not in CONSTANTS:
                raise ValueError(f"'{name}' is not a calibration constant.{did_you_mean(name, CONSTANTS)} "
                                 f"Known: {', '.join(CONSTANTS)}")
        return value


class HostSpeed(BaseModel):
    """The speed model's API-server host factor, read off a `vlmctl bench` run on this host
    (`vlmctl calibrate --from-bench`)."""

    model_config = ConfigDict(extra="forbid")

    host_factor: float = Field(gt=0.05, le=20)
    """The API server's times on this host against the host the speed constants were measured on (1 = as fast)."""
    measured_at: str
    """UTC time the factor was fitted."""
    bench: str
    """The bench result it was fitted on."""
    levels: int = Field(ge=1)
    """Concurrency levels of that bench used by the fit."""


class CalibrationFile(BaseModel):
    """What `vlmctl calibrate` writes and `vlmctl plan` reads."""

    model_config = ConfigDict(extra="forbid")

    format: int = FORMAT
    vllm_version: str
    """The vLLM release the engines ran (``vllm.__version__``)."""
    gpu: str
    """The GPU they ran on (name as CUDA reports it)."""
    measured_at: str
    """UTC time of the calibration run."""
    engines: list[str]
    """Names of the engine start-ups the constants were fitted on."""
    runners: dict[str, RunnerConstants]
    """Per model runner ('v1', 'v2')."""
    table: list[dict] = Field(default_factory=list)
    """Predicted vs measured, before and after the fit, one row per engine."""
    speed: HostSpeed | None = None
    """The API-server host factor for the speed model (`vlmctl calibrate --from-bench`); absent: 1."""

    @field_validator("vllm_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if parse_version(value) is None:
            raise ValueError(f"'{value}' is not a vLLM version")
        return value

    @field_validator("runners")
    @classmethod
    def _runners(cls, value):
        for name in value:
            if name not in ("v1", "v2"):
                raise ValueError(f"model runner '{name}' is not one of v1, v2")
        return value


def default_calibration_path(vllm_version: str) -> Path:
    """The per-user calibration file for a vLLM release series: <calibration dir>/vllm-MAJOR.MINOR.json."""
    from vlmctl.envs import calibration_dir

    return Path(calibration_dir()) / f"vllm-{_short(vllm_version)}.json"


def read_calibration_file(path: str | os.PathLike) -> CalibrationFile:
    """Read and validate a calibration file (one-line ConfigError on any problem)."""
    from vlmctl.validation import parse, read_json

    fix = "re-run `vlmctl calibrate`, or drop --calibration to use the built-in constants"
    data = read_json(path, f"--calibration {path}", fix)
    return parse(CalibrationFile, data, f"calibration file {path}", fix)


def calibration(vllm_version: str | None, model_runner: str | None = None) -> Calibration:
    """The built-in constants for a vLLM version (or the nearest supported one) and model runner."""
    return resolve(vllm_version).profile.calibration(model_runner)


@dataclass(frozen=True)
class Chosen:
    """The engine profile, runner and constants one plan uses, and what the user should know about them."""

    engine: VllmProfile
    vllm_version: str
    """The release the plan is for (as asked, or the newest supported)."""
    runner: str
    cal: Calibration
    calibration_file: str | None = None
    findings: list[Finding] = field(default_factory=list)
    host_factor: float | None = None
    """The speed model's API-server host factor from the calibration file (None: the built-in 1)."""


def _short(version: str) -> str:
    """MAJOR.MINOR of a release (0.0 when it is not a version)."""
    major, minor, _ = parse_version(version) or (0, 0, 0)
    return f"{major}.{minor}"


def choose(vllm_version: str | None, model_runner: str | None, calibration_file: str | None = None, *,
           is_moe: bool = False, is_hybrid: bool = False, architectures: tuple[str, ...] = (),
           family: str | None = None) -> Chosen:
    """Resolve the profile (nearest when unknown), the runner vLLM would pick, and the constants (file over profile)."""
    resolved = resolve(vllm_version)
    engine = resolved.profile
    version = resolved.requested
    findings: list[Finding] = []
    if not resolved.exact:
        findings.append(Finding(
            id="vllm-version-unknown", severity="warning",
            message=f"vLLM {version} has no profile in vlmctl: the plan uses the nearest supported one, vLLM "
                    f"{engine.version} (its flags, defaults and memory constants); {version} may differ.",
            fix=f"run `vlmctl calibrate` on a GPU node with vLLM {version}, or plan with --vllm-version "
                f"{engine.version}"))
    runner = model_runner or engine.runner_choice.for_model(is_moe=is_moe, is_hybrid=is_hybrid,
                                                            architectures=architectures)
    cal = engine.calibration(runner, family)
    path = calibration_file
    explicit = path is not None
    if path is None:
        candidate = default_calibration_path(version)
        path = str(candidate) if candidate.is_file() else None
    host_factor = None
    if path is not None:
        data = read_calibration_file(path)
        if _short(data.vllm_version) != _short(version):
            if explicit:
                raise ConfigError(
                    f"--calibration {path} was measured with vLLM {data.vllm_version}, but the plan is for vLLM "
                    f"{version}: the constants of one release do not carry over to another.",
                    fix=f"--vllm-version {data.vllm_version}, or run `vlmctl calibrate` with vLLM {version}")
            path = None
        elif data.speed is not None and not data.runners:
            pass  # the file carries only the host factor (below)
        elif runner in data.runners:
            fitted = data.runners[runner]
            cal = replace(cal, **fitted.constants,
                          source=f"{path}: fitted {data.measured_at} on {data.gpu}, vLLM {data.vllm_version}, "
                                 f"{len(data.engines)} engines ({', '.join(data.engines)})",
                          unmeasured=tuple(c for c in cal.unmeasured if c not in fitted.fitted))
            findings.append(Finding(
                id="calibration-file", severity="info",
                message=f"memory constants for the {runner} runner from {path} (fitted on {data.gpu} with vLLM "
                        f"{data.vllm_version}, {data.measured_at}).", fix=""))
        else:
            findings.append(Finding(
                id="calibration-file-runner", severity="warning",
                message=f"{path} has constants for the {', '.join(sorted(data.runners))} runner(s), not {runner}: "
                        f"the plan uses vLLM {engine.version}'s built-in ones.",
                fix=f"on a GPU node with vLLM {engine.version}: vlmctl calibrate MODEL_DIR (its runs cover every runner "
                    "that release has)"))
    if path is not None and data.speed is not None and _short(data.vllm_version) == _short(version):
        host_factor = data.speed.host_factor
        findings.append(Finding(
            id="speed-host-factor", severity="info",
            message=f"speed: API-server host factor {host_factor:g} from {path} (fitted {data.speed.measured_at} on "
                    f"{data.speed.bench}).", fix=""))
    missing = [c for c in _PLAN_CONSTANTS if c in cal.unmeasured]
    if missing:
        built_in = engine.calibration(runner, family).source
        findings.append(Finding(
            id="calibration-unmeasured", severity="warning",
            message=f"not measured for {_short(version)}: run `vlmctl calibrate`. vLLM {engine.version}'s {runner} "
                    f"runner uses {built_in} for {', '.join(missing)}; predicted KV tokens may be off.",
            fix=f"on a GPU node with vLLM {version}: vlmctl calibrate (it writes "
                f"{default_calibration_path(version)}, which plan reads), then plan again"))
    return Chosen(engine, version, runner, cal, path, findings, host_factor)


#: The constants every single-GPU plan depends on (what "measured" means for a profile).
_PLAN_CONSTANTS = ("weight_overhead_gib", "non_torch_gib", "cuda_context_gib", "lm_activation_factor", "vit_factor")


def constants_from_file(engine: VllmProfile, data: CalibrationFile) -> dict[str, Calibration]:
    """Each runner's constants with a calibration file's values over ``engine``'s (for ``calibrate --start-from``)."""
    out = dict(engine.calibrations)
    for runner, values in data.runners.items():
        if runner in out:
            out[runner] = replace(out[runner], **values.constants, source=f"from a calibration file ({data.gpu})")
    return out
