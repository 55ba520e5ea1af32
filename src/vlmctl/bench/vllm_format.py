"""`vllm bench serve`'s result JSON: write it from a bench level, read it back for `bench compare`.

Field names and meanings follow vLLM's ``vllm/benchmarks/serve.py`` (commit 009e6d4a, read
2026-11-29): ``main_async`` writes the run's setup (``date``, ``backend``, ``model_id``,
``num_prompts``, ``request_rate`` with ``"inf"``, ``burstiness``, ``max_concurrency``) merged with
what ``benchmark`` returns (``duration``, ``completed``, ``failed``, ``total_input_tokens``,
``total_output_tokens``, ``request_throughput``, ``request_goodput``, ``output_throughput``,
``total_token_throughput``, ``max_output_tokens_per_s``, ``max_concurrent_requests``), and
``process_one_metric`` adds ``mean_/median_/std_/p{P}_{ttft,tpot,itl,e2el}_ms`` in milliseconds
(``np.std`` is the population deviation; an empty list reports 0). ``calculate_metrics`` defines
goodput: a completed request whose TTFT, TPOT (0 for one output token) and E2E are each within the
``--goodput`` SLO in ms. One JSON object per level; a sweep writes one per line, as vLLM's
``--append-result`` does.
"""
from __future__ import annotations

import json
import math
import statistics

from vlmctl.bench.metrics import percentile
from vlmctl.errors import ConfigError

METRICS = ("ttft", "tpot", "itl", "e2el")
GOODPUT_KEYS = ("ttft", "tpot", "e2el")


def parse_goodput(items: tuple[str, ...] | list[str]) -> dict[str, float]:
    """``ttft:500 tpot:50`` (ms; spaces or commas between pairs) -> {"ttft": 500.0, "tpot": 50.0}."""
    slos: dict[str, float] = {}
    for item in items:
        for pair in filter(None, item.replace(",", " ").split()):
            name, _, value = pair.partition(":")
            try:
                ms = float(value)
            except ValueError:
                ms = -1.0
            if name not in GOODPUT_KEYS or not value or not ms >= 0 or math.isinf(ms):
                raise ConfigError(f"--goodput '{pair}' is not METRIC:MS with METRIC one of ttft, tpot, e2el and "
                                  "MS a number >= 0.", fix="e.g. --goodput ttft:500 tpot:50")
            slos[name] = ms
    return slos


def parse_percentiles(value: str) -> list[float]:
    """``--metric-percentiles 50,90,99`` -> [50.0, 90.0, 99.0] (each in (0, 100])."""
    try:
        out = [float(x) for x in value.split(",") if x.strip()]
    except ValueError:
        out = []
    if not out or any(not 0 < p <= 100 for p in out):
        raise ConfigError(f"--metric-percentiles '{value}' is not a comma list of numbers in (0, 100].",
                          fix="e.g. --metric-percentiles 50,90,99")
    return out


def _tpot(req: dict) -> float:
    n = req.get("completion_tokens") or 0
    return (req["e2e"] - req["ttft"]) / (n - 1) if n > 1 else 0.0


def goodput_count(requests: list[dict], slos_ms: dict[str, float]) -> int:
    """Completed requests within every SLO (ms): vLLM's goodput numerator."""
    good = 0
    for req in requests:
        if not req.get("ok"):
            continue
        values = {"ttft": req["ttft"], "tpot": _tpot(req), "e2el": req["e2e"]}
        if all(values[k] <= ms / 1000 for k, ms in slos_ms.items()):
            good += 1
    return good


def _peaks(ok: list[dict]) -> tuple[float, int]:
    """(max output chunks in any one-second bucket, most requests in flight at once) over completed requests."""
    if not ok:
        return 0.0, 0
    t0 = min(r["start"] for r in ok)
    buckets: dict[int, int] = {}
    events = []
    for r in ok:
        t = r["start"] + r["ttft"]
        times = [t]
        for gap in r.get("itl") or []:
            t += gap
            times.append(t)
        for x in times:
            buckets[int(x - t0)] = buckets.get(int(x - t0), 0) + 1
        events += [(r["start"], 1), (r["start"] + r["e2e"], -1)]
    now = peak = 0
    for _, delta in sorted(events):
        now += delta
        peak = max(peak, now)
    return float(max(buckets.values())), peak


def _stats(name: str, seconds: list[float], percentiles: list[float]) -> dict[str, float]:
    ms = sorted(x * 1000 for x in seconds) or [0.0]
    out = {f"mean_{name}_ms": statistics.fmean(ms), f"median_{name}_ms": statistics.median(ms),
           f"std_{name}_ms": statistics.pstdev(ms)}
    for p in percentiles:
        word = str(int(p)) if int(p) == p else str(p)
        out[f"p{word}_{name}_ms"] = percentile(ms, p)
    return out


