"""`doctor explain`: the failure catalogue's matches plus a triage for what it does not pin down.

``explain(text, plan=None) -> Explanation`` is the stable entry point of `vlmctl doctor explain`.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from vlmctl.doctor.triage import PLAYBOOK, Triage, triage
from vlmctl.failures import BY_ID
from vlmctl.failures.match import Explanation as CatalogueExplanation
from vlmctl.failures.match import Match, explain as match_log, normalise_line

__all__ = ["Explanation", "LearnedGuess", "Match", "Triage", "explain", "normalise_line", "predicted_label"]


class LearnedGuess(BaseModel):
    """A best guess from similar logs (a model trained on real failure logs), for a log no signature matched."""

    label: str | None
    """The guessed cause (catalogue id); None when the guess names only a subsystem."""
    subsystem: str
    confidence: float
    """The model's probability for the guess (0-1), among the causes it was trained on."""
    title: str = ""
    cause: str = ""
    fix: str = ""
    checklist: list[str] = Field(default_factory=list)
    commands: list[str] = Field(default_factory=list)
    note: str = ""
    trained_on: dict[str, Any] = Field(default_factory=dict)
    """What the model was trained on: corpus parts and log counts, commit, date."""


class Explanation(CatalogueExplanation):
    """The catalogue's answer, plus ``triage`` when no specific signature matched."""

    triage: Triage | None = None
    """Set when nothing matched, or only a generic symptom did (e.g. NCCL 'unhandled system error')."""
    learned: LearnedGuess | None = None
    """Set when no signature matched and the learned model's guess agrees with the triage (or the triage found
    nothing): a best guess, never a matched wording."""


def _learned(text: str, triage_subsystem: str) -> LearnedGuess | None:
    from vlmctl.failures.learned import choose, guess, label_subsystem, load

    g = choose(False, triage_subsystem, guess(text))
    if g is None:
        return None
    subsystem = label_subsystem(g.label)
    checklist, commands = PLAYBOOK.get(subsystem, PLAYBOOK["unknown"])
    pct = f"{g.label_p:.0%}"
    if g.label.startswith("triage:"):
        return LearnedGuess(label=None, subsystem=subsystem, confidence=round(g.label_p, 3),
                            checklist=list(checklist), commands=list(commands), trained_on=load()[2],
                            note=f"Best guess from similar logs ({pct} confident): a {subsystem} failure with no "
                                 "single known cause. No known wording matched; check the list below.")
    sig = BY_ID[g.label]
    return LearnedGuess(label=g.label, subsystem=subsystem, confidence=round(g.label_p, 3), title=sig.title,
                        cause=sig.cause, fix=sig.fix, checklist=list(checklist), commands=list(commands),
                        trained_on=load()[2],
                        note=f"Best guess from similar logs ({pct} confident): {sig.title}. No known wording of "
                             "this failure matched, so confirm it against the checklist before acting on the fix.")


def explain(text: str, plan: Any = None) -> Explanation:
    """Explain a failure log (file contents, stdin, `docker logs` or `ray logs` output)."""
    base = match_log(text, plan)
    result = Explanation(**base.model_dump())
    generic = base.primary is not None and BY_ID[base.primary].specificity < 2
    if not base.known or generic:
        result.triage = triage(text)
    if not base.known:
        result.learned = _learned(text, result.triage.subsystem)
    return result


def predicted_label(result: Explanation) -> str:
    """The cause label an explanation amounts to: the primary signature id, else the learned guess, else
    triage:<subsystem>."""
    if result.primary is not None:
        return result.primary
    if result.learned is not None:
        return result.learned.label or f"triage:{result.learned.subsystem}"
    if result.triage is not None and result.triage.subsystem != "unknown":
        return f"triage:{result.triage.subsystem}"
    return "none"
