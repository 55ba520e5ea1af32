"""Render the signature catalog as the Markdown table in docs/doctor.md (kept in sync by a test)."""
from __future__ import annotations

import re
from pathlib import Path

from vlmctl.failures import CATALOG

START, END = "<!-- signatures:start -->", "<!-- signatures:end -->"


def _link(source: str) -> str:
    m = re.match(r"https://github\.com/([^/]+/[^/]+)/(issues|pull)/(\d+)", source)
    return f"[{m.group(1)}#{m.group(3)}]({source})" if m else source


def fixtures_by_signature(fixtures_dir: Path) -> dict[str, list[tuple[str, str]]]:
    """signature id -> [(fixture file name, its source line)]."""
    out: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(fixtures_dir.glob("*.log")):
        text = path.read_text()
        source = text.splitlines()[0].removeprefix("# source: ")
        expect = re.search(r"^# expect: (\S+)", text, re.M).group(1)
        if expect not in ("none", "unknown"):
            out.setdefault(expect, []).append((path.name, source))
    return out


def render_table(fixtures_dir: Path) -> str:
    """The table (between the START/END markers) listing every signature with its fixtures and sources."""
    fixtures = fixtures_by_signature(fixtures_dir)
    rows = ["| id | failure | plan change | real-log fixtures (source) | also seen in |", "|---|---|---|---|---|"]
    for s in CATALOG:
        cells = "<br>".join(f"`{name}` ({_link(src)})" for name, src in fixtures.get(s.id, []))
        rows.append(f"| `{s.id}` | {s.title} | {s.plan_change_doc or '—'} | "
                    f"{cells or '— (no fixture yet: pattern from the message text)'} | "
                    f"{', '.join(s.sources) or '—'} |")
    covered = sum(1 for s in CATALOG if s.id in fixtures)
    rows += ["", f"{len(CATALOG)} signatures; {covered} matched on real fixtures by `tests/doctor/test_explain.py`."]
    return "\n".join(rows)


def update(doc: Path, fixtures_dir: Path) -> None:
    """Rewrite the table between the markers of ``doc``."""
    text = doc.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{START}\n{render_table(fixtures_dir)}\n{END}{tail}")
