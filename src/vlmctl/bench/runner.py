"""Run a sweep of load levels end to end; Ctrl-C keeps what was measured so far."""
from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable

from vlmctl.bench.loadgen import Client, LevelRun, LoadSpec, run_level
from vlmctl.bench.metrics import RequestRecord
from vlmctl.bench.workload import MixEntry, Workload
from vlmctl.errors import ConfigError

SCHEMA = "vlmctl-bench/1"


def resolve_model(api_base: str, api_key: str | None, timeout_s: float = 10.0) -> str:
    """The first model `GET /models` lists (the served model name)."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    url = api_base.rstrip("/") + "/models"
    try:
        resp = httpx.get(url, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise ConfigError(f"--api-base {api_base}: {url} is not reachable ({exc.__class__.__name__}).",
                          fix="start the server (vlmctl serve) or pass the right --api-base") from exc
    if resp.status_code in (401, 403):
        raise ConfigError(f"{url} refused the API key (HTTP {resp.status_code}).",
                          fix="pass --api-key or set VLMCTL_API_KEY")
    if resp.status_code != 200 or not resp.json().get("data"):
        raise ConfigError(f"{url} returned HTTP {resp.status_code} with no models.",
                          fix="pass --model NAME explicitly")
    return resp.json()["data"][0]["id"]


def run_sweep(api_base: str, api_key: str | None, model: str, mix: list[MixEntry], levels: list[LoadSpec],
              max_tokens: int, prompt_words: int = 48, ignore_eos: bool = False, timeout_s: float = 600.0,
              on_done: Callable[[RequestRecord], None] | None = None,
              on_level: Callable[[LoadSpec], None] | None = None) -> dict:
    """Run every level in order and return the result document (``interrupted`` after Ctrl-C)."""
    workload = Workload(mix, model, max_tokens, prompt_words=prompt_words, ignore_eos=ignore_eos)
    runs: list[LevelRun] = []
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")

    async def main() -> None:
        client = Client(api_base, api_key, timeout_s)
        try:
            for spec in levels:
                if on_level:
                    on_level(spec)
                run = LevelRun(spec)
                runs.append(run)
                await run_level(client, workload, spec, run, on_done)
        finally:
            await client.close()

    interrupted = False
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        interrupted = True
        if runs:
            runs[-1].interrupted = True
    return {
        "schema": SCHEMA,
        "meta": {
            "api_base": api_base, "model": model, "mix": [f"{e.label}={e.weight}" for e in mix],
            "max_tokens": max_tokens, "prompt_words": prompt_words, "ignore_eos": ignore_eos,
            "started_at": started, "interrupted": interrupted,
        },
        "levels": [r.to_dict() for r in runs],
    }
