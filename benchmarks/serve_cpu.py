"""Load on the embedded CPU demo server: N concurrent streaming requests, each with an image, for D seconds.

    .venv/bin/python benchmarks/serve_cpu.py                     # starts `vlmctl serve` itself
    .venv/bin/python benchmarks/serve_cpu.py --api-base http://127.0.0.1:8000/v1 --duration 60

First a single-request phase (sequential requests: the TTFT a lone user sees; target p50 ≤ 1 s),
then the load phase (``--concurrency`` workers, each sending its next request when the last ends).
Prints a table and writes JSON (default ``artifacts/serve_cpu.json``). Exit code 1 on any failure.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def _image_uri(width: int, height: int, seed: int) -> str:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = (rng.random((height, width, 3)) * 255).astype("uint8")
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def _one(client, api_base: str, model: str, image: str, max_tokens: int, headers: dict) -> dict:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": image}},
            {"type": "text", "text": "Describe this image."},
        ]}],
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    start = time.perf_counter()
    ttft, tokens, done = None, 0, False
    try:
        async with client.stream("POST", f"{api_base}/chat/completions", json=body, headers=headers) as resp:
            if resp.status_code != 200:
                return {"ok": False, "error": f"HTTP {resp.status_code}: {(await resp.aread())[:200]!r}"}
            async for line in resp.aiter_lines():
                if not line.startswith("data: "):
                    continue
                if line == "data: [DONE]":
                    done = True
                    break
                chunk = json.loads(line[6:])
                if chunk.get("usage"):
                    tokens = chunk["usage"]["completion_tokens"]
                if ttft is None and chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                    ttft = time.perf_counter() - start
    except Exception as exc:  # counted as a failure
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    end = time.perf_counter()
    if not done:
        return {"ok": False, "error": "stream ended without [DONE]"}
    return {"ok": True, "ttft": ttft if ttft is not None else end - start, "latency": end - start, "tokens": tokens,
            "start": start, "end": end}


async def _run(args, api_base: str, model: str) -> dict:
    import httpx

    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    images = [_image_uri(args.image_width, args.image_height, seed) for seed in range(8)]
    limits = httpx.Limits(max_connections=args.concurrency + 4)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        single = [await _one(client, api_base, model, images[i % 8], args.max_tokens, headers)
                  for i in range(args.single_requests)]
        records: list[dict] = []
        deadline = time.perf_counter() + args.duration

        async def worker(w: int) -> None:
            i = 0
            while time.perf_counter() < deadline:
                records.append(await _one(client, api_base, model, images[(w + i) % 8], args.max_tokens, headers))
                i += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(args.concurrency)))
        wall = time.perf_counter() - t0
    return {"single": single, "load": records, "load_wall_s": wall}


def _summary(records: list[dict], wall: float | None = None) -> dict:
    ok = [r for r in records if r["ok"]]
    ttft = [r["ttft"] for r in ok]
    tokens = sum(r["tokens"] for r in ok)
    span = wall or (max(r["end"] for r in ok) - min(r["start"] for r in ok) if ok else 0)
    return {
        "requests": len(records),
        "failures": len(records) - len(ok),
        "errors": sorted({r["error"] for r in records if not r["ok"]})[:5],
        "ttft_p50_s": _pct(ttft, 50),
        "ttft_p99_s": _pct(ttft, 99),
        "latency_p50_s": _pct([r["latency"] for r in ok], 50),
        "output_tokens": tokens,
        "output_tokens_per_s": tokens / span if span else None,
        "requests_per_s": len(ok) / span if span else None,
        "wall_s": span,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(log_dir: Path) -> tuple[subprocess.Popen, str]:
    import urllib.request

    port = _free_port()
    vlmctl = Path(sys.executable).parent / "vlmctl"
    log_dir.mkdir(parents=True, exist_ok=True)
    out = open(log_dir / "serve_cpu_server.out", "wb")
    proc = subprocess.Popen([str(vlmctl), "serve", "--no-ui", "--port", str(port), "--log-file",
                             str(log_dir / "serve_cpu_engine.log")], stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited ({proc.returncode}); see {log_dir}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return proc, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGTERM)
    raise SystemExit("server did not become ready in 300 s")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--api-base", help="existing server (default: start `vlmctl serve` on a free port)")
    p.add_argument("--api-key", default=os.environ.get("VLMCTL_API_KEY"))
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--single-requests", type=int, default=10)
    p.add_argument("--image-width", type=int, default=640)
    p.add_argument("--image-height", type=int, default=480)
    p.add_argument("--out", default="artifacts/serve_cpu.json")
    args = p.parse_args()

    proc = None
    api_base = args.api_base
    if not api_base:
        proc, api_base = _start_server(Path(args.out).parent)
    try:
        import httpx

        headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
        model = httpx.get(f"{api_base}/models", headers=headers, timeout=10).json()["data"][0]["id"]
        raw = asyncio.run(_run(args, api_base, model))
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)

    single, load = _summary(raw["single"]), _summary(raw["load"], raw["load_wall_s"])
    result = {
        "benchmark": "serve_cpu",
        "api_base": api_base,
        "model": model,
        "settings": {k: v for k, v in vars(args).items() if k != "api_key"},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "single_request": single,
        "load": load,
        "targets": {"single_ttft_p50_le_1s": (single["ttft_p50_s"] or 99) <= 1.0, "zero_failures":
                    single["failures"] == 0 and load["failures"] == 0},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")

    def ms(v):
        return "-" if v is None else f"{v * 1000:.0f} ms"

    print(f"serve_cpu: {model} at {api_base}, image {args.image_width}x{args.image_height}, "
          f"max_tokens {args.max_tokens}, {os.cpu_count()} CPUs")
    print(f"{'phase':<22}{'requests':>9}{'failures':>9}{'TTFT p50':>10}{'TTFT p99':>10}{'tok/s':>9}{'req/s':>8}")
    for name, s in (("single (sequential)", single), (f"{args.concurrency} concurrent, {args.duration:.0f}s", load)):
        print(f"{name:<22}{s['requests']:>9}{s['failures']:>9}{ms(s['ttft_p50_s']):>10}{ms(s['ttft_p99_s']):>10}"
              f"{(s['output_tokens_per_s'] or 0):>9.1f}{(s['requests_per_s'] or 0):>8.2f}")
    for err in load["errors"] + single["errors"]:
        print(f"  error: {err}")
    print(f"targets: {result['targets']}  ->  {out}")
    return 0 if result["targets"]["zero_failures"] else 1


if __name__ == "__main__":
    sys.exit(main())
