"""Findings: the one shape in which the planner, cluster verify and doctor report problems."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Severity = Literal["error", "warning", "info"]


class Finding(BaseModel):
    """One problem or note: a stable id, how bad it is, what is wrong and what to do."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    """Stable identifier, e.g. ``tp-heads``; safe to grep and to silence."""
    severity: Severity
    """``error`` stops a launch, ``warning`` may hurt, ``info`` explains a choice."""
    message: str
    """What is wrong, in vLLM's own words where vLLM has them."""
    fix: str = ""
    """The flag to change or the command to run next."""


def errors(findings: list[Finding]) -> list[Finding]:
    """The findings that stop a launch."""
    return [f for f in findings if f.severity == "error"]
