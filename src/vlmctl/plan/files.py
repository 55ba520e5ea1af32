"""Read a plan file written by `vlmctl plan --json` / `-o` (a PlanResult, or a bare Plan)."""
from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from vlmctl.errors import ConfigError, PlanInfeasibleError
from vlmctl.plan.schema import Plan, PlanResult
from vlmctl.validation import read_json

_WRITE = "write it with `vlmctl plan … -o plan.json`"


def read_plan(path: str | Path, *, require_ok: bool = False) -> Plan:
    """The Plan in ``path``; ``require_ok`` refuses a plan predicted not to start (for launching it)."""
    data = read_json(path, f"--plan {path}", _WRITE, unreadable="; the file does not exist or is not readable",
                     unreadable_fix=f"check the path, or {_WRITE}")
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
