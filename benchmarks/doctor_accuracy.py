"""Accuracy of `vlmctl doctor explain` on the real-log corpus (tests/failures/corpus), fit and held-out parts.

Parts: fit (signatures were written from it), held-out (split off by a hash of the URL before any signature was
written), fresh-1 … fresh-5 (collected after each freeze of the catalogue, each measured once before any signature
was written from it, then used to improve the catalogue; held-out never was), fresh-6 … fresh-9 (the shares of
batches 7 to 10 that the same URL hash did not hold out; their held-out shares joined held-out), fresh-10 and fresh-11 (batches 11
and 12, training data only: declared before they were collected, none of them held out).

A log counts as correct when the explanation's primary cause (or, where no signature matched, the learned best
guess) is the cause its thread confirmed (the corpus label); for a log whose thread only establishes the subsystem
(label ``triage:<subsystem>``) when the primary match, the triage or the learned guess names that subsystem; for a
log that is not a failure (label ``none``) when nothing matched and no guess was given.

    python benchmarks/doctor_accuracy.py            # table by category and part
    python benchmarks/doctor_accuracy.py --no-held-out --misses   # while working on signatures: never explains held-out
    python benchmarks/doctor_accuracy.py --json out.json
    python benchmarks/doctor_accuracy.py --no-held-out --write-doc   # update the doc's table, held-out column kept
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("fit", "held-out", "fresh-1", "fresh-2", "fresh-3", "fresh-4", "fresh-5", "fresh-6", "fresh-7", "fresh-8", "fresh-9",
         "fresh-10", "fresh-11")
CORPUS = ROOT / "tests" / "failures" / "corpus"


def judge(label: str, result) -> tuple[bool, str]:
    """(correct, predicted label) for one explanation against the corpus label."""
    from vlmctl.doctor.explain import predicted_label
    from vlmctl.failures import BY_ID

    predicted = predicted_label(result)
    learned = getattr(result, "learned", None)
    if label == "none":
        return not result.known and learned is None, predicted
    if label.startswith("triage:"):
        subsystem = label.split(":", 1)[1]
        via_match = result.primary is not None and BY_ID[result.primary].subsystem == subsystem
        via_triage = result.triage is not None and result.triage.subsystem == subsystem
        via_learned = learned is not None and learned.subsystem == subsystem
        return via_match or via_triage or via_learned, predicted
    return predicted == label, predicted


def evaluate(corpus_dir: Path = CORPUS, parts: tuple[str, ...] = PARTS) -> dict:
    """Per-log outcomes and accuracy by part and category (only the logs of ``parts`` are explained)."""
    from vlmctl.doctor.explain import explain
    from vlmctl.failures.corpus import load_corpus, load_split

    split = load_split(corpus_dir)
    rows = []
    for log in load_corpus(corpus_dir):
        if split[log.file] not in parts:
            continue
        ok, predicted = judge(log.label, explain(log.text))
        rows.append({"file": log.file, "url": log.url, "part": split[log.file], "category": log.category,
                     "label": log.label, "predicted": predicted, "correct": ok, "batch": log.batch})
    summary: dict = {}
    for part in PARTS:
        mine = [r for r in rows if r["part"] == part]
        if not mine:
            continue
        by_cat: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for r in mine:
            by_cat[r["category"]][0] += r["correct"]
            by_cat[r["category"]][1] += 1
        summary[part] = {
            "correct": sum(r["correct"] for r in mine), "total": len(mine),
            "accuracy": round(sum(r["correct"] for r in mine) / len(mine), 3) if mine else None,
            "by_category": {c: {"correct": v[0], "total": v[1]} for c, v in sorted(by_cat.items())},
        }
    held = [r for r in rows if r["part"] == "held-out"]
    if held:
        summary["held-out"]["by_batch"] = {
            b: {"correct": sum(r["correct"] for r in held if r["batch"] == b),
                "total": sum(1 for r in held if r["batch"] == b)} for b in sorted({r["batch"] for r in held})}
    return {"summary": summary, "logs": rows}


def table(report: dict, parts: tuple[str, ...] = PARTS) -> str:
    """The Markdown table docs/doctor.md carries (correct/total per category and part)."""
    parts = tuple(p for p in parts if p in report["summary"])
    cats = sorted({c for p in parts for c in report["summary"][p]["by_category"]})
    lines = ["| category | " + " | ".join(parts) + " |", "|---" * (len(parts) + 1) + "|"]
    for c in cats:
        cells = []
        for part in parts:
            v = report["summary"][part]["by_category"].get(c)
            cells.append(f"{v['correct']}/{v['total']}" if v else "—")
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    tot = [report["summary"][p] for p in parts]
    lines.append("| **all** | " + " | ".join(f"**{t['correct']}/{t['total']} ({t['accuracy']:.0%})**" for t in tot)
                 + " |")
    return "\n".join(lines)


DOC = ROOT / "docs" / "doctor.md"
START, END = "<!-- accuracy:start -->", "<!-- accuracy:end -->"


def doc_table(doc: Path = DOC) -> str:
    """The table currently between the accuracy markers of docs/doctor.md."""
    return doc.read_text().split(START, 1)[1].split(END, 1)[0].strip()


def without_part(md: str, part: str = "held-out") -> str:
    """``md`` (a ``table``) without one part's column, and without the rows only that part had."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in md.splitlines()]
    if part not in rows[0]:
        return md
    i = rows[0].index(part)
    kept = [r[:i] + r[i + 1:] for r in rows]
    kept = [r for n, r in enumerate(kept) if n < 2 or any(c != "—" for c in r[1:])]
    return "\n".join("| " + " | ".join(r) + " |" if n != 1 else "|---" * len(r) + "|" for n, r in enumerate(kept))


