"""vLLM's start-up memory lines → figures (weights, torch peak, non-torch, graph estimate, KV budget and tokens).

Pure text processing, usable anywhere: the patterns are the vLLM version profile's (``MemoryLines``). A log written by
``vlmctl calibrate``'s engine probe also carries ``PROBE …`` lines (version, GPU, ready, failure).
"""
from __future__ import annotations

import json
import re

from vlmctl.engines.vllm import VllmProfile, resolve

_PROBE_VERSION = re.compile(r"PROBE vllm=(\S+)")
_SERVER_VERSION = re.compile(r"vLLM API server version (\S+)")
_PROBE_GPU = re.compile(r"PROBE gpu=(.+?) total_bytes=(\d+) cc=(\d+)\.(\d+)")
_CONFIG = re.compile(r"^# config (\{.*\})\s*$", re.M)


def logged_version(text: str) -> str | None:
    """The vLLM release a log was written by, when it says."""
    m = _PROBE_VERSION.search(text) or _SERVER_VERSION.search(text)
    return m.group(1) if m else None


def logged_config(text: str) -> dict | None:
    """The engine configuration ``vlmctl calibrate`` wrote at the top of the log (``# config {...}``)."""
    m = _CONFIG.search(text)
    if not m:
        return None
    try:
        return json.loads(m.group(1))
    except ValueError:
        return None


def _number(raw: str, kind: type):
    return raw if kind is str else kind(raw.replace(",", ""))


def parse_log(text: str, engine: VllmProfile | None = None) -> dict:
    """Figures from one engine log (keys as in ``MemoryLines.patterns``, plus runner, verdict, failure, requests).

    ``engine`` defaults to the profile of the release the log names (nearest supported), else the newest.
    """
    version = logged_version(text)
    engine = engine or resolve(version).profile
    lines = engine.memory_lines
    row: dict = {}
    if version:
        row["vllm_version"] = version
    for key, (pattern, kind) in lines.patterns.items():
        m = re.search(pattern, text)
        if m:
            row[key] = _number(m.group(1), kind)
    if "non_torch_gib" not in row and {"non_kv_gib", "weights_gib", "torch_peak_gib"} <= set(row):
        row["non_torch_gib"] = round(row["non_kv_gib"] - row["weights_gib"] - row["torch_peak_gib"], 2)
    if "cudagraph_estimate_gib" not in row and {"cudagraph_equivalent_util", "utilization", "requested_gib"} <= set(row):
        total = row["requested_gib"] / row["utilization"]
        row["cudagraph_estimate_gib"] = round((row["utilization"] - row["cudagraph_equivalent_util"]) * total, 2)
    gpu = _PROBE_GPU.search(text)
    if gpu:
        row["gpu_name"] = gpu.group(1)
        row["total_gib"] = round(int(gpu.group(2)) / (1 << 30), 2)
        row["compute_capability"] = f"{gpu.group(3)}.{gpu.group(4)}"
    m = re.search(lines.encoder_profile, text)
    if m:
        row["encoder_profile"] = f"{m.group(1)} {m.group(2)}"
    if any(marker in text for marker in lines.v2_runner_marker):
        row["runner"] = "v2"
    elif any(marker in text for marker in lines.v1_runner_marker):
        row["runner"] = "v1"
    requests = {m.group(1): m.group(2) + m.group(3)[:200]
                for m in re.finditer(r"PROBE REQUEST (\S+) (ok|FAILED)(.*)", text)}
    if requests:
        row["requests"] = requests
    failures = (*lines.failures, r"PROBE START FAILED.*")
    if "kv_tokens" in row or "PROBE READY" in text:
        row["verdict"] = "ready"
    elif "PROBE START FAILED" in text or any(re.search(p, text) for p in lines.failures[:2]):
        row["verdict"] = "start_failed"
    else:
        row["verdict"] = "unknown"
    for pattern in failures:
        m = re.search(r"[^\n]*(" + pattern + r")[^\n]*", text)
        if m:
            row["failure"] = m.group(0).strip()[:400]
            break
    after_ready = text.split("PROBE READY", 1)[1] if "PROBE READY" in text else ""
    oom = re.search(r"OutOfMemoryError|CUDA out of memory", after_ready)
    row["request_oom_in_vision_encoder"] = bool(
        oom and re.search(r"qwen2_5_vl\.py|visual|vision", after_ready[max(0, oom.start() - 20000):oom.end() + 20000]))
    return row


_COLUMNS = ("name", "runner", "verdict", "weights_gib", "torch_peak_gib", "non_torch_gib", "cudagraph_estimate_gib",
            "available_kv_gib", "kv_tokens", "max_concurrency", "encoder_profile", "wall_s")


def table(rows: list[dict]) -> str:
    """A plain-text table of parsed rows (one line each)."""
    lines = [" | ".join(_COLUMNS)]
    for r in rows:
        if "skipped" in r:
            lines.append(f"{r['name']} | SKIPPED {r['skipped']}")
            continue
        lines.append(" | ".join(str(r.get(c, "")) for c in _COLUMNS))
        if r.get("failure"):
            lines.append(f"    failure: {r['failure'][:200]}")
        if r.get("requests"):
            lines.append(f"    requests: {r['requests']}")
    return "\n".join(lines)
