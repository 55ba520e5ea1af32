"""The real-log corpus the catalogue is measured on: loading it and its fit / held-out split.

The corpus lives in ``tests/failures/corpus/``: one file per log, ``index.yaml`` with each log's URL, cause label
and category, and ``split.yaml`` recording which logs are held out. The split is a deterministic hash of the URL
(sha256, first 8 hex digits mod 100 < ``HELD_OUT_PERCENT``), except that a URL the older fixture set
(``tests/doctor/fixtures``) already cites is always "fit": signatures were written against those logs. Logs of a
later ``batch`` N were collected after the catalogue was frozen and form the part "fresh-(N-1)": each was measured
once, before any signature change that used it. From ``HASH_SPLIT_FROM_BATCH`` on, a new batch is split by the same URL
hash as the first: its held-out share joins the held-out part (never read while writing signatures), the rest forms
"fresh-(N-1)". From ``TRAINING_ONLY_FROM_BATCH`` on, a batch is training data only: all of it forms "fresh-(N-1)"
(measured once before use like the others), none is held out, so the held-out part's composition stays fixed.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

HELD_OUT_PERCENT = 35
"""Share of the corpus held out from signature writing (chosen before any signature was written)."""

HASH_SPLIT_FROM_BATCH = 7
"""Batches from this one on are split by the URL hash too (held-out / fresh-(N-1)), the split committed first."""

TRAINING_ONLY_FROM_BATCH = 11
"""Batches from this one on join the fit side whole (declared before batch 11 was collected): held-out stays fixed."""


@dataclass(frozen=True)
class CorpusLog:
    """One real failure log with the cause its thread gives."""

    file: str
    url: str
    label: str
    """A catalogue id, ``none`` (not a failure) or ``triage:<subsystem>`` (no single known cause)."""
    category: str
    text: str
    cause: str = ""
    fix: str = ""
    vllm: str | None = None
    runner: str | None = None
    confirmed: str = ""
    batch: int = 1
    """1 = collected before any signature was written; N > 1 = collected after the catalogue's (N-1)th freeze."""


def held_out_by_hash(url: str) -> bool:
    """The hash half of the split rule: True for about HELD_OUT_PERCENT % of URLs."""
    return int(hashlib.sha256(url.encode()).hexdigest()[:8], 16) % 100 < HELD_OUT_PERCENT


def seen_urls(fixtures_dir: Path) -> set[str]:
    """URLs the older doctor fixtures cite (their logs shaped the first signatures)."""
    urls = set()
    for path in fixtures_dir.glob("*.log"):
        m = re.match(r"# source: (https://\S+)", path.read_text().splitlines()[0])
        if m:
            urls.add(m.group(1))
    return urls


def compute_split(urls: list[str], seen: set[str], batches: dict[str, int] | None = None) -> dict[str, str]:
    """url -> "fit" | "held-out" | "fresh-K" by the rule above (``batches``: url -> batch, default 1)."""
    batches = batches or {}

    def part(u: str) -> str:
        batch = batches.get(u, 1)
        if batch >= TRAINING_ONLY_FROM_BATCH:
            return f"fresh-{batch - 1}"
        if batch >= HASH_SPLIT_FROM_BATCH:
            return "held-out" if held_out_by_hash(u) else f"fresh-{batch - 1}"
        if batch > 1:
            return f"fresh-{batch - 1}"
        return "fit" if u in seen or not held_out_by_hash(u) else "held-out"

    return {u: part(u) for u in urls}


def load_corpus(corpus_dir: Path) -> list[CorpusLog]:
    """Every log of the corpus, in index order."""
    index = yaml.safe_load((corpus_dir / "index.yaml").read_text())["logs"]
    return [CorpusLog(text=(corpus_dir / e["file"]).read_text(errors="replace"), **e) for e in index]


def load_split(corpus_dir: Path) -> dict[str, str]:
    """file name -> "fit" | "held-out" | "fresh-K", as recorded in split.yaml."""
    data = yaml.safe_load((corpus_dir / "split.yaml").read_text())
    return {name: part for part, names in data.items() for name in names}
