"""Shared by the calibrate tests: the recorded vLLM 0.26.0 engines of docs/validation.md."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "docs" / "validation" / "logs"
#: docs/validation.md's model keys → catalog ids.
MODELS = {"3B": "Qwen/Qwen2.5-VL-3B-Instruct", "7B": "Qwen/Qwen2.5-VL-7B-Instruct",
          "32B": "Qwen/Qwen2.5-VL-32B-Instruct", "7B-AWQ": "Qwen/Qwen2.5-VL-7B-Instruct-AWQ"}


def validation_rows() -> dict[str, dict]:
    """docs/validation.md § 1: run name → {split, verdict (measured/predicted), err (KV tokens %, or None)}."""
    out = {}
    for line in (ROOT / "docs" / "validation.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 10 and re.match(r"[ABC]\d_", cells[0]):
            out[cells[0]] = {"split": cells[1], "verdict": cells[2],
                             "err": None if cells[9] == "—" else float(cells[9])}
    return out


@pytest.fixture(scope="session")
def recorded():
    """(rows parsed from the recorded logs, the names docs/validation.md fitted on, its table)."""
    from vlmctl.calibrate.logs import logged_config, parse_log

    table = validation_rows()
    rows = []
    for name in table:
        text = (LOGS / f"{name}.log").read_text()
        row = parse_log(text)
        row.update(name=name, config=logged_config(text))
        rows.append(row)
    fit_on = {n for n, r in table.items() if r["split"] == "fit"}
    return rows, fit_on, table
