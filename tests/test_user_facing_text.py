"""User-facing text (code, docs, README) cites sources a reader can open, never the project's internal notes."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Internal note ids ("P11", "(… P1)"), issue numbers of the project's tracker, the notes' file names and folder.
#: (The notes numbered their pitfalls P1–P19; a GPU such as the Tesla P40 is not one of them.)
INTERNAL = re.compile(r"(?-i:[(,] ?P(?:[1-9]|1\d)\))|\bP\d{1,2}[–-]P\d{1,2}\b|peers-and-pitfalls|\bissue[ -]\d+\b"
                      r"|other four engineers|`vlmctl plan --help` shows an example"
                      r"|shared/reference|project notes|gpu-box\.md|style-anchors|design\.md", re.I)


def _texts():
    for base, pattern in (("src", "**/*.py"), ("docs", "**/*.md"), (".", "README.md"), ("scripts", "*.sh")):
        yield from (ROOT / base).glob(pattern)


def test_no_internal_references_in_user_facing_text():
    hits = []
    for path in _texts():
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for m in INTERNAL.finditer(line):
                if "github.com" in line[max(0, m.start() - 80): m.end()]:
                    continue  # an upstream issue, cited by URL
                hits.append(f"{path.relative_to(ROOT)}:{n}: {m.group(0)}")
    assert not hits, "\n".join(hits)
