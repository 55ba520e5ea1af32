"""Where a recorded benchmark result came from: the repository's commit."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def git_commit() -> str:
    """The short commit of this checkout, or "unknown" outside git."""
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def recorded_doc(path: Path) -> dict:
    """A predictions file as recorded, without its ``recorded`` provenance."""
    doc = json.loads(path.read_text())
    doc.pop("recorded", None)
    return doc


def same_as_recorded(recorded: dict, doc: dict) -> bool:
    """Whether freshly computed ``doc`` is what ``recorded`` holds (compared as JSON)."""
    return recorded == json.loads(json.dumps(doc))


def write_recorded(path: Path, doc: dict, note: str) -> None:
    """Write ``doc`` with its provenance (date, commit, ``note``) first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"recorded": {"date": dt.date.today().isoformat(), "commit": git_commit(),
                                             "note": note}, **doc}, indent=1) + "\n")
