"""The speed model's measured constants, per vLLM version (the arithmetic is vlmctl.plan.speed).

Each set says where it was measured (date, GPU, vLLM version, runs); docs/validation.md § speed holds the table of
predicted against measured rows, which rows were fitted and which held out.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

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
    """The API server's event-loop time per request (one Python process: parsing, chat template, tokenisation,
    streaming the outputs); requests in flight queue for it, and it caps the requests per second."""
    media_ms_per_mpixel: float
    """Event-loop time per megapixel of image or video frames for every request (decode, hash)."""
    media_new_ms_per_mpixel: float
    """Renderer time per megapixel for media not in the processor cache (the HF processor: resize, normalise,
    patches), in the API server's renderer thread pool of one worker; it overlaps the event loop's work on other
    requests."""
    gap_ms: float
    """Client gap between one request's end and the next one's start in a closed loop."""
    link_latency_us: dict[str, float]
    """Latency of one collective or hand-off per link kind."""
    ethernet_gbs: float
    """Bandwidth between nodes (GB/s) when the cluster file says nothing faster."""
    host_factor: float = 1.0
    """The API server's host against the one the constants were measured on (API-server times scale with it);
    1 on an unknown host (docs/validation.md § 11 says how to measure it)."""
    media_item_ms: float = 0.0
    """Event-loop time per image or video in a request, whatever its size (fetching and opening it, the media
    hash's setup, the multimodal placeholders)."""
    media_new_item_ms: float = 0.0
    """Renderer time per image or video not in the processor cache, whatever its size (one HF processor call:
    its setup, the grid and position tensors, handing the result on)."""
    media_new_latency_ms: float = 0.0
    """Latency per new image or video that overlaps other requests' work (the processed tensors' way to the engine
    core and the encoder's scheduling); it adds to the first token, not to the API server's serial time."""
    stream_us: float = 0.0
    """The API server's time per output token it detokenizes and streams (the same Python process as its event
    loop and renderer: vllm/v1/engine/async_llm.py AsyncLLM output handler, vllm/v1/engine/output_processor.py
    OutputProcessor.process_outputs); only the simulated queueing uses it."""
    encoder_call_ms: float = 0.0
    """Fixed cost of a step that runs the vision encoder, whatever the number of images in it (the encoder runs
    without CUDA graphs by default in vLLM 0.26: compilation_config cudagraph_mm_encoder False); only the simulated
    queueing uses it."""
    media_item_latency_ms: float = 0.0
    """Latency per image or video in a request, cached or not, on its way to the engine core (revision-6 candidate:
    a text request's first token comes sooner than the fixed latency fitted on image rows says); only the simulated
    queueing uses it."""
    encoder_budget: float = 0.0
    """Media tokens the engine takes through the vision encoder in one step, as a fraction of the step's token
    budget (max_num_batched_tokens), at least one item per step (revision-6 candidate: the scheduler's encoder
    budget, vllm/v1/core/sched/scheduler.py Scheduler._try_schedule_encoder_inputs, fitted here rather than read
    from vLLM's config): fewer large new images share a step, so their prefills spread over more steps, inside
    the other requests' decodes, as the per-request records show; 0 = no limit but the step's token budget
    (revision 5); only the simulated queueing uses it."""
    host_spread: float = 0.0
    """Spread of each request's time outside the GPU (its API-server work and hand-off latency) from one request
    to the next: the standard deviation of its logarithm; each simulated request draws its own factor
    exp(host_spread · z), median 1, from a seeded generator (revision-7 candidate: the clients fall out of step;
    0 = every request alike, revision 5); only the simulated queueing uses it."""
    queueing: str = "waves"
    """How requests share the replica: "waves" (closed-form, revisions 1-4) or "simulated" (revision 5: the
    requests followed one by one through the API server's shared interpreter and the engine's steps)."""


SPEED_V026_REV5 = SpeedConstants(
    vllm_version="0.26.0",
    source="revision 5, fitted 2026-11-29 on all 48 measured vlmctl bench runs, none held out "
           "(benchmarks/speed_fit.py --fit, docs/validation.md § 11): 19 with the media in vLLM's prefix cache (13 "
           "on one H200, 6 on one H100 of another host, V2 runner and the field report's eager launch), 13 with a "
           "new image or video per request (one H200, 13:23-13:33 UTC), 8 more (one H200, 15:34-15:41 UTC: "
           "Qwen2.5-VL-7B at 640x480 and 1920x1080, Qwen3-VL-8B at 1280x720) and 8 of the held-out visit after "
           "revision 4 (one H200, 15:56-16:03 UTC: Qwen2.5-VL-3B at 1024x768 and 800x600, Qwen3-VL-8B at 640x360 "
           "and 1600x1200); vLLM 0.26.0, dummy weights; earlier held-out reports used all of them; gap_ms is the "
           "bench client's measured gap (0.1-2.5 ms at c=1 in every run), not fitted; host_factor 1 is the H200 "
           "host's API server (the H100 host's fitted 1.63); link latencies and Ethernet are reference values, not "
           "measured (no multi-GPU machine)",
    bandwidth_fraction=0.887, prefill_mfu=0.798, vision_mfu=0.525, step_ms=0.0, layer_us=48.8, eager_layer_ms=0.868,
    seq_us=50.1, request_ms=18.3, api_ms=0.297, media_ms_per_mpixel=1.74, media_new_ms_per_mpixel=2.20, gap_ms=1.0,
    link_latency_us={"nvlink": 8.0, "pcie": 20.0, "ethernet": 60.0}, ethernet_gbs=1.25,
    media_item_ms=2.50, media_new_item_ms=7.58, media_new_latency_ms=78.4, stream_us=119.0, encoder_call_ms=12.9,
    queueing="simulated",
)
"""Revision 5: the default until the leave-one-visit-out comparison with the revision-6 candidate; its
predictions of the next held-out visit are recorded (benchmarks/speed_rev6.py)."""
SPEED_V026_CANDIDATE = replace(
    SPEED_V026_REV5,
    source="revision-6 candidate (not the default; only benchmarks use it), fitted 2026-11-29 on all 56 measured "
           "vlmctl bench runs, none held out (benchmarks/speed_fit.py --fit --candidate, docs/validation.md § 11): "
           "revision 5's 48 and the 8 of the last held-out visit after revision 5 (one H200, 16:24-16:28 UTC: "
           "Qwen2.5-VL-7B at 960x720, 1024x576, 1440x1080 and text); vLLM 0.26.0, dummy weights; revision 5's "
           "terms plus a latency per media item and an encoder budget per step; gap_ms measured, not fitted; "
           "link latencies and Ethernet are reference values, not measured",
    request_ms=12.2, media_item_latency_ms=6.16, encoder_budget=0.844, vision_mfu=0.417,
    media_new_ms_per_mpixel=1.19, media_new_item_ms=7.64, api_ms=0.295, encoder_call_ms=10.4,
)
"""Revision 6's candidate as recorded with the next visit's predictions (its source as it was then); its values are
revision 6, the default (``SPEED_V026``)."""
SPEED_V026_REV7_CANDIDATE = replace(
    SPEED_V026_CANDIDATE,
    source="revision-7 candidate (not the default; only benchmarks use it), fitted 2026-11-29 on all 56 measured "
           "vlmctl bench runs, none held out (benchmarks/speed_fit.py --fit --rev7, from the revision-6 candidate's "
           "values, docs/validation.md § 11): the revision-6 candidate's terms plus host_spread, measured, not "
           "fitted: 0.13 is the median over the 16 concurrency-1 levels (one H200, vLLM 0.26.0, dummy weights, "
           "2026-11-29; bench_*.json requests_detail of docs/validation/speed, speed_fresh, speed_next, speed_held "
           "and speed_final) of the standard deviation of log(TTFT - the model's GPU time) across a level's "
           "requests (0.10-0.19 with new media, 0.03-0.13 text and cached media, a cached level's first request "
           "left out); there a request's decode varies 0.0-0.3 % and the client's gap 0.1-2.5 ms varies 0.03-0.43 "
           "ms, so the spread is the host work and hand-off; gap_ms measured, not fitted; link latencies and "
           "Ethernet are reference values, not measured",
    host_spread=0.13, prefill_mfu=0.565, seq_us=22.3, api_ms=0.246, vision_mfu=0.593, media_new_ms_per_mpixel=1.80,
    media_new_item_ms=8.12, media_new_latency_ms=73.8, media_item_latency_ms=10.4, encoder_budget=0.675,
    request_ms=18.3, media_item_ms=2.5, media_ms_per_mpixel=1.74, encoder_call_ms=10.4, eager_layer_ms=0.855,
)
"""Revision 7's candidate: the revision-6 candidate's simulation with every request's host time drawn around its
value, so the clients of a level fall out of step; scored by the next held-out visit with the other two."""
SPEED_V026 = replace(
    SPEED_V026_CANDIDATE,
    source="revision 6 (the default since 2026-11-29): the revision-6 candidate's constants unchanged, fitted on all "
           "56 measured vlmctl bench runs, none held out (one H200 and one H100 host, vLLM 0.26.0, dummy weights; "
           "docs/validation.md § 11); chosen over revision 5 by leave-one-visit-out cross-validation over the six "
           "visits (benchmarks/speed_cv.py: 152 of 168 figures within the targets out of fold against revision 5's "
           "140, ahead or level in every fold), not yet by a blind visit; gap_ms measured, not fitted; link "
           "latencies and Ethernet are reference values, not measured",
)
"""Revision 6, the default: revision 5's simulation with an encoder budget per step and a latency per media item."""
SPEED: dict[str, SpeedConstants] = {"0.26.0": SPEED_V026}
"""By profile version (``vlmctl.engines.vllm.PROFILES``)."""


def speed_constants(vllm_version: str | None = None) -> SpeedConstants:
    """The constants for a vLLM version: its profile's, else the newest measured."""
    from vlmctl.engines.vllm import resolve

    return SPEED.get(resolve(vllm_version).profile.version) or SPEED[max(SPEED)]


def with_host_factor(k: SpeedConstants, factor: float | None, where: str | None = None) -> SpeedConstants:
    """``k`` with a host factor from a calibration file (``vlmctl calibrate --from-bench``); ``k`` when None."""
    if factor is None:
        return k
    return replace(k, host_factor=factor, source=f"{k.source}; host_factor {factor:g} from {where or 'a calibration file'}")
