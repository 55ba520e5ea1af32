"""Build and validate the doctor's learned fallback (src/vlmctl/failures/learned_model.json), never reading held-out.

The corpus is read only through tests/failures/fit_view.py (fit + fresh-1 … fresh-11: the held-out entries are dropped
before their logs are opened).

    python benchmarks/learned_fallback.py build      # train on every non-held-out log, write the JSON
    python benchmarks/learned_fallback.py check      # exit 1 when the JSON is not what build would write now
    python benchmarks/learned_fallback.py cv [--historical] [--json out.json]
        # leave-one-batch-out cross-validation (groups: fit, fresh-1 … fresh-11): rules alone vs rules + learned,
        # for each way of combining them. Rules are today's catalogue (fitted on every group, so optimistic), or with
        # --historical, for each fresh-K the catalogue as it was frozen before fresh-K was used (its git commit):
        # the rules' honest figure on logs they had not seen.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "failures" / "corpus"
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "failures"))

from vlmctl.failures import learned  # noqa: E402

MIN_DF = 2
#: The commit whose catalogue was frozen when each fresh part was collected and measured once (the part's corpus
#: commit: it added the logs and changed no signature).
FROZEN_AT = {"fresh-1": "22e5d49", "fresh-2": "34e7ad8", "fresh-3": "83c83e2", "fresh-4": "c32edf9",
             "fresh-5": "e86a73d", "fresh-6": "81d518d", "fresh-7": "5863581", "fresh-8": "db04a8b",
             "fresh-9": "0ef549b", "fresh-10": "cb6404d",
             "fresh-11": "8704769"}
GROUPS = ("fit", *FROZEN_AT)


def entries() -> list[dict]:
    """The non-held-out entries with their log text (fit_view drops held-out before any log is opened)."""
    from fit_view import fit_entries

    out = []
    for e in fit_entries():
        out.append(dict(e, text=(CORPUS / e["file"]).read_text(errors="replace")))
    return out


def train(rows: list[dict], alpha: float = learned.ALPHA) -> tuple[learned.NaiveBayes, learned.NaiveBayes]:
    """(cause model, subsystem model) from corpus rows; ``none`` logs (not failures) are left out."""
    docs = [(learned.features(r["text"]), r["label"], r["category"]) for r in rows if r["label"] != "none"]
    label_model = learned.NaiveBayes.train([(f, lab) for f, lab, _ in docs], MIN_DF, alpha)
    subsystem_model = learned.NaiveBayes.train([(f, cat) for f, _, cat in docs], MIN_DF, alpha)
    # one vocabulary for both (the same documents and min_df give the same one)
    assert label_model.vocab == subsystem_model.vocab
    return label_model, subsystem_model


def model_json(rows: list[dict]) -> dict:
    label_model, subsystem_model = train(rows)
    parts: dict[str, int] = {}
    for r in rows:
        parts[r["part"]] = parts.get(r["part"], 0) + 1
    vocab = sorted(label_model.vocab, key=label_model.vocab.get)
    return {
        "what": "multinomial naive Bayes over words and word pairs of a log (vlmctl.failures.learned.features)",
        "trained_on": {"parts": parts, "logs": sum(parts.values()),
                       "failure_logs": sum(1 for r in rows if r["label"] != "none"), "held_out": "never read",
                       "commit": _git("rev-parse", "--short", "HEAD"), "date": dt.date.today().isoformat(),
                       "builder": "benchmarks/learned_fallback.py build", "min_df": MIN_DF},
        "vocab": vocab,
        "label_model": label_model.to_json(),
        "subsystem_model": subsystem_model.to_json(),
    }


def _git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def _same_model(a: dict, b: dict) -> bool:
    drop = ("commit", "date")
    strip = lambda d: {**d, "trained_on": {k: v for k, v in d["trained_on"].items() if k not in drop}}  # noqa: E731
    return strip(a) == strip(b)


def dump(data: dict) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n"


# --- the rules' outputs, from today's catalogue or from an older commit's (in a subprocess) -----------------------

_RULES_SCRIPT = r"""
import json, sys
from vlmctl.doctor.explain import explain
from vlmctl.failures import BY_ID
out = {}
for path in json.load(sys.stdin):
    r = explain(open(path, errors="replace").read())
    t = getattr(r, "triage", None)
    out[path] = {"known": r.known, "primary": r.primary,
                 "primary_subsystem": BY_ID[r.primary].subsystem if r.primary else None,
                 "generic": bool(r.primary) and BY_ID[r.primary].specificity < 2,
                 "matches": [m.id for m in r.matches],
                 "triage": t.subsystem if t is not None else None,
                 "triage_scores": dict(t.scores) if t is not None else {}}
