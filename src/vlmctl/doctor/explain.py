"""Turn a failure log into causes, fixes and plan changes.

``explain(text, plan=None) -> Explanation`` is the stable entry point: `vlmctl doctor explain` and
`vlmctl serve` (when its engine dies) both call it. Keep its signature.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from vlmctl.doctor.signatures import CATALOG, BY_ID, Signature, values_of
from vlmctl.findings import Finding

if TYPE_CHECKING:
    from vlmctl.plan.schema import Plan, PlanResult

#: Prefixes that vLLM, Ray, torch.distributed and docker put in front of the real message.
_PREFIXES = [
    r"\[\d{4}-\d\d-\d\dT[\d:.]+Z?\]\s*",                       # [2026-02-24T20:21:58Z]
    r"\s*\|\s+",                                                # buildkite "  | "
    r"[\w.-]+-\d+\s+\|\s",                                      # docker compose "vllm-1  | "
    r"\((?:RayWorkerWrapper|VllmWorkerProcess|VllmWorker|EngineCore\w*|APIServer|Worker\w*|raylet|pid=\d+)"
    r"[^)]*\)\s*",                                              # (RayWorkerWrapper pid=1, ip=…)
    r"\[rank\d+\]:?\s*",                                        # [rank0]:
    r"(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)\s+\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?\s+\[?[\w./]+:\d+\]\s?",
    r"\[[WE]\s[^\]]*\]\s*",                                     # [W ProcessGroupGloo.cpp:721]
]
_PREFIX_RE = re.compile("^(?:" + "|".join(_PREFIXES) + ")")
_FAILURE_WORDS = re.compile(
    r"(Error|Exception|Traceback|failed|FATAL|fatal|refused|timed out|out of memory|not supported|"
    r"must be|cannot|Cannot|unable|Unable|killed|died|dead)")


class Match(BaseModel):
    """One recognised failure in the log."""

    id: str
    title: str
    finding: Finding
    evidence: str
    """The log line(s) that matched, prefixes stripped."""
    line: int
    """1-based line number in the original log where the evidence starts."""
    values: dict[str, Any] = Field(default_factory=dict)
    """Numbers and names pulled from the message (e.g. estimated_max_model_len)."""
    sources: list[str] = Field(default_factory=list)


class Explanation(BaseModel):
    """What `doctor explain` prints: matches, the plan change, and for unknown logs the likely lines."""

    known: bool
    matches: list[Match] = Field(default_factory=list)
    plan_change: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """field -> {"from": old (when a plan was given), "to": new, "because": signature id}."""
    suspicious_lines: list[str] = Field(default_factory=list)
    """For unknown logs: the lines that look most like the failure (best first)."""

    @property
    def findings(self) -> list[Finding]:
        """The matched findings, in log order."""
        return [m.finding for m in self.matches]


def normalise_line(line: str) -> str:
    """Strip worker/timestamp prefixes (repeatedly) from one log line."""
    prev = None
    line = line.rstrip("\n")
    while prev != line:
        prev = line
        line = _PREFIX_RE.sub("", line, count=1)
    return line


def _normalise(text: str) -> tuple[str, list[int]]:
    """Whitespace-collapsed text and, per character, the 1-based source line it came from."""
    parts: list[str] = []
    owners: list[int] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.startswith("# source:") or raw.startswith("# expect:"):
            continue
        line = re.sub(r"\s+", " ", normalise_line(raw)).strip()
        if not line:
            continue
        parts.append(line + " ")
        owners.extend([number] * (len(line) + 1))
    return "".join(parts), owners


def _plan_fields(plan: Any) -> Plan | None:
    if plan is None:
        return None
    return getattr(plan, "plan", plan)


def _current(plan: Any, key: str) -> Any:
    if plan is None:
        return None
    if key.startswith("env."):
        return (plan.env or {}).get(key[4:])
    head, _, tail = key.partition(".")
    value = getattr(plan, head, None)
    if tail and isinstance(value, dict):
        return value.get(tail)
    return value


def _suspicious(text: str, limit: int = 5) -> list[str]:
    lines = [normalise_line(raw).strip() for raw in text.splitlines()]
    scored = []
    for index, line in enumerate(lines):
        if not line or line.startswith("File \"") or set(line) <= set("^~ "):
            continue
        hits = len(_FAILURE_WORDS.findall(line))
        if re.match(r"^[\w.]+(Error|Exception)\b", line):
            hits += 3
        if hits:
            scored.append((hits, index, line))
    best = sorted(scored, key=lambda t: (-t[0], -t[1]))
    seen: list[str] = []
    for _, _, line in best:
        if line not in seen:
            seen.append(line)
        if len(seen) == limit:
            break
    return seen


def explain(text: str, plan: PlanResult | Plan | None = None) -> Explanation:
    """Recognise every known failure in ``text`` (a vLLM / Ray / NCCL / torch log).

    ``plan`` may be a :class:`vlmctl.plan.schema.PlanResult` or ``Plan``; when given, each plan change
    carries the current value (``from``) next to the new one (``to``). Stable API: `vlmctl serve` calls
    ``explain(text)`` when its engine dies.
    """
    plan = _plan_fields(plan)
    flat, owners = _normalise(text)
    matches: list[Match] = []
    hit_ids: set[str] = set()
    for signature in CATALOG:
        m = signature.search(flat)
        if not m:
            continue
        hit_ids.add(signature.id)
        matches.append(_match(signature, m, flat, owners))
    superseded = {sid for m in matches for sid in BY_ID[m.id].supersedes}
    matches = [m for m in matches if m.id not in superseded]
    matches.sort(key=lambda m: m.line)
    change: dict[str, dict[str, Any]] = {}
    for m in matches:
        signature = BY_ID[m.id]
        if signature.plan_change is None:
            continue
        for key, new in signature.plan_change(m.values, plan).items():
            if key in change:
                continue
            entry: dict[str, Any] = {"to": new, "because": m.id}
            if plan is not None:
                entry["from"] = _current(plan, key)
            change[key] = entry
    return Explanation(
        known=bool(matches),
        matches=matches,
        plan_change=change,
        suspicious_lines=[] if matches else _suspicious(text),
    )


def _match(signature: Signature, m: re.Match, flat: str, owners: list[int]) -> Match:
    values = values_of(m)
    for pattern in signature.context:
        found = re.search(pattern, flat, re.I)
        if found:
            for key, value in values_of(found).items():
                values.setdefault(key, value)
    start = owners[min(m.start(), len(owners) - 1)] if owners else 1
    evidence = m.group(0)
    if len(evidence) > 400:
        evidence = evidence[:200] + " … " + evidence[-180:]
    message = signature.title
    if values:
        shown = ", ".join(f"{k}={v}" for k, v in values.items() if k != "path")
        message = f"{signature.title} ({shown})" if shown else message
    finding = Finding(id=signature.id, severity=signature.severity,
                      message=f"{message}. Cause: {signature.cause}", fix=signature.fix)
    return Match(id=signature.id, title=signature.title, finding=finding, evidence=evidence.strip(),
                 line=start, values=values, sources=list(signature.sources))
