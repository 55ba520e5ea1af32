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
    """Latency of a request outside the API server's serial work: HTTP round trip, hand-off to the engine core,
    the first output's way back."""
    api_ms: float
    """Serial API-server CPU time per request (one Python process: parsing, chat template, tokenisation,
    streaming the outputs); requests in flight queue for it, and it caps the requests per second."""
    media_ms_per_mpixel: float
    """Serial API-server time per megapixel of image or video frames for every request (decode, hash)."""
    media_new_ms_per_mpixel: float
    """Extra serial API-server time per megapixel for media not in the processor cache (the HF processor:
    resize, normalise, patches)."""
    gap_ms: float
    """Client gap between one request's end and the next one's start in a closed loop."""
    link_latency_us: dict[str, float]
    """Latency of one collective or hand-off per link kind."""
    ethernet_gbs: float
    """Bandwidth between nodes (GB/s) when the cluster file says nothing faster."""
    host_factor: float = 1.0
    """The API server's host against the one the constants were measured on (API-server times scale with it);
    1 on an unknown host (docs/validation.md § 11 says how to measure it)."""


SPEED_V026 = SpeedConstants(
    vllm_version="0.26.0",
    source="fitted 2026-11-29 on all 19 vlmctl bench runs with the media in vLLM's prefix cache (13 on one H200, "
           "6 on one H100 of another host; vLLM 0.26.0, V2 runner and the field report's eager launch, dummy "
           "weights), none held out: two earlier held-out reports used them; vision_mfu and "
           "media_new_ms_per_mpixel fitted 2026-11-29 on 2 runs with a new image per request (H200, vLLM 0.26.0: "
           "7B image c=1 and c=32), 11 such runs held out (benchmarks/speed_fit.py, docs/validation.md § 11); "
           "host_factor 1 is the H200 host's API server (the H100 host's fitted 1.80); link latencies and "
           "Ethernet are reference values (no multi-GPU machine)",
    bandwidth_fraction=0.88, prefill_mfu=0.558, vision_mfu=0.636, step_ms=0.0, layer_us=45.8, eager_layer_ms=0.94,
    seq_us=28.4, request_ms=16.6, api_ms=2.31, media_ms_per_mpixel=7.09, media_new_ms_per_mpixel=68.3, gap_ms=22.8,
    link_latency_us={"nvlink": 8.0, "pcie": 20.0, "ethernet": 60.0}, ethernet_gbs=1.25,
)
SPEED: dict[str, SpeedConstants] = {"0.26.0": SPEED_V026}
"""By profile version (``vlmctl.engines.vllm.PROFILES``)."""


def speed_constants(vllm_version: str | None = None) -> SpeedConstants:
    """The constants for a vLLM version: its profile's, else the newest measured."""
    from vlmctl.engines.vllm import resolve

    return SPEED.get(resolve(vllm_version).profile.version) or SPEED[max(SPEED)]
