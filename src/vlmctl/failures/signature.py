"""One known failure: the wordings it has had, its subsystem, the vLLM versions it applies to, cause and fix."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from vlmctl.findings import Severity

Values = dict[str, Any]
PlanChange = Callable[[Values, Any, Any], dict[str, Any]]
"""(values pulled from the log, the launched plan or None, the LogContext) -> {plan field: new value}."""

Subsystem = Literal["network", "ray", "cuda-memory", "host-memory", "quantization", "model-loading", "versions",
                    "multimodal", "gpu-arch", "parallelism", "process"]
SUBSYSTEMS: tuple[str, ...] = ("network", "ray", "cuda-memory", "host-memory", "quantization", "model-loading",
                               "versions", "multimodal", "gpu-arch", "parallelism", "process")


@dataclass(frozen=True)
class Signature:
    """How to recognise one failure, why it happens, what to change.

    Patterns run case-insensitively on normalised text (worker/timestamp prefixes stripped, whitespace collapsed).
    """

    id: str
    title: str
    subsystem: Subsystem
    patterns: tuple[str, ...]
    """Every wording seen in the wild (old and new vLLM, Ray, NCCL, torch, transformers); any one is a hit."""
    cause: str
    fix: str
    severity: Severity = "error"
    sources: tuple[str, ...] = ()
    """Public reports (owner/repo#N) where this failure and its wording were seen."""
    versions: tuple[str | None, str | None] = (None, None)
    """vLLM versions the wording applies to: [min, max) as "MAJOR.MINOR[.PATCH]"; None = open end."""
    unless: tuple[str, ...] = ()
    """Regexes that veto the match (to keep look-alike signatures apart)."""
    when: tuple[tuple[str, str, str], ...] = ()
    """(pattern, required, forbidden): a generic wording that names this cause only when ``required`` occurs
    anywhere in the log and ``forbidden`` does not (e.g. NCCL's bare 'unhandled system error' inside a container
    started without a larger /dev/shm). Tried after ``patterns``."""
    plan_change: PlanChange | None = None
    plan_change_doc: str = ""
    """The plan change in words, for docs/doctor.md."""
    supersedes: tuple[str, ...] = ()
    """Ids of broader signatures this one replaces when both match."""
    context: tuple[str, ...] = ()
    """Regexes searched anywhere in the log for extra named values."""
    prefer_when: Callable[[Any], bool] | None = None
    """(LogContext) -> bool: when true and this signature matched, it is the primary cause whatever else matched
    (e.g. a start-up OOM when the weights alone exceed the GPUs the log names), and nothing supersedes it."""
    refine: Callable[[Values, Any], tuple[str, Values] | None] | None = None
    """(values, LogContext) -> (id, extra values) of the signature that names the cause once the log's versions
    are read (vLLM's 'failed to be inspected' is a transformers, vLLM or checkpoint problem depending on the
    releases installed), or None to keep this one. The extra values (``needs``, ``source``) go into the fix."""
    stalls: bool = False
    """vLLM does not exit on this failure but waits forever: `vlmctl serve` stops it as soon as it shows."""
    specificity: int = 2
    """1 = a generic symptom (e.g. 'unhandled system error'), 2 = a cause, 3 = a cause pinned by a unique wording."""
    compiled: tuple[re.Pattern, ...] = field(init=False, repr=False, compare=False)
    compiled_unless: tuple[re.Pattern, ...] = field(init=False, repr=False, compare=False)
    compiled_when: tuple[tuple[re.Pattern, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "compiled", tuple(re.compile(p, re.I | re.S) for p in self.patterns))
        object.__setattr__(self, "compiled_unless", tuple(re.compile(p, re.I | re.S) for p in self.unless))
        object.__setattr__(self, "compiled_when",
                           tuple(tuple(re.compile(p, re.I | re.S) for p in triple) for triple in self.when))

    def search(self, text: str) -> re.Match | None:
        """The first regex match in ``text`` (normalised), or None; vetoed by ``unless``."""
        if any(u.search(text) for u in self.compiled_unless):
            return None
        for pattern in self.compiled:
            m = pattern.search(text)
            if m:
                return m
        for pattern, required, forbidden in self.compiled_when:
            if required.search(text) and not forbidden.search(text):
                m = pattern.search(text)
                if m:
                    return m
        return None

    def applies_to(self, version: str | None) -> bool:
        """Whether this wording can come from vLLM ``version`` (True when the version is unknown)."""
        from vlmctl.engines.vllm import parse_version

        want = parse_version(version or "")
        if want is None:
            return True
        low, high = (parse_version(v) if v else None for v in self.versions)
        return (low is None or want >= low) and (high is None or want < high)

    def profiles(self) -> list[str]:
        """The supported vLLM version profiles (engines/vllm) this signature applies to."""
        from vlmctl.engines.vllm import PROFILES

        return [v for v in PROFILES if self.applies_to(v)]

    @property
    def versions_doc(self) -> str:
        """The version range in words."""
        low, high = self.versions
        if not low and not high:
            return "all"
        if low and high:
            return f"{low} – <{high}"
        return f">= {low}" if low else f"< {high}"


def values_of(match: re.Match) -> Values:
    """Named groups of a match, numbers converted, unnamed-duplicate suffixes (``cc2``) folded."""
    out: Values = {}
    for key, raw in match.groupdict().items():
        if raw is None:
            continue
        name = key.rstrip("0123456789") or key
        value: Any = raw
        if re.fullmatch(r"-?[\d,]+(\.\d+)?", raw):
            value = float(raw.replace(",", "")) if ("." in raw or name.endswith("_gib") or name == "util") \
                else int(raw.replace(",", ""))
        out.setdefault(name, value)
    return out
