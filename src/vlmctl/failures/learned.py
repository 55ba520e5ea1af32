"""A statistically learned best guess for logs the catalogue's wordings do not pin down.

Two multinomial naive-Bayes models over a log's words and word pairs (lower-cased; numbers, hex and paths
normalised; binary per log): one predicts the cause (a catalogue id), the other the subsystem. They were trained by
``benchmarks/learned_fallback.py build`` on the real-log corpus's non-held-out parts and live in
``learned_model.json`` next to this module (what they were trained on is recorded in it); the corpus is never read
at run time. Pure Python: the model is loaded on first use.

    from vlmctl.failures.learned import guess
    g = guess(log_text)          # Guess(label=..., label_p=..., subsystem=..., subsystem_p=...)
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from vlmctl.failures.match import normalise_line

MODEL_PATH = Path(__file__).with_name("learned_model.json")
ALPHA = 0.1
"""Additive smoothing of the per-class feature counts (0.01 … 1 compared by the builder's grouped
cross-validation: 0.1 best, within two logs of the others)."""
THRESHOLD = 0.5
"""The cause's probability (within the triage's subsystem) from which a guess is given (grouped cross-validation:
0.5 vs 0.9 in round 11; 0.3 … 0.7 gave the same in round 12, docs/doctor.md)."""
MAX_CHARS = 200_000
"""Only the log's last characters are read (the corpus excerpts the models were trained on are far shorter)."""

_HEX = re.compile(r"\b0x[0-9a-f]+\b|\b[0-9a-f]{12,}\b")
_PATH = re.compile(r"(?:[a-z]:)?(?:[\w.~-]*/)+([\w.-]+)")
_URL = re.compile(r"https?://\S+")
_NUM = re.compile(r"\d+(?:\.\d+)*")
_WORD = re.compile(r"[a-z_][a-z0-9_]*|[\u4e00-\u9fff]")


def _line_tokens(line: str) -> list[str]:
    line = _URL.sub(" ", line.lower())
    line = _HEX.sub(" hex ", line)
    line = _PATH.sub(lambda m: " path " + m.group(1).rsplit(".", 1)[0] + " ", line)
    line = _NUM.sub(" num ", line)
    return _WORD.findall(line)


def features(text: str) -> set[str]:
    """The log's features: its words and adjacent word pairs (within a line), each once."""
    out: set[str] = set()
    for raw in text.splitlines():
        if raw.startswith("# source:") or raw.startswith("# expect:"):
            continue
        words = _line_tokens(normalise_line(raw))
        out.update(words)
        out.update(f"{a} {b}" for a, b in zip(words, words[1:]))
    return out


@dataclass(frozen=True)
class NaiveBayes:
    """Multinomial naive Bayes over binary features, stored as per-class feature counts."""

    classes: tuple[str, ...]
    log_prior: tuple[float, ...]
    vocab: dict[str, int]
    counts: tuple[dict[int, int], ...]
    totals: tuple[int, ...]
    alpha: float = ALPHA

    @classmethod
    def train(cls, docs: Iterable[tuple[set[str], str]], min_df: int = 2, alpha: float = ALPHA) -> NaiveBayes:
        """Fit on (features, class) pairs; features seen in fewer than ``min_df`` logs are dropped."""
        docs = list(docs)
        df: dict[str, int] = {}
        for feats, _ in docs:
            for f in feats:
                df[f] = df.get(f, 0) + 1
        vocab = {f: i for i, f in enumerate(sorted(f for f, n in df.items() if n >= min_df))}
        classes = tuple(sorted({c for _, c in docs}))
        index = {c: i for i, c in enumerate(classes)}
        counts: list[dict[int, int]] = [{} for _ in classes]
        n_docs = [0] * len(classes)
        for feats, c in docs:
            k = index[c]
            n_docs[k] += 1
            for f in feats:
                j = vocab.get(f)
                if j is not None:
                    counts[k][j] = counts[k].get(j, 0) + 1
        total = sum(n_docs)
        return cls(classes=classes, log_prior=tuple(math.log(n / total) for n in n_docs), vocab=vocab,
                   counts=tuple(counts), totals=tuple(sum(c.values()) for c in counts), alpha=alpha)

    def proba(self, feats: set[str]) -> dict[str, float]:
        """Class -> posterior probability for a log's features."""
        ids = [self.vocab[f] for f in feats if f in self.vocab]
        v = len(self.vocab)
        scores = []
        for k, _ in enumerate(self.classes):
            denom = math.log(self.totals[k] + self.alpha * v)
            ck = self.counts[k]
            scores.append(self.log_prior[k] + sum(math.log(ck.get(j, 0) + self.alpha) - denom for j in ids))
        top = max(scores)
        exp = [math.exp(s - top) for s in scores]
        z = sum(exp)
        return {c: e / z for c, e in zip(self.classes, exp)}

    def to_json(self) -> dict[str, Any]:
        """A compact form: the vocabulary once, then per class its [feature index, count] pairs."""
        return {"classes": list(self.classes), "log_prior": [round(p, 6) for p in self.log_prior],
                "alpha": self.alpha,
                "counts": [[x for j, n in sorted(c.items()) for x in (j, n)] for c in self.counts]}

    @classmethod
    def from_json(cls, data: dict[str, Any], vocab: dict[str, int]) -> NaiveBayes:
        """Inverse of :meth:`to_json` (the vocabulary is shared by both models of the file)."""
        counts = tuple({flat[i]: flat[i + 1] for i in range(0, len(flat), 2)} for flat in data["counts"])
        return cls(classes=tuple(data["classes"]), log_prior=tuple(data["log_prior"]), vocab=vocab, counts=counts,
                   totals=tuple(sum(c.values()) for c in counts), alpha=data["alpha"])


