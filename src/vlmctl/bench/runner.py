"""Run a sweep of load levels end to end; Ctrl-C keeps what was measured so far."""
from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable

from vlmctl.bench.loadgen import Client, LevelRun, LoadSpec, run_level
from vlmctl.bench.metrics import RequestRecord
from vlmctl.bench.prompts import PromptMaker
from vlmctl.bench.workload import MixEntry, Workload
from vlmctl.errors import ConfigError

SCHEMA = "vlmctl-bench/1"


def model_card(api_base: str, api_key: str | None, timeout_s: float = 10.0) -> dict:
    """The first entry of `GET /models` (``id`` is the served model name; vLLM's ``root`` the model path)."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    url = api_base.rstrip("/") + "/models"
    try:
        resp = httpx.get(url, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise ConfigError(f"--base-url {api_base}: {url} is not reachable ({exc.__class__.__name__}).",
                          fix="start the server (vlmctl serve) or pass the right --base-url") from exc
    if resp.status_code in (401, 403):
        raise ConfigError(f"{url} refused the API key (HTTP {resp.status_code}).",
                          fix="pass --api-key or set VLMCTL_API_KEY (or OPENAI_API_KEY)")
    try:
        data = resp.json().get("data") if resp.status_code == 200 else None
    except ValueError:
        data = None
    if not data or not isinstance(data[0], dict) or "id" not in data[0]:
        raise ConfigError(f"{url} returned HTTP {resp.status_code} with no models.",
                          fix="pass --model NAME explicitly")
    return data[0]


def resolve_model(api_base: str, api_key: str | None, timeout_s: float = 10.0) -> str:
    """The first model `GET /models` lists (the served model name)."""
    return model_card(api_base, api_key, timeout_s)["id"]


def run_sweep(api_base: str, api_key: str | None, model: str, mix: list[MixEntry], levels: list[LoadSpec],
              max_tokens: int, prompt: PromptMaker | int = 48, ignore_eos: bool = False, timeout_s: float = 600.0,
              on_done: Callable[[RequestRecord], None] | None = None,
              on_level: Callable[[LoadSpec], None] | None = None,
              goodput_ms: dict[str, float] | None = None, tokenizer_id: str | None = None,
              distinct_media: bool = False, media_pool: int = 4) -> dict:
    """Run every level in order and return the result document (``interrupted`` after Ctrl-C).

    ``distinct_media``: every request gets its own image or video; else each size draws from ``media_pool``.
    """
    prompt = prompt if isinstance(prompt, PromptMaker) else PromptMaker(prompt)
    workload = Workload(mix, model, max_tokens, prompt=prompt, ignore_eos=ignore_eos,
                        seed=levels[0].seed if levels else 0, variants=media_pool, distinct=distinct_media)
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
    finally:
        workload.close()
    out_levels = [r.to_dict() for r in runs]
    if goodput_ms:
        from vlmctl.bench.vllm_format import goodput_count

        for level in out_levels:
            good = goodput_count(level["requests_detail"], goodput_ms)
            level["summary"]["request_goodput"] = round(good / max(level["summary"]["duration_s"], 1e-9), 4)
    return {
        "schema": SCHEMA,
        "meta": {
            "api_base": api_base, "model": model, "mix": [f"{e.label}={e.weight}" for e in mix],
            "max_tokens": max_tokens, "prompt_tokens": prompt.tokens, "prompt_sizing": prompt.sizing,
            "tokenizer": tokenizer_id if prompt.tokenizer is not None else None, "ignore_eos": ignore_eos,
            "media_reuse": workload.media_reuse, "media_generation": workload.media_generation(),
            "goodput_ms": goodput_ms or None, "started_at": started, "interrupted": interrupted,
        },
        "levels": out_levels,
    }
