"""`doctor explain`: the failure catalogue's matches plus a triage for what it does not pin down.

``explain(text, plan=None) -> Explanation`` is the stable entry point of `vlmctl doctor explain`.
"""
from __future__ import annotations

from typing import Any

from vlmctl.doctor.triage import Triage, triage
from vlmctl.failures import BY_ID
from vlmctl.failures.match import Explanation as CatalogueExplanation
from vlmctl.failures.match import Match, explain as match_log, normalise_line

__all__ = ["Explanation", "Match", "Triage", "explain", "normalise_line", "predicted_label"]


class Explanation(CatalogueExplanation):
    """The catalogue's answer, plus ``triage`` when no specific signature matched."""

    triage: Triage | None = None
    """Set when nothing matched, or only a generic symptom did (e.g. NCCL 'unhandled system error')."""


def explain(text: str, plan: Any = None) -> Explanation:
    """Explain a failure log (file contents, stdin, `docker logs` or `ray logs` output)."""
    base = match_log(text, plan)
    result = Explanation(**base.model_dump())
    generic = base.primary is not None and BY_ID[base.primary].specificity < 2
    if not base.known or generic:
        result.triage = triage(text)
    return result


def predicted_label(result: Explanation) -> str:
    """The cause label an explanation amounts to: the primary signature id, else triage:<subsystem>."""
    if result.primary is not None:
        return result.primary
    if result.triage is not None and result.triage.subsystem != "unknown":
        return f"triage:{result.triage.subsystem}"
    return "none"
