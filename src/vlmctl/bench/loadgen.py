"""The async load generator: fixed concurrency or Poisson arrivals, warm-up, count or duration, sweeps.

Partial results survive cancellation (Ctrl-C): every finished or in-flight request is already in
``LevelRun.records`` and in-flight ones are marked ``cancelled``.
"""
from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from vlmctl.bench.metrics import RequestRecord, summarize
from vlmctl.bench.workload import Workload

#: How much of a server's error answer a record keeps.
ERROR_BODY_CHARS = 400


@dataclass
class LoadSpec:
    """How to load one level."""

    concurrency: int | None = None
    """Requests in flight at most (None: unbounded, only with a rate)."""
    rate: float | None = None
    """Poisson arrivals per second (None: send as fast as concurrency allows)."""
    num_requests: int | None = 100
    duration_s: float | None = None
    warmup: int = 0
    seed: int = 0


@dataclass
class LevelRun:
    """Records and summary of one level (filled while it runs)."""

    spec: LoadSpec
    records: list[RequestRecord] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0
    interrupted: bool = False

    def summary(self) -> dict:
        """`metrics.summarize` over this level's measured requests."""
        end = self.finished or time.perf_counter()
        return summarize(self.records, end - self.started if self.started else 0.0)

    def to_dict(self, with_requests: bool = True) -> dict:
        """JSON-ready form."""
        out = {"concurrency": self.spec.concurrency, "rate": self.spec.rate, "interrupted": self.interrupted,
               "summary": self.summary()}
        if with_requests:
            out["requests_detail"] = [r.to_dict() for r in self.records]
        return out


class Client:
    """Streams one chat completion and records TTFT, ITL, E2E and usage."""

    def __init__(self, api_base: str, api_key: str | None, timeout_s: float = 600.0) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
        self.url = api_base.rstrip("/") + "/chat/completions"
        self.http = httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(timeout_s, connect=10.0),
                                      limits=limits)

    async def close(self) -> None:
        """Close the connection pool."""
        await self.http.aclose()

    async def send(self, kind: str, body: dict, record: RequestRecord | None = None) -> RequestRecord:
        """Send ``body``; fill and return ``record``."""
        import httpx

        rec = record or RequestRecord(kind=kind, start=time.perf_counter())
        rec.start = time.perf_counter()
        last = rec.start
        try:
            async with self.http.stream("POST", self.url, json=body) as resp:
                if resp.status_code >= 400:
                    rec.error = f"http_{resp.status_code}"
                    rec.error_body = (await resp.aread()).decode("utf-8", "replace")[:ERROR_BODY_CHARS]
                    return rec
                async for line in resp.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    chunk = json.loads(data)
                    if chunk.get("error"):
                        rec.error = "stream_error"
                        rec.error_body = json.dumps(chunk["error"])[:ERROR_BODY_CHARS]
                        return rec
                    now = time.perf_counter()
                    choices = chunk.get("choices") or []
                    if choices and (choices[0].get("delta") or {}).get("content"):
                        if rec.ttft is None:
                            rec.ttft = now - rec.start
                        else:
                            rec.itl.append(now - last)
                        last = now
                    usage = chunk.get("usage")
                    if usage:
                        rec.prompt_tokens = usage.get("prompt_tokens")
                        rec.completion_tokens = usage.get("completion_tokens")
            rec.e2e = time.perf_counter() - rec.start
            if rec.ttft is None:
                rec.error = "no_tokens"
            else:
                rec.ok = True
        except httpx.TimeoutException as exc:
            rec.error, rec.error_body = "timeout", f"{type(exc).__name__}: {exc}"[:ERROR_BODY_CHARS]
        except httpx.ConnectError as exc:
            rec.error, rec.error_body = "connect", f"{type(exc).__name__}: {exc}"[:ERROR_BODY_CHARS]
        except (httpx.HTTPError, json.JSONDecodeError) as exc:
            rec.error, rec.error_body = "stream", f"{type(exc).__name__}: {exc}"[:ERROR_BODY_CHARS]
        except asyncio.CancelledError:
            rec.error = "cancelled"
            raise
        return rec


async def run_level(client: Client, workload: Workload, spec: LoadSpec, run: LevelRun,
                    on_done: Callable[[RequestRecord], None] | None = None) -> LevelRun:
    """Run one level into ``run`` (warm-up first, not recorded)."""
    if spec.warmup:
        warm = [await workload.next_request_async() for _ in range(spec.warmup)]
        await asyncio.gather(*(client.send(*request) for request in warm))
    rng = random.Random(spec.seed)
    sem = asyncio.Semaphore(spec.concurrency) if spec.concurrency else None
    tasks: set[asyncio.Task] = set()
    run.started = time.perf_counter()
    deadline = run.started + spec.duration_s if spec.duration_s else None

    async def one(kind: str, body: dict) -> None:
        rec = RequestRecord(kind=kind, start=time.perf_counter(), error="cancelled")
        run.records.append(rec)
        try:
            if sem:
                async with sem:
                    rec.error = None
                    await client.send(kind, body, rec)
            else:
                rec.error = None
                await client.send(kind, body, rec)
        finally:
            if on_done and rec.error != "cancelled":
                on_done(rec)

    try:
        sent = 0
        while True:
            if spec.num_requests is not None and sent >= spec.num_requests:
                break
            if deadline and time.perf_counter() >= deadline:
                break
            if sem and spec.rate is None:
                await sem.acquire()  # fixed concurrency: wait for a free slot before building the next request
                sem.release()
            kind, body = await workload.next_request_async()
            task = asyncio.create_task(one(kind, body))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
            if spec.rate:
                await asyncio.sleep(rng.expovariate(spec.rate))
            else:
                await asyncio.sleep(0)
        if tasks:
            await asyncio.gather(*tasks)
    except asyncio.CancelledError:
        run.interrupted = True
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    finally:
        run.finished = time.perf_counter()
    return run
