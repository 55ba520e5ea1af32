"""Helpers of benchmarks/gpu/visit_multigpu.sh (multi-GPU layouts: DP against TP and PP).

    python3 multigpu_visit.py layout PLAN.json                 # DP4, DP2xTP2, TP2, ... of a `vlmctl plan --json`
    python3 multigpu_visit.py memory ENGINE.log SMI.csv OUT.json   # per-rank memory from the engine log

``memory``: per engine process (``EngineCore_DP<n>``, ``Worker_…TP<t>`` …, vLLM 0.26 at DEBUG): weights ("Model
loading took"), the torch peak and non-torch increase of the memory profile, the KV memory and tokens, and the
memory NVML shows for that process once serving (``nvidia-smi --query-compute-apps=pid,used_memory``).
"""
from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

sys.path.insert(0, str(ROOT / "benchmarks"))
from multigpu_predictions import layout_name  # noqa: E402


def layout(path: str) -> str:
    """The layout name of a plan file (a PlanResult or a bare Plan)."""
    data = json.loads(Path(path).read_text())
    plan = data.get("plan", data)
    gpus = plan["data_parallel_size"] * plan["tensor_parallel_size"] * plan["pipeline_parallel_size"]
    return layout_name(gpus if gpus in (2, 4) else 4, plan["data_parallel_size"], plan["tensor_parallel_size"],
                       plan["pipeline_parallel_size"])


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_PROC = re.compile(r"\(((?:EngineCore|Worker)[A-Za-z0-9_]*) pid=(\d+)\)")
#: Output key -> the vLLM 0.26 profile's memory-line key (the patterns live in vlmctl.engines.vllm).
_FIELDS = {"weights_gib": "weights_gib", "torch_peak_gib": "torch_peak_gib", "non_torch_gib": "non_torch_gib",
           "available_kv_gib": "available_kv_gib", "graph_gib": "graph_capture_gib", "kv_tokens": "kv_tokens"}


def _field_patterns() -> dict[str, tuple[re.Pattern, type]]:
    from vlmctl.engines.vllm import profile

    patterns = profile("0.26.0").memory_lines.patterns
    return {out: (re.compile(patterns[key][0]), patterns[key][1]) for out, key in _FIELDS.items()}


def memory(log: str, smi: str, out: str) -> int:
    """Per-process memory figures of one engine log (+ NVML per pid) as JSON."""
    text = _ANSI.sub("", Path(log).read_text(errors="replace"))
    fields = _field_patterns()
    procs: dict[int, dict] = {}
    for line in text.splitlines():
        found = _PROC.findall(line)
        if not found:
            continue
        name, pid = "/".join(n for n, _ in found), found[-1][1]
        row = procs.setdefault(int(pid), {"pid": int(pid), "process": name})
        if len(name) > len(row["process"]):  # early lines carry a shorter name ("Worker pid=…")
            row["process"] = name
        for key, (rx, kind) in fields.items():
            m = rx.search(line)
            if m and key not in row:
                row[key] = kind(m.group(1).replace(",", ""))
    nvml: dict[int, float] = {}
    if Path(smi).exists():
        for rec in csv.reader(Path(smi).read_text().splitlines()[1:]):
            try:
                nvml[int(rec[0])] = round(float(rec[1].split()[0]) / 1024, 2)
            except (IndexError, ValueError):
                continue
    for pid, row in procs.items():
        if pid in nvml:
            row["nvml_used_gib"] = nvml[pid]
    ranks = sorted((r for r in procs.values() if len(r) > 2), key=lambda r: r["process"])
    Path(out).write_text(json.dumps({"log": Path(log).name, "processes": ranks}, indent=1) + "\n")
    for r in ranks:
        print(" ".join(f"{k}={v}" for k, v in r.items()))
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("layout", "memory"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "layout" and len(argv) == 2:
        print(layout(argv[1]))
        return 0
    if argv[0] == "memory" and len(argv) == 4:
        return memory(*argv[1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