print(json.dumps(out))
"""


def rules_outputs(files: list[str], commit: str | None = None) -> dict[str, dict]:
    """file -> the rule-based doctor's answer, from the working tree's src or from ``commit``'s."""
    paths = [str(CORPUS / f) for f in files]
    with tempfile.TemporaryDirectory() as tmp:
        src = ROOT / "src"
        if commit is not None:
            archive = subprocess.run(["git", "archive", commit, "src"], cwd=ROOT, capture_output=True,
                                     check=True).stdout
            tarfile.open(fileobj=BytesIO(archive)).extractall(tmp, filter="data")
            src = Path(tmp) / "src"
        env = dict(os.environ, PYTHONPATH=str(src))
        done = subprocess.run([sys.executable, "-c", _RULES_SCRIPT], input=json.dumps(paths), env=env,
                              capture_output=True, text=True, check=True)
    raw = json.loads(done.stdout)
    return {Path(p).name: v for p, v in raw.items()}


# --- combining the two ---------------------------------------------------------------------------------------------

def rules_answer(out: dict) -> tuple[str, set[str]]:
    """(predicted label, subsystems the answer names) of the rules alone."""
    named = {s for s in (out["primary_subsystem"], out["triage"]) if s and s != "unknown"}
    if out["primary"]:
        return out["primary"], named
    if out["known"]:
        return "known", named
    if out["triage"] and out["triage"] != "unknown":
        return f"triage:{out['triage']}", named
    return "none", named


def undecided(out: dict) -> bool:
    """Nothing matched, or only a generic symptom did: where the doctor triages."""
    return not out["known"] or out["generic"]


label_subsystem = learned.label_subsystem


def _confirm(known: bool, triage_subsystem: str | None, g: learned.Guess, tau: float) -> bool:
    """Round 11's rule: the overall most probable cause, when it lies in the triage's subsystem."""
    if known or g.label_p < tau:
        return False
    if not triage_subsystem or triage_subsystem == "unknown":
        return True
    return not g.label.startswith("triage:") and label_subsystem(g.label) == triage_subsystem


def combine(rule: str, out: dict, g: learned.Guess, tau: float) -> tuple[str, set[str]]:
    """The combined answer under one combination rule (see COMBINATIONS)."""
    pred, named = rules_answer(out)
    if rule == "rules":
        return pred, named
    if rule in ("fallback", "fallback+vote") and undecided(out) and g.label_p >= tau:
        return g.label, {label_subsystem(g.label)}
    if rule == "nomatch" and not out["known"] and g.label_p >= tau:
        return g.label, {label_subsystem(g.label)}
    if rule in ("confirm", "confirm+vote") and _confirm(out["known"], out["triage"], g, tau):
        return g.label, {label_subsystem(g.label)}
    if rule == "restrict":
        chosen = learned.choose(out["known"], out["triage"], g, tau)
        if chosen is not None:
            return chosen.label, {label_subsystem(chosen.label)}
    if rule in ("vote", "fallback+vote", "confirm+vote") and undecided(out):
        scores = {k: v for k, v in out["triage_scores"].items()}
        total = sum(scores.values()) or 1.0
        mixed = {s: (1 - tau) * scores.get(s, 0.0) / total + tau * g.subsystem_proba.get(s, 0.0)
                 for s in set(scores) | set(g.subsystem_proba)}
        best = max(mixed, key=mixed.get)
        keep = {out["primary_subsystem"]} if out["primary"] else set()
        return (out["primary"] or f"triage:{best}"), keep | {best}
    if rule == "rerank" and out["known"] and not out["generic"] and g.label in out["matches"] \
            and g.label != out["primary"] and g.label_p >= tau:
        return g.label, {label_subsystem(g.label)}
    return pred, named


