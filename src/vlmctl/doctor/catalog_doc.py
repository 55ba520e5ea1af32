"""Render the failure catalogue as the Markdown table in docs/doctor.md (kept in sync by a test)."""
from __future__ import annotations

import re
from pathlib import Path

from vlmctl.failures import CATALOG

START, END = "<!-- signatures:start -->", "<!-- signatures:end -->"


def fixtures_by_signature(fixtures_dir: Path) -> dict[str, list[str]]:
    """signature id -> fixture file names that expect it (tests/doctor/fixtures)."""
    out: dict[str, list[str]] = {}
    for path in sorted(fixtures_dir.glob("*.log")):
        expect = re.search(r"^# expect: (\S+)", path.read_text(), re.M).group(1)
        out.setdefault(expect, []).append(path.name)
    return out


def corpus_by_signature(corpus_dir: Path) -> tuple[list[str], dict[str, dict[str, int]]]:
    """(the corpus parts in order, signature id -> {part: corpus logs labelled with it})."""
    from vlmctl.failures.corpus import load_corpus, load_split

    split = load_split(corpus_dir)
    # held-out logs are not counted per signature: their labels are not shown while signatures are written
    fresh = sorted(set(split.values()) - {"held-out", "fit"}, key=lambda p: (len(p), p))
    parts = list(dict.fromkeys(["fit", *fresh]))
    out: dict[str, dict[str, int]] = {}
    for log in load_corpus(corpus_dir):
        if split[log.file] == "held-out":
            continue
        counts = out.setdefault(log.label, dict.fromkeys(parts, 0))
        counts[split[log.file]] += 1
    return parts, out


def render_table(fixtures_dir: Path, corpus_dir: Path) -> str:
    """The table (between the START/END markers): every signature, its subsystem, versions, plan change, logs."""
    fixtures = fixtures_by_signature(fixtures_dir)
    parts, corpus = corpus_by_signature(corpus_dir)
    rows = [f"| id | subsystem | failure | vLLM | plan change | real logs: fixtures / {' / '.join(parts)} | "
            "seen in |", "|---|---|---|---|---|---|---|"]
    for s in CATALOG:
        c = corpus.get(s.id, dict.fromkeys(parts, 0))
        logs = " / ".join([str(len(fixtures.get(s.id, [])))] + [str(c[p]) for p in parts])
        rows.append(f"| `{s.id}` | {s.subsystem} | {s.title} | {s.versions_doc} | {s.plan_change_doc or '—'} | "
                    f"{logs} | {', '.join(s.sources) or '—'} |")
    with_logs = sum(1 for s in CATALOG if fixtures.get(s.id) or sum(corpus.get(s.id, {}).values()))
    rows += ["", f"{len(CATALOG)} signatures in {len({s.subsystem for s in CATALOG})} subsystems; {with_logs} "
                 "have at least one real log (fixture or corpus); the others are written from the message text "
                 "of the release that prints it."]
    return "\n".join(rows)


def update(doc: Path, fixtures_dir: Path, corpus_dir: Path) -> None:
    """Rewrite the table between the markers of ``doc``."""
    text = doc.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{START}\n{render_table(fixtures_dir, corpus_dir)}\n{END}{tail}")
