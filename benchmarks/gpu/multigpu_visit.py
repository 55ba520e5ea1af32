"""Helpers of benchmarks/gpu/visit_multigpu.sh (multi-GPU layouts: DP against TP and PP).

    python3 multigpu_visit.py layout PLAN.json                 # DP4, DP2xTP2, TP2, ... of a `vlmctl plan --json`
    python3 multigpu_visit.py bench [vlmctl bench options]     # `vlmctl bench`, one distinct image per request
    python3 multigpu_visit.py memory ENGINE.log SMI.csv OUT.json   # per-rank memory from the engine log

``bench``: `vlmctl bench` draws its images from four per size, so after the first requests vLLM serves them from its
prefix and encoder caches. Here its workload takes each request's image from a pool of distinct images generated
before the sweep (``MG_IMAGES`` of them, default 3000, by ``--jobs`` processes, kept in ``MG_POOL`` between layouts),
so no two requests of one run share an image. A run that needs more images than the pool reuses them in order and
says how many in ``<out>.images.json``.

``memory``: per engine process (``EngineCore_DP<n>``, ``Worker_…TP<t>`` …, vLLM 0.26 at DEBUG): weights ("Model
loading took"), the torch peak and non-torch increase of the memory profile, the KV memory and tokens, and the
memory NVML shows for that process once serving (``nvidia-smi --query-compute-apps=pid,used_memory``).
"""
from __future__ import annotations

import csv
import json
import os
import pickle
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


def _one_image(args: tuple[int, int, int]) -> str:
    from vlmctl.bench import media

    width, height, seed = args
    return media.data_uri(media.image_bytes(width, height, seed), "image/jpeg")


def image_pool(width: int, height: int, count: int, jobs: int) -> list[str]:
    """``count`` distinct data URIs (seeds 1000…), cached in ``MG_POOL`` (a pickle) for the next layout."""
    cache = Path(os.environ.get("MG_POOL", f"/tmp/mg_pool_{width}x{height}.pkl"))
    if cache.exists():
        pool = pickle.loads(cache.read_bytes())
        if len(pool) >= count:
            return pool[:count]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=max(1, jobs)) as ex:
        pool = list(ex.map(_one_image, [(width, height, 1000 + i) for i in range(count)], chunksize=16))
    cache.write_bytes(pickle.dumps(pool))
    return pool


def bench(argv: list[str]) -> int:
    """`vlmctl bench ARGV` with a workload that sends each image once."""
    from vlmctl.bench import runner
    from vlmctl.bench.workload import Workload
    from vlmctl.cli.main import main

    count = int(os.environ.get("MG_IMAGES", "3000"))
    jobs = int(os.environ.get("MG_JOBS", str(min(32, os.cpu_count() or 1))))
    used: dict[str, int] = {}

    class DistinctImages(Workload):
        def __init__(self, mix, *args, **kwargs):
            super().__init__(mix, *args, **{**kwargs, "variants": 1})
            self.pools = {e.label: image_pool(e.width, e.height, count, jobs) for e in mix if e.kind == "image"}

        def next_request(self):
            label, body = super().next_request()
            if label in self.pools:
                n = used.get(label, 0)
                used[label] = n + 1
                for part in body["messages"][0]["content"]:
                    if part.get("type") == "image_url":
                        part["image_url"]["url"] = self.pools[label][n % len(self.pools[label])]
            return label, body

    runner.Workload = DistinctImages
    try:
        return main(["bench", *argv])
    finally:
        out = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--out", "--result-filename")), None)
        record = {"pool": count, "sent": used, "reused": {k: max(0, n - count) for k, n in used.items()}}
        print(f"distinct images: {record}", file=sys.stderr)
        if out:
            Path(out + ".images.json").write_text(json.dumps(record) + "\n")


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_PROC = re.compile(r"\(((?:EngineCore|Worker)[A-Za-z0-9_]*) pid=(\d+)\)")
_FIELDS = {
    "weights_gib": re.compile(r"Model loading took ([\d.]+) GiB"),
    "torch_peak_gib": re.compile(r"torch peak memory increase: ([\d.]+)GiB"),
    "non_torch_gib": re.compile(r"non-torch forward increase memory: ([\d.]+)GiB"),
    "available_kv_gib": re.compile(r"Available KV cache memory: ([\d.]+) GiB"),
    "graph_gib": re.compile(r"Graph capturing finished in \d+ secs, took ([\d.]+) GiB"),
    "kv_tokens": re.compile(r"GPU KV cache size: ([\d,]+) tokens"),
}


def memory(log: str, smi: str, out: str) -> int:
    """Per-process memory figures of one engine log (+ NVML per pid) as JSON."""
    text = _ANSI.sub("", Path(log).read_text(errors="replace"))
    procs: dict[int, dict] = {}
    for line in text.splitlines():
        found = _PROC.findall(line)
        if not found:
            continue
        name, pid = "/".join(n for n, _ in found), found[-1][1]
        row = procs.setdefault(int(pid), {"pid": int(pid), "process": name})
        if len(name) > len(row["process"]):  # early lines carry a shorter name ("Worker pid=…")
            row["process"] = name
        for key, rx in _FIELDS.items():
            m = rx.search(line)
            if m and key not in row:
                value = m.group(1).replace(",", "")
                row[key] = int(value) if key == "kv_tokens" else float(value)
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
    if not argv or argv[0] not in ("layout", "bench", "memory"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "layout" and len(argv) == 2:
        print(layout(argv[1]))
        return 0
    if argv[0] == "bench":
        return bench(argv[1:])
    if argv[0] == "memory" and len(argv) == 4:
        return memory(*argv[1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
