"""Extract vLLM's memory and KV-cache figures from one engine log (vLLM 0.26, ``VLLM_LOGGING_LEVEL=DEBUG``).

``parse_log(text) -> dict`` with, where present: weights_gib, load_s, torch_peak_gib, non_torch_gib,
non_kv_gib, profile_s, cudagraph_estimate_gib, graph_capture_gib, available_kv_gib, kv_tokens,
max_concurrency, max_model_len, encoder_budget_tokens, encoder_profile (items and modality),
requested_gib, init_free_gib, runner ("v1"/"v2"), verdict ("ready"/"start_failed"/"timeout"/"unknown"),
failure (the first error line) and request outcomes (``requests``: {step: "ok"/"FAILED …"}), and
request_oom_in_vision_encoder. Pure text processing: usable on the CPU (tests) and on the GPU machine.
"""
from __future__ import annotations

import re

_NUM = r"([-\d.,]+)"
_PATTERNS = {
    "weights_gib": (r"Model loading took " + _NUM + r" GiB", float),
    "load_s": (r"Model loading took [-\d.]+ GiB(?: memory)? and " + _NUM + " seconds", float),
    "profile_s": (r"Memory profiling takes " + _NUM + " seconds", float),
    "non_kv_gib": (r"Total non KV cache memory: " + _NUM + "GiB", float),
    "torch_peak_gib": (r"torch peak memory increase: " + _NUM + "GiB", float),
    "non_torch_gib": (r"non-torch forward increase memory: " + _NUM + "GiB", float),
    "profiled_weights_gib": (r"weights memory: " + _NUM + "GiB", float),
    "cudagraph_estimate_gib": (r"Estimated CUDA graph memory: " + _NUM + " GiB", float),
    "graph_capture_gib": (r"Graph capturing finished in \d+ secs, took " + _NUM + " GiB", float),
    "available_kv_gib": (r"Available KV cache memory: " + _NUM + " GiB", float),
    "kv_tokens": (r"GPU KV cache size: " + _NUM + " tokens", int),
    "max_model_len": (r"Maximum concurrency for " + _NUM + " tokens per request", int),
    "max_concurrency": (r"Maximum concurrency for [\d,]+ tokens per request: " + _NUM + "x", float),
    "encoder_budget_tokens": (r"Encoder cache will be initialized with a budget of " + _NUM + " tokens", int),
    "init_free_gib": (r"Initial free memory: " + _NUM + " GiB; Requested memory", float),
    "requested_gib": (r"Requested memory: [\d.]+ \(util\), " + _NUM + " GiB", float),
    "ready_s": (r"PROBE READY after " + _NUM + "s", float),
    "vllm_version": (r"PROBE vllm=(\S+)", str),
}
_FAILURES = (
    r"No available memory for the cache blocks",
    r"To serve at least one request with the model's max seq len",
    r"CUDA out of memory",
    r"OutOfMemoryError",
    r"is less than desired GPU memory utilization",
    r"PROBE START FAILED.*",
)


def _num(raw: str, kind):
    if kind is str:
        return raw
    return kind(raw.replace(",", "")) if kind is int else kind(raw.replace(",", ""))


def parse_log(text: str) -> dict:
    """Parse one engine log into a flat dict of figures (see module doc)."""
    row: dict = {}
    for key, (pat, kind) in _PATTERNS.items():
        m = re.search(pat, text)
        if m:
            row[key] = _num(m.group(1), kind)
    m = re.search(r"profiled with (\d+) (\w+) items of the maximum feature size", text)
    if m:
        row["encoder_profile"] = f"{m.group(1)} {m.group(2)}"
    if "gpu/model_runner.py" in text or "[model_runner.py:" in text:
        row["runner"] = "v2"
    elif "gpu_model_runner.py" in text:
        row["runner"] = "v1"
    requests = {}
    for m in re.finditer(r"PROBE REQUEST (\S+) (ok|FAILED)(.*)", text):
        requests[m.group(1)] = m.group(2) + m.group(3)[:200]
    if requests:
        row["requests"] = requests
    if "PROBE READY" in text:
        row["verdict"] = "ready"
    elif "PROBE START FAILED" in text or any(re.search(p, text) for p in _FAILURES[:2]):
        row["verdict"] = "start_failed"
    else:
        row["verdict"] = "unknown"
    for pat in _FAILURES:
        m = re.search(r"[^\n]*(" + pat + r")[^\n]*", text)
        if m:
            row["failure"] = m.group(0).strip()[:400]
            break
    after_ready = text.split("PROBE READY", 1)[1] if "PROBE READY" in text else ""
    oom = re.search(r"OutOfMemoryError|CUDA out of memory", after_ready)
    row["request_oom_in_vision_encoder"] = bool(
        oom and re.search(r"qwen2_5_vl\.py|visual|vision", after_ready[max(0, oom.start() - 20000):oom.end() + 20000])
    )
    return row


_COLS = ("name", "runner", "verdict", "weights_gib", "torch_peak_gib", "non_torch_gib", "cudagraph_estimate_gib",
         "available_kv_gib", "kv_tokens", "max_concurrency", "encoder_profile", "wall_s")


def table(rows: list[dict]) -> str:
    """A plain-text table of the parsed rows (one line each)."""
    lines = [" | ".join(_COLS)]
    for r in rows:
        if "skipped" in r:
            lines.append(f"{r['name']} | SKIPPED {r['skipped']}")
            continue
        lines.append(" | ".join(str(r.get(c, "")) for c in _COLS))
        if r.get("failure"):
            lines.append(f"    failure: {r['failure'][:200]}")
        if r.get("requests"):
            lines.append(f"    requests: {r['requests']}")
    return "\n".join(lines)
