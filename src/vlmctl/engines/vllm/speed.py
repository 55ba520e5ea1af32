"""The speed model's measured constants, per vLLM version (the arithmetic is vlmctl.plan.speed).

Each set says where it was measured (date, GPU, vLLM version, runs); docs/validation.md § speed holds the table of
predicted against measured rows, which rows were fitted and which held out.
"""
from __future__ import annotations

from dataclasses import dataclass

@dataclass(frozen=True)
class SpeedConstants:
    """The measured terms of the speed model for one vLLM version (with where each was measured)."""

    vllm_version: str
    source: str
    bandwidth_fraction: float
    """Achieved fraction of the catalog's memory bandwidth while a decode step reads weights and KV cache."""
    prefill_mfu: float
    """Achieved fraction of the catalog's tensor TFLOP/s in the language model's prefill (and large decode steps)."""
    vision_mfu: float
    """Achieved fraction of the catalog's tensor TFLOP/s in the vision encoder."""
    step_ms: float
    """Fixed cost of one decode step with CUDA graphs (scheduling, input preparation, sampling, output)."""
    layer_us: float
    """GPU time per decoder layer per step that does not shrink with TP (a dozen kernels' minimum durations)."""
    eager_layer_ms: float
    """Extra cost per decoder layer per step without CUDA graphs (kernel launches from Python)."""
    seq_us: float
    """Cost per running sequence per step outside the GPU kernels (scheduler, detokenizer, streaming)."""
    request_ms: float
    """Fixed cost of a request before its prefill: HTTP, chat template, tokenisation, the first output."""
    media_ms_per_mpixel: float
    """API-server time per megapixel of image or video frames (decode, hash, resize), one request at a time."""
    queue_ms: float
    """API-server time a new request waits per other request in flight (parsing, media, streaming the others)."""
    gap_ms: float
    """Client gap between one request's end and the next one's start in a closed loop."""
    link_latency_us: dict[str, float]
    """Latency of one collective or hand-off per link kind."""
    ethernet_gbs: float
    """Bandwidth between nodes (GB/s) when the cluster file says nothing faster."""


SPEED_V026 = SpeedConstants(
    vllm_version="0.26.0",
    source="fitted 2026-11-29 on 5 of 19 vlmctl bench runs with vLLM 0.26.0 (V2 runner, dummy weights, the bench's "
           "images in the prefix cache): H200 7B image c=1 and c=32, 32B image c=8, 7B text c=1, H100 7B eager c=1; "
           "the other 14 held out (benchmarks/speed_fit.py, docs/validation.md § 11); vision_mfu, link latencies and "
           "Ethernet are reference values, not measured (no multi-GPU machine, every bench image cached)",
    bandwidth_fraction=0.853, prefill_mfu=0.372, vision_mfu=0.25, step_ms=0.0, layer_us=43.7, eager_layer_ms=1.14,
    seq_us=30.8, request_ms=14.8, media_ms_per_mpixel=17.4, queue_ms=0.0, gap_ms=11.2,
    link_latency_us={"nvlink": 8.0, "pcie": 20.0, "ethernet": 60.0}, ethernet_gbs=1.25,
)
SPEED: dict[str, SpeedConstants] = {"0.26.0": SPEED_V026}
"""By profile version (``vlmctl.engines.vllm.PROFILES``)."""


def speed_constants(vllm_version: str | None = None) -> SpeedConstants:
    """The constants for a vLLM version: its profile's, else the newest measured."""
    from vlmctl.engines.vllm import resolve

    return SPEED.get(resolve(vllm_version).profile.version) or SPEED[max(SPEED)]
