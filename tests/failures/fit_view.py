"""Look at the corpus without ever printing a held-out entry (its log, file name, label, cause or fix).

    python tests/failures/fit_view.py list            # fit-side entries: part, file, label, predicted
    python tests/failures/fit_view.py misses          # fit-side entries doctor explain gets wrong
    python tests/failures/fit_view.py show FILE       # one fit-side entry with its log (refused if held out)
    python tests/failures/fit_view.py counts          # entries per part (numbers only)

Held-out entries are dropped before anything else reads them: they are neither explained nor printed.
"""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "failures" / "corpus"
sys.path.insert(0, str(ROOT / "src"))


def _split() -> dict[str, str]:
    data = yaml.safe_load((CORPUS / "split.yaml").read_text())
    return {name: part for part, names in data.items() for name in names}


def fit_entries() -> list[dict]:
    """Index entries whose recorded part is not held-out (unsplit entries are refused too)."""
    split = _split()
    index = yaml.safe_load((CORPUS / "index.yaml").read_text())["logs"]
    return [dict(e, part=split[e["file"]]) for e in index if split.get(e["file"], "held-out") != "held-out"]


def _explain(entry: dict):
    from vlmctl.doctor.explain import explain, predicted_label

    result = explain((CORPUS / entry["file"]).read_text(errors="replace"))
    return result, predicted_label(result)


def _correct(entry: dict, result, predicted: str) -> bool:
    from vlmctl.failures import BY_ID

    label = entry["label"]
    if label == "none":
        return not result.known and result.learned is None
    if label.startswith("triage:"):
        sub = label.split(":", 1)[1]
        return bool((result.primary and BY_ID[result.primary].subsystem == sub)
                    or (result.triage and result.triage.subsystem == sub)
                    or (result.learned and result.learned.subsystem == sub))
    return predicted == label


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else "list"
    if cmd == "counts":
        parts: dict[str, int] = {}
        for part in _split().values():
            parts[part] = parts.get(part, 0) + 1
        print(parts)
        return 0
    entries = fit_entries()
    if cmd == "show":
        for e in entries:
            if e["file"] == argv[1]:
                print(yaml.safe_dump({k: v for k, v in e.items()}, sort_keys=False, width=120))
                print((CORPUS / e["file"]).read_text(errors="replace"))
                return 0
        print("not a fit-side entry (held out or unknown): refused")
        return 1
    wanted = argv[1] if len(argv) > 1 else None
    ok = total = 0
    for e in entries:
        if wanted and e["part"] != wanted:
            continue
        result, predicted = _explain(e)
        good = _correct(e, result, predicted)
        ok += good
        total += 1
        if cmd == "list" or (cmd == "misses" and not good):
            print(f"{'ok  ' if good else 'MISS'} [{e['part']}] {e['file']}: {e['label']} -> {predicted}")
    print(f"{ok}/{total} correct on the fit side" + (f" ({wanted})" if wanted else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