def level_result(level: dict, meta: dict, percentiles: list[float], goodput_ms: dict[str, float] | None = None,
                 date: str = "") -> dict:
    """One vLLM-shaped result object for a level of a vlmctl result (which must keep ``requests_detail``)."""
    summary = level["summary"]
    requests = level.get("requests_detail") or []
    ok = [r for r in requests if r.get("ok")]
    duration = summary["duration_s"]
    peak_tokens, peak_requests = _peaks(ok)
    out = {
        "date": date,
        "endpoint_type": "openai-chat",
        "backend": "openai-chat",
        "label": "vlmctl",
        "model_id": meta["model"],
        "tokenizer_id": meta.get("tokenizer"),
        "num_prompts": summary["requests"],
        "request_rate": level["rate"] if level.get("rate") else "inf",
        "burstiness": 1.0,
        "max_concurrency": level.get("concurrency"),
        "duration": duration,
        "completed": summary["completed"],
        "failed": summary["failed"],
        "total_input_tokens": summary["total_input_tokens"],
        "total_output_tokens": summary["total_output_tokens"],
        "request_throughput": summary["request_throughput"],
        "request_goodput": goodput_count(requests, goodput_ms) / max(duration, 1e-9) if goodput_ms else None,
        "output_throughput": summary["output_throughput"],
        "total_token_throughput": summary["total_token_throughput"],
        "max_output_tokens_per_s": peak_tokens,
        "max_concurrent_requests": peak_requests,
        "mix": " ".join(meta.get("mix", [])),
        "media_reuse": meta.get("media_reuse"),
    }
    series = {"ttft": [r["ttft"] for r in ok], "tpot": [_tpot(r) for r in ok if (r.get("completion_tokens") or 0) > 1],
              "itl": [x for r in ok for x in r.get("itl") or []], "e2el": [r["e2e"] for r in ok]}
    for name in METRICS:
        out.update(_stats(name, series[name], percentiles))
    return out


def is_vllm_result(data) -> bool:
    """True for a vLLM bench result object (flat, with ``completed`` and ``*_ms`` fields)."""
    return isinstance(data, dict) and "completed" in data and "request_throughput" in data and "schema" not in data


def read_objects(text: str) -> list:
    """One JSON document, or several one per line (vLLM's ``--append-result``)."""
    try:
        data = json.loads(text)
        return data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def _dist(obj: dict, name: str) -> dict | None:
    if f"mean_{name}_ms" not in obj:
        return None
    out = {"mean": obj[f"mean_{name}_ms"] / 1000, "median": obj[f"median_{name}_ms"] / 1000}
    out["p50"] = obj.get(f"p50_{name}_ms", obj[f"median_{name}_ms"]) / 1000
    for key, value in obj.items():
        if key.startswith("p") and key.endswith(f"_{name}_ms") and key[1:].split("_")[0].replace(".", "").isdigit():
            out[key.split("_")[0]] = value / 1000
    return out


def to_level(obj: dict) -> dict:
    """A vLLM result object as a vlmctl level (summary in seconds) so tables and `compare` read it."""
    rate = obj.get("request_rate")
    failed = obj.get("failed") or 0
    return {
        "concurrency": obj.get("max_concurrency"),
        "rate": None if rate in (None, "inf") or rate == float("inf") else float(rate),
        "interrupted": False,
        "summary": {
            "requests": (obj.get("completed") or 0) + failed, "completed": obj.get("completed") or 0,
            "failed": failed, "errors": {"failed": failed} if failed else {}, "first_error": None,
            "duration_s": obj.get("duration"),
            "total_input_tokens": obj.get("total_input_tokens"), "total_output_tokens": obj.get("total_output_tokens"),
            "request_throughput": obj.get("request_throughput"), "output_throughput": obj.get("output_throughput"),
            "total_token_throughput": obj.get("total_token_throughput"),
            "request_goodput": obj.get("request_goodput"),
            "ttft_s": _dist(obj, "ttft"), "tpot_s": _dist(obj, "tpot"), "itl_s": _dist(obj, "itl"),
            "e2e_s": _dist(obj, "e2el"),
        },
    }


def to_result(objects: list[dict]) -> dict:
    """vLLM result objects as one vlmctl result document (``format: vllm`` in meta)."""
    first = objects[0]
    return {
        "schema": "vlmctl-bench/1",
        "meta": {"model": first.get("model_id", "?"), "mix": [first.get("mix") or first.get("dataset_name", "vllm")],
                 "max_tokens": first.get("random_output_len", "?"), "interrupted": False, "format": "vllm",
                 **({"media_reuse": first["media_reuse"]} if first.get("media_reuse") else {})},
        "levels": [to_level(o) for o in objects],
    }