COMBINATIONS = (("rules", 0.0), ("fallback", 0.5), ("fallback", 0.9), ("nomatch", 0.5),
                ("confirm", 0.5), ("confirm", 0.9), ("vote", 0.3), ("confirm+vote", 0.3), ("rerank", 0.9),
                ("restrict", 0.3), ("restrict", 0.5), ("restrict", 0.7))
"""(rule, threshold or weight) compared by the cross-validation:

* fallback@t — where the doctor triages (nothing matched, or only a generic symptom), the learned cause when its
  probability is at least t;
* nomatch@t — the same, only where no signature matched at all;
* confirm@t — where no signature matched, the learned cause when its probability is at least t and it lies in the
  subsystem the triage names, or the triage found nothing (round 11's rule);
* restrict@t — where no signature matched, the most probable cause of the subsystem the triage names, when its
  probability among that subsystem's labels is at least t (overall when the triage found nothing): round 12's rule,
  ``vlmctl.failures.learned.choose``;
* vote@w — the triage's subsystem from its score shares mixed with the learned subsystem probabilities (weight w);
* confirm+vote@w — both;
* rerank@t — among the signatures that matched, the learned cause when it is one of them and at least t likely.
"""


def correct(label: str, pred: str, named: set[str]) -> bool:
    if label == "none":
        return pred == "none" or pred.startswith("triage:")
    if label.startswith("triage:"):
        return label.split(":", 1)[1] in named
    return pred == label


def cross_validate(rows: list[dict], historical: bool) -> dict:
    """Per group and combination: correct / total, the learned models trained without the group."""
    files = [r["file"] for r in rows]
    today = rules_outputs(files)
    outs: dict[str, dict] = dict(today)
    if historical:
        for part, commit in FROZEN_AT.items():
            mine = [r["file"] for r in rows if r["part"] == part]
            outs.update(rules_outputs(mine, commit))
    result: dict[str, dict] = {}
    for group in GROUPS:
        train_rows = [r for r in rows if r["part"] != group]
        test_rows = [r for r in rows if r["part"] == group]
        models = train(train_rows)
        cells = {}
        for rule, tau in COMBINATIONS:
            ok = 0
            for r in test_rows:
                g = learned.guess(r["text"], models)
                ok += correct(r["label"], *combine(rule, outs[r["file"]], g, tau))
            cells[f"{rule}@{tau}" if rule != "rules" else "rules"] = ok
        # the learned models alone, for reference
        alone = 0
        for r in test_rows:
            g = learned.guess(r["text"], models)
            alone += correct(r["label"], g.label, {label_subsystem(g.label)})
        cells["learned alone"] = alone
        result[group] = {"total": len(test_rows), **cells}
    return result


def cv_table(result: dict) -> str:
    keys = [k for k in next(iter(result.values())) if k != "total"]
    lines = ["| group | logs | " + " | ".join(keys) + " |", "|---" * (len(keys) + 2) + "|"]
    for group, cells in result.items():
        lines.append(f"| {group} | {cells['total']} | " + " | ".join(str(cells[k]) for k in keys) + " |")
    n = sum(c["total"] for c in result.values())
    sums = {k: sum(c[k] for c in result.values()) for k in keys}
    lines.append(f"| **all** | {n} | " + " | ".join(f"**{sums[k]} ({sums[k] / n:.1%})**" for k in keys) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("build", "check", "cv"))
    parser.add_argument("--historical", action="store_true",
                        help="cv: each fresh part's rules as frozen before it was used (older commits' src)")
    parser.add_argument("--json", metavar="FILE", help="cv: also write the numbers as JSON")
    args = parser.parse_args(argv)
    rows = entries()
    if args.command == "build":
        learned.MODEL_PATH.write_text(dump(model_json(rows)))
        print(f"wrote {learned.MODEL_PATH.relative_to(ROOT)} ({learned.MODEL_PATH.stat().st_size // 1024} KB)")
        return 0
    if args.command == "check":
        now = json.loads(learned.MODEL_PATH.read_text())
        same = _same_model(now, model_json(rows))
        print("learned_model.json is what the builder writes from the corpus now" if same else
              "learned_model.json is stale: python benchmarks/learned_fallback.py build")
        return 0 if same else 1
    result = cross_validate(rows, args.historical)
    print(cv_table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
