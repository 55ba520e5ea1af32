"""Reproduce docs/bench.md: sweep `vlmctl bench` over the embedded demo server and check its counts.

    python benchmarks/bench_demo_sweep.py [--out artifacts/bench-demo-sweep.json] [--plot docs/img/bench-demo-sweep.png]

Starts `python -m vlmctl.serve.demo` on a free 127.0.0.1 port, runs text + image + video at concurrency
1,2,4,8, prints the table, writes the JSON (and the PNG), then compares bench's totals with the server's
own Prometheus counters (requests ok, generated and prompt tokens) and prints both.
"""
from __future__ import annotations

import argparse
import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from vlmctl.bench.loadgen import LoadSpec
from vlmctl.bench.plot import plot
from vlmctl.bench.report import table
from vlmctl.bench.runner import resolve_model, run_sweep
from vlmctl.bench.workload import parse_mix
from vlmctl.cli._output import console


def _counter(text: str, name: str, labels: str = "") -> float:
    pattern = "^" + re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else r"(?:\{[^}]*\})?") + r"\s+(\S+)"
    return float(re.search(pattern, text, re.M).group(1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="artifacts/bench-demo-sweep.json")
    ap.add_argument("--plot", default=None)
    ap.add_argument("--requests", type=int, default=24)
    ap.add_argument("--max-tokens", type=int, default=32)
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "vlmctl.serve.demo", "--port", str(port), "--no-ui"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(base + "/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                print("demo server did not start", file=sys.stderr)
                return 1
            time.sleep(0.5)
        before = httpx.get(base + "/metrics").text
        mix = parse_mix(["text=2", "image@640x480=2", "video@320x240x8=1"])
        levels = [LoadSpec(concurrency=c, num_requests=args.requests, warmup=2) for c in (1, 2, 4, 8)]
        result = run_sweep(base + "/v1", None, resolve_model(base + "/v1", None), mix, levels, args.max_tokens)
        after = httpx.get(base + "/metrics").text
    finally:
        server.terminate()
        server.wait(timeout=15)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    if args.plot:
        plot(result, args.plot)
    con = console()
    con.width = max(con.width, 130)
    con.print(table(result))
    warmups = sum(spec.warmup for spec in levels)
    bench_ok = sum(lv["summary"]["completed"] for lv in result["levels"])
    server_ok = _counter(after, "vlmctl_requests_total", 'outcome="ok"') - _counter(before, "vlmctl_requests_total",
                                                                                   'outcome="ok"')
    bench_gen = sum(lv["summary"]["total_output_tokens"] for lv in result["levels"])
    server_gen = _counter(after, "vllm:generation_tokens_total") - _counter(before, "vllm:generation_tokens_total")
    print(f"requests ok: bench {bench_ok} + {warmups} warm-up, server {server_ok:.0f}")
    print(f"generated tokens: bench {bench_gen} + warm-up, server {server_gen:.0f}")
    print(f"wrote {out}" + (f" and {args.plot}" if args.plot else ""))
    return 0 if server_ok == bench_ok + warmups else 2


if __name__ == "__main__":
    sys.exit(main())
