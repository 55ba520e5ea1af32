"""Read a plan file written by `vlmctl plan --json` / `-o` (a PlanResult, or a bare Plan)."""
from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from vlmctl.errors import ConfigError, PlanInfeasibleError
from vlmctl.plan.schema import Plan, PlanResult

_WRITE = "write it with `vlmctl plan … -o plan.json`"


def read_plan(path: str | Path, *, require_ok: bool = False) -> Plan:
    """The Plan in ``path``; ``require_ok`` refuses a plan predicted not to start (for launching it)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--plan {path}: cannot read it ({exc.strerror}; the file does not exist or is not "
                          "readable).", fix=f"check the path, or {_WRITE}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--plan {path} is not JSON ({exc}).", fix=_WRITE) from None
    try:
        if not (isinstance(data, dict) and "plan" in data and "ok" in data):
            return Plan.model_validate(data)
        result = PlanResult.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            f"--plan {path} is not a vlmctl plan ({exc.error_count()} problems, first: {exc.errors()[0]['msg']}).",
            fix=_WRITE) from None
    if result.plan is None:
        raise ConfigError(f"--plan {path} holds no plan (nothing could be sized).", fix="re-run `vlmctl plan`")
    if require_ok and not result.ok:
        raise PlanInfeasibleError(
            f"--plan {path} is predicted not to start: "
            + "; ".join(f.message for f in result.findings if f.severity == "error")[:400],
            fix="re-plan with the fixes `vlmctl plan` lists")
    return result.plan
