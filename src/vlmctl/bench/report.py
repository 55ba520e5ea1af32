"""Render bench results: a rich table, and a side-by-side comparison of two runs."""
from __future__ import annotations

import json
import math
from pathlib import Path

from vlmctl.errors import ConfigError


def level_name(level: dict) -> str:
    """``c=8`` or ``rate=2.0/s`` (or both)."""
    parts = []
    if level.get("concurrency"):
        parts.append(f"c={level['concurrency']}")
    if level.get("rate"):
        parts.append(f"rate={level['rate']:g}/s")
    return " ".join(parts) or "unbounded"


def _ms(dist: dict | None, key: str) -> str:
    return f"{dist[key] * 1000:.0f}" if dist else "-"


def table(result: dict):
    """A rich Table with one row per level."""
    from rich.table import Table

    meta = result["meta"]
    title = f"vlmctl bench · {meta['model']} · {' '.join(meta['mix'])} · max_tokens {meta['max_tokens']}"
    if meta.get("interrupted"):
        title += " · INTERRUPTED (partial)"
    t = Table(title=title)
    for col in ("level", "ok/fail", "req/s", "out tok/s", "TTFT ms p50/p99", "TPOT ms p50", "ITL ms p50",
                "E2E s p50/p99", "errors"):
        t.add_column(col, justify="left" if col in ("level", "errors") else "right")
    for level in result["levels"]:
        s = level["summary"]
        e2e = s["e2e_s"]
        t.add_row(level_name(level), f"{s['completed']}/{s['failed']}", f"{s['request_throughput']:.2f}",
                  f"{s['output_throughput']:.1f}", f"{_ms(s['ttft_s'], 'p50')}/{_ms(s['ttft_s'], 'p99')}",
                  _ms(s["tpot_s"], "p50"), _ms(s["itl_s"], "p50"),
                  f"{e2e['p50']:.2f}/{e2e['p99']:.2f}" if e2e else "-",
                  ", ".join(f"{k}:{v}" for k, v in s["errors"].items()) or "-")
    return t


def load(path: str) -> dict:
    """Read a result written by `vlmctl bench --out` (either --result-format) or by `vllm bench serve`."""
    from vlmctl.bench import vllm_format

    p = Path(path)
    if not p.exists():
        raise ConfigError(f"'{path}' does not exist.", fix="write one with `vlmctl bench --out run.json`")
    if not p.is_file():
        raise ConfigError(f"'{path}' is not a regular file.", fix="pass a file written by `vlmctl bench --out`")
    try:
        objects = vllm_format.read_objects(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"'{path}' is not JSON ({exc.msg}).", fix="pass a file written by `vlmctl bench --out`") from None
    except UnicodeDecodeError:
        raise ConfigError(f"'{path}' is not UTF-8 text.", fix="pass a file written by `vlmctl bench --out`") from None
    except (OSError, RecursionError, ValueError) as exc:
        raise ConfigError(f"'{path}' cannot be read ({type(exc).__name__}).",
                          fix="pass a file written by `vlmctl bench --out`") from None
    fix = "pass a file written by `vlmctl bench --out` or `vllm bench serve --save-result`"
    if objects and all(isinstance(o, dict) and vllm_format.is_vllm_result(o) for o in objects):
        try:
            return vllm_format.to_result(objects)
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise ConfigError(f"'{path}' looks like a `vllm bench serve` result but a field is missing or not a "
                              f"number ({type(exc).__name__}: {str(exc)[:80]}).", fix=fix) from None
    data = objects[0] if len(objects) == 1 else None
    if not isinstance(data, dict) or not str(data.get("schema", "")).startswith("vlmctl-bench/"):
        raise ConfigError(f"'{path}' is not a vlmctl bench result (no schema 'vlmctl-bench/…') nor a "
                          "`vllm bench serve` result (no 'completed', 'request_throughput').", fix=fix)
    levels = data.get("levels")
    if not isinstance(levels, list) or not all(
            isinstance(lv, dict) and isinstance(lv.get("summary"), dict) for lv in levels):
        raise ConfigError(f"'{path}' has the vlmctl bench schema but no list of levels with a 'summary' each "
                          "(truncated or edited?).", fix=fix)
    return data