@dataclass(frozen=True)
class Guess:
    """The learned models' answer for one log."""

    label: str
    """The most probable cause (catalogue id)."""
    label_p: float
    subsystem: str
    subsystem_p: float
    subsystem_proba: dict[str, float]
    label_proba: dict[str, float] = field(default_factory=dict)
    """Every cause's probability (empty where the guess was built by hand)."""


@lru_cache(maxsize=1)
def load(path: Path = MODEL_PATH) -> tuple[NaiveBayes, NaiveBayes, dict[str, Any]]:
    """(cause model, subsystem model, training record) from the packaged JSON."""
    data = json.loads(path.read_text())
    vocab = {f: i for i, f in enumerate(data["vocab"])}
    return (NaiveBayes.from_json(data["label_model"], vocab), NaiveBayes.from_json(data["subsystem_model"], vocab),
            data["trained_on"])


def guess(text: str, models: tuple[NaiveBayes, NaiveBayes] | None = None) -> Guess:
    """The learned best guess for ``text`` (a log), with its probabilities."""
    label_model, subsystem_model = models or load()[:2]
    feats = features(text[-MAX_CHARS:])
    lp = label_model.proba(feats)
    sp = subsystem_model.proba(feats)
    label = max(lp, key=lp.get)
    subsystem = max(sp, key=sp.get)
    return Guess(label=label, label_p=lp[label], subsystem=subsystem, subsystem_p=sp[subsystem],
                 subsystem_proba=sp, label_proba=lp)


def label_subsystem(label: str) -> str:
    """The subsystem a cause label belongs to (``triage:<subsystem>`` labels name it)."""
    from vlmctl.failures.catalog import BY_ID

    return label.split(":", 1)[1] if label.startswith("triage:") else BY_ID[label].subsystem


def choose(known: bool, triage_subsystem: str | None, g: Guess, threshold: float = THRESHOLD) -> Guess | None:
    """The learned guess the doctor gives, or None: never where a signature matched; where the rules' triage names a
    subsystem, the most probable cause of that subsystem, its probability taken among that subsystem's labels (its
    causes and "no single cause"), given when at least ``threshold``; where the triage found nothing, the most
    probable cause overall when at least ``threshold``.

    The rule that won round 12's grouped cross-validation (docs/doctor.md, "restrict"): a guess never overrides a
    matched signature and never contradicts the triage's subsystem."""
    if known:
        return None
    if not triage_subsystem or triage_subsystem == "unknown":
        return g if g.label_p >= threshold else None
    if not g.label_proba:
        ok = g.label_p >= threshold and not g.label.startswith("triage:") \
            and label_subsystem(g.label) == triage_subsystem
        return g if ok else None
    causes = {lab: p for lab, p in g.label_proba.items()
              if not lab.startswith("triage:") and label_subsystem(lab) == triage_subsystem}
    z = sum(causes.values()) + g.label_proba.get(f"triage:{triage_subsystem}", 0.0)
    if not causes or z <= 0:
        return None
    best = max(causes, key=causes.get)
    p = causes[best] / z
    return replace(g, label=best, label_p=p) if p >= threshold else None


def stands_in(known: bool, triage_subsystem: str | None, g: Guess, threshold: float = THRESHOLD) -> bool:
    """Whether a learned guess is given at all (see :func:`choose`)."""
    return choose(known, triage_subsystem, g, threshold) is not None
