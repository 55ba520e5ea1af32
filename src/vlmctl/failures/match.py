"""Match a failure log against the catalogue: normalise it, find every known failure, compute the plan change.

``explain(text, plan=None) -> Explanation`` is what `vlmctl serve`'s supervisor calls when its engine dies or
stalls; `vlmctl doctor explain` adds a triage (subsystem, checklist, next command) for logs nothing matches.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from vlmctl.failures.catalog import BY_ID, CATALOG
from vlmctl.failures.context import read_context
from vlmctl.failures.signature import Signature, values_of
from vlmctl.findings import Finding

if TYPE_CHECKING:
    from vlmctl.plan.schema import Plan, PlanResult

#: Prefixes that vLLM, Ray, torch.distributed, docker, kubectl and CI put in front of the real message.
_PREFIXES = [
    r"\s+",                                                     # indentation (kept lines are collapsed anyway)
    r"\x1b\[[0-9;]*m",                                          # ANSI colour
    r"\[\d{1,2}m",                                              # colour codes whose ESC was lost ("[36m")
    r"\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:?\d\d)?\s+",         # docker logs --timestamps / kubectl
    r"\[\d{4}-\d\d-\d\d[T ][\d:.,]+Z?\]\s*",                    # [2026-02-24T20:21:58Z]
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[.,]\d+\s+(?:>>\s+)?",      # 2025-07-17 11:38:23.677 >>
    r"\s*\|\s+",                                                # buildkite "  | "
    r"[\w.-]+-\d+\s+\|\s",                                      # docker compose "vllm-1  | "
    r"\((?:RayWorkerWrapper|RayWorkerVllm|VllmWorkerProcess|VllmWorker|Worker_\w+|EngineCore\w*|APIServer|"
    r"Worker\w*|raylet|LLMEngine|ServeController|load_llm|pid=\d+)[^)]*\)\s*",  # (RayWorkerWrapper pid=1, ip=…)
    r"\[rank\d+\]:?\s*",                                        # [rank0]:
    r"(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)\s+\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?\s+\[?[\w./]+:\d+\]\s?",
    r"\[[WE]\s?[^\]]*\]\s*",                                    # [W ProcessGroupGloo.cpp:721]
    r">\s+",                                                    # quoted in a reply ("> ")
]
_PREFIX_RE = re.compile("^(?:" + "|".join(_PREFIXES) + ")")
_FAILURE_WORDS = re.compile(
    r"(Error|Exception|Traceback|failed|FATAL|fatal|refused|timed out|out of memory|not supported|"
    r"must be|cannot|Cannot|unable|Unable|killed|Killed|died|dead|WARN)")
SCHEMA_VERSION = 2
"""Bumped when a field of Explanation / Match changes meaning or is removed (docs/doctor.md lists the fields)."""


class Match(BaseModel):
    """One recognised failure in the log."""

    id: str
    title: str
    subsystem: str
    finding: Finding
    evidence: str
    """The log line(s) that matched, prefixes stripped."""
    line: int
    """1-based line number in the original log where the evidence starts."""
    values: dict[str, Any] = Field(default_factory=dict)
    """Numbers and names pulled from the message (e.g. estimated_max_model_len)."""
    cause: str = ""
    fix: str = ""
    sources: list[str] = Field(default_factory=list)
    versions: str = "all"
    """The vLLM versions this wording applies to."""


class Explanation(BaseModel):
    """Matches, the primary cause, the plan change and what the log says about the launch."""

    schema_version: int = SCHEMA_VERSION
    known: bool
    primary: str | None = None
    """Id of the most specific match: the cause to act on first."""
    matches: list[Match] = Field(default_factory=list)
    plan_change: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """field -> {"from": old (when a plan was given), "to": new, "because": signature id}."""
    context: dict[str, Any] = Field(default_factory=dict)
    """Model, GPU, TP/PP, vLLM version and engine read from the log."""
    suspicious_lines: list[str] = Field(default_factory=list)
    """For unknown logs: the lines that look most like the failure (best first)."""

    @property
    def findings(self) -> list[Finding]:
        """The matched findings, in log order."""
        return [m.finding for m in self.matches]


def normalise_line(line: str) -> str:
    """Strip worker/timestamp/colour prefixes (repeatedly) from one log line."""
    prev = None
    line = line.rstrip("\r\n").replace("\x1b", "")
    line = re.sub(r"\[\d{1,2}m", "", line)
    while prev != line:
        prev = line
        line = _PREFIX_RE.sub("", line, count=1)
    return line


def normalise(text: str) -> tuple[str, list[int]]:
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


def suspicious_lines(text: str, limit: int = 5) -> list[str]:
    """The lines that look most like a failure (exception names, failure words), best first."""
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
            seen.append(line[:400])
        if len(seen) == limit:
            break
    return seen


def _preferred(matches: list[Match], ctx: Any) -> set[str]:
    """Ids whose ``prefer_when`` holds for what the log says about the launch."""
    return {m.id for m in matches if BY_ID[m.id].prefer_when is not None and BY_ID[m.id].prefer_when(ctx)}


def _primary(matches: list[Match], preferred: set[str] = frozenset()) -> str | None:
    if not matches:
        return None
    best = max(matches, key=lambda m: (m.id in preferred, BY_ID[m.id].specificity, -m.line))
    return best.id


def explain(text: str, plan: PlanResult | Plan | None = None) -> Explanation:
    """Recognise every known failure in ``text`` (a vLLM / Ray / NCCL / torch log, or docker / ray logs output).

    ``plan`` may be a :class:`vlmctl.plan.schema.PlanResult` or ``Plan``; when given, each plan change
    carries the current value (``from``) next to the new one (``to``). Numbers in a plan change come from vLLM's
    message, or from the planner for the model and GPUs the log names (see :mod:`vlmctl.failures.plan_changes`).
    """
    plan = _plan_fields(plan)
    flat, owners = normalise(text)
    ctx = read_context(flat)
    found = [(s.id, _refined(s, m, flat, owners, ctx)) for s in CATALOG if (m := s.search(flat))]
    seen: set[str] = set()
    found = [(origin, m) for origin, m in found if not (m.id in seen or seen.add(m.id))]
    matches = [m for _, m in found]
    preferred = _preferred(matches, ctx)
    superseded = {sid for m in matches for sid in BY_ID[m.id].supersedes} - preferred
    # a signature superseded by another stays so after its refine hook renamed it (an inspection failure under
    # a missing package is the package, whichever release the inspection pointed to)
    matches = [m for origin, m in found if m.id not in superseded
               and (origin == m.id or origin not in {sid for _, o in found if o is not m
                                                     for sid in BY_ID[o.id].supersedes} - preferred)]
    if ctx.vllm_version:
        in_range = [m for m in matches if BY_ID[m.id].applies_to(ctx.vllm_version)]
        matches = in_range or matches
    matches.sort(key=lambda m: m.line)
    primary = _primary(matches, preferred)
    ordered = sorted(matches, key=lambda m: m.id != primary)
    change: dict[str, dict[str, Any]] = {}
    for m in ordered:
        signature = BY_ID[m.id]
        if signature.plan_change is None:
            continue
        for key, new in signature.plan_change(m.values, plan, ctx).items():
            if key in change:
                continue
            entry: dict[str, Any] = {"to": new, "because": m.id}
            if plan is not None:
                entry["from"] = _current(plan, key)
            elif getattr(ctx, key, None) is not None:
                entry["from"] = getattr(ctx, key)
            change[key] = entry
    return Explanation(
        known=bool(matches),
        primary=primary,
        matches=matches,
        plan_change=change,
        context=ctx.as_dict(),
        suspicious_lines=[] if matches else suspicious_lines(text),
    )


def _refined(signature: Signature, m: re.Match, flat: str, owners: list[int], ctx: Any) -> Match:
    """The match, or the one for the signature ``signature.refine`` names from the versions in the log."""
    if signature.refine is not None:
        target = signature.refine(values_of(m), ctx)
        if target is not None:
            target_id, extra = target
            return _match(BY_ID[target_id], m, flat, owners, extra)
    return _match(signature, m, flat, owners)


def _match(signature: Signature, m: re.Match, flat: str, owners: list[int], extra: dict | None = None) -> Match:
    values = values_of(m)
    values.update(extra or {})
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
        shown = ", ".join(f"{k}={v}" for k, v in values.items() if not k.startswith("path") and k != "source")
        message = f"{signature.title} ({shown})" if shown else message
    fix = signature.fix
    if values.get("needs"):
        fix = f"This log needs {values['needs']} (source: {values.get('source', 'engines/vllm/architectures.py')}). " \
              + fix[:1].upper() + fix[1:]
    finding = Finding(id=signature.id, severity=signature.severity,
                      message=f"{message}. Cause: {signature.cause}", fix=fix)
    return Match(id=signature.id, title=signature.title, subsystem=signature.subsystem, finding=finding,
                 evidence=evidence.strip(), line=start, values=values, cause=signature.cause, fix=fix,
                 sources=list(signature.sources), versions=signature.versions_doc)