def _rows(md: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in md.splitlines()]


def with_part_from(md: str, old: str, part: str = "held-out") -> str:
    """``md`` (a ``table`` without ``part``) with ``old``'s column for ``part`` put back in its place, untouched.

    Categories only ``old`` has for that part keep their row ("—" in the other columns)."""
    old_rows = _rows(old)
    if part not in old_rows[0]:
        return md
    i = old_rows[0].index(part)
    kept = {r[0]: r[i] for r in old_rows[2:]}
    rows = _rows(md)
    parts = rows[0][1:]
    at = 1 + sum(1 for p in parts if PARTS.index(p) < PARTS.index(part))
    body = {r[0]: r for r in rows[2:]}
    total = body.pop("**all**")
    cats = sorted(set(body) | {c for c, v in kept.items() if c != "**all**" and v != "—"})
    out = [rows[0][:at] + [part] + rows[0][at:]]
    for c in cats:
        r = body.get(c, [c] + ["—"] * len(parts))
        out.append(r[:at] + [kept.get(c, "—")] + r[at:])
    out.append(total[:at] + [kept.get("**all**", "—")] + total[at:])
    lines = ["| " + " | ".join(r) + " |" for r in out]
    lines.insert(1, "|---" * len(out[0]) + "|")
    return "\n".join(lines)


def write_doc(report: dict, doc: Path = DOC) -> None:
    """Put this run's table between the accuracy markers of docs/doctor.md.

    A run without the held-out part keeps the held-out column the doc already has (what the last deliberate
    held-out evaluation measured), so updating the other parts never evaluates held-out."""
    text = doc.read_text()
    head, rest = text.split(START, 1)
    current, tail = rest.split(END, 1)
    md = table(report)
    if "held-out" not in report["summary"]:
        md = with_part_from(md, current.strip())
    doc.write_text(f"{head}{START}\n{md}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="FILE", help="also write the per-log outcomes as JSON")
    parser.add_argument("--misses", action="store_true",
                        help="list the logs that were not explained correctly (held-out misses only as a count)")
    parser.add_argument("--write-doc", action="store_true",
                        help="update the table in docs/doctor.md (with --no-held-out: every column but held-out, "
                             "which keeps its last measured value)")
    parser.add_argument("--part", choices=PARTS, help="explain and show only one part")
    parser.add_argument("--no-held-out", action="store_true", help="leave the held-out part out entirely")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    parts = (args.part,) if args.part else PARTS
    if args.no_held_out:
        parts = tuple(p for p in parts if p != "held-out")
    report = evaluate(parts=parts)
    print(table(report, parts))
    by_batch = report["summary"].get("held-out", {}).get("by_batch")
    if by_batch:
        print("held-out by batch: " + ", ".join(f"batch {b}: {v['correct']}/{v['total']}" for b, v in by_batch.items()))
    if args.misses:
        for r in report["logs"]:
            if not r["correct"] and r["part"] != "held-out":
                print(f"  miss [{r['part']}] {r['file']}: expected {r['label']}, got {r['predicted']}")
        held = sum(1 for r in report["logs"] if not r["correct"] and r["part"] == "held-out")
        if held:
            print(f"  {held} held-out misses (not listed: held-out logs are never read while writing signatures)")
    if args.write_doc:
        write_doc(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