#: (label, path in summary, higher is better)
COMPARED = (
    ("req/s", ("request_throughput",), True),
    ("output tok/s", ("output_throughput",), True),
    ("total tok/s", ("total_token_throughput",), True),
    ("goodput req/s", ("request_goodput",), True),
    ("TTFT p50", ("ttft_s", "p50"), False),
    ("TTFT p99", ("ttft_s", "p99"), False),
    ("TPOT p50", ("tpot_s", "p50"), False),
    ("ITL p50", ("itl_s", "p50"), False),
    ("E2E p50", ("e2e_s", "p50"), False),
    ("E2E p99", ("e2e_s", "p99"), False),
    ("failed", ("failed",), False),
)


def _get(summary: dict, path: tuple[str, ...]):
    """The finite number at ``path`` in ``summary``, else None (missing, or not a number in an edited file)."""
    value = summary
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return value


def compare(a: dict, b: dict) -> list[dict]:
    """Rows of (level, metric, A, B, B/A, better) for levels present in both runs."""
    b_levels = {level_name(level): level for level in b["levels"]}
    rows = []
    for level in a["levels"]:
        name = level_name(level)
        other = b_levels.get(name)
        if other is None:
            continue
        for label, path, higher_better in COMPARED:
            va, vb = _get(level["summary"], path), _get(other["summary"], path)
            if va is None and vb is None:
                continue
            ratio = (vb / va) if (va not in (None, 0) and vb is not None) else None
            better = None
            if va is not None and vb is not None and va != vb:
                better = "B" if (vb > va) == higher_better else "A"
            rows.append({"level": name, "metric": label, "a": va, "b": vb,
                         "ratio": round(ratio, 4) if ratio is not None else None, "better": better})
    return rows


def compare_table(rows: list[dict], a_name: str, b_name: str):
    """A rich Table of `compare` rows."""
    from rich.table import Table

    t = Table(title=f"vlmctl bench compare · A={a_name} · B={b_name}")
    for col in ("level", "metric", "A", "B", "B/A", "better"):
        t.add_column(col, justify="left" if col in ("level", "metric", "better") else "right")
    for r in rows:
        fmt = (lambda v: "-" if v is None else f"{v:.4g}")
        colour = {"A": "red", "B": "green"}.get(r["better"] or "", "")
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        t.add_row(r["level"], r["metric"], fmt(r["a"]), fmt(r["b"]), ratio,
                  f"[{colour}]{r['better']}[/]" if colour else "=")
    return t


def predicted_table(rows: list[dict]):
    """Measured next to the plan's prediction, one row per level (`predicted_levels`)."""
    from rich.table import Table

    workloads = sorted({r["workload"] for r in rows if r.get("workload")})
    t = Table(title="measured vs the plan's speed model (median request"
                    + (f"; --workload {' '.join(workloads)})" if workloads else ")"))
    for col in ("level", "out tok/s meas / pred", "TTFT ms meas / pred", "TPOT ms meas / pred"):
        t.add_column(col, justify="left" if col == "level" else "right")

    def cell(pair, fmt: str) -> str:
        meas, pred = pair
        if meas is None:
            return f"- / {pred:{fmt}}"
        return f"{meas:{fmt}} / {pred:{fmt}} ({pred / meas - 1:+.0%})" if meas else f"{meas:{fmt}} / {pred:{fmt}}"

    for r in rows:
        t.add_row(f"c={r['concurrency']}", cell(r["output_tokens_per_s"], ",.1f"), cell(r["ttft_ms"], ",.0f"),
                  cell(r["tpot_ms"], ".1f"))
    return t
