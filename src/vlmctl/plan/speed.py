"""The speed model: TTFT, TPOT and output tokens/s of one sized replica layout for a workload and a concurrency.

Pure arithmetic over the model's shapes and the GPU catalog (docs/planner.md § speed):

* prefill is compute: LM FLOPs of the uncached prompt tokens plus the vision encoder's FLOPs for its patches, at
  an achieved fraction of the GPU's tensor TFLOP/s, plus TP all-reduces of the prompt's activations;
* a decode step is memory traffic: each stage reads its weights once and the KV cache of every running sequence,
  over the GPU's bandwidth at an achieved fraction (or its FLOPs, when larger), plus two TP all-reduces per layer
  and one PP hand-off per stage boundary over the link between them (NVLink, PCIe or Ethernet), plus a
  per-step and per-sequence scheduler overhead (and a per-layer launch cost without CUDA graphs);
* continuous batching at a concurrency: replicas share the requests evenly; a replica decodes its share (at most
  max_num_seqs, the rest queue) in one batch, split into PP micro-batches; a request's first token waits for the
  API server to take in the requests ahead of it (its event loop and its renderer's one worker overlap) and for
  their prefills; the others' prefills take their share of the GPU's time from every decode step (revisions 1-4);
* revision 5 (``queueing = "simulated"``) follows the closed loop request by request instead (``simulate``): the
  API server's one interpreter shared by the requests in it and by the tokens it streams, a hand-off latency, and
  the engine's steps with chunked prefill and the vision encoder; revision 6 (the committed constants) adds a
  latency per media item and an encoder budget per step.

The constants are measured per vLLM version (``vlmctl.engines.vllm.speed``: date, GPU, runs); docs/validation.md
holds the table of predicted against measured rows, fitted and held out.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from vlmctl.engines.vllm.speed import SpeedConstants
from vlmctl.errors import ConfigError
from vlmctl.hardware.gpus import GpuType
from vlmctl.models.spec import ModelSpec

_WORKLOAD_RE = re.compile(r"^(?P<kind>text|image|video)(?:@(?P<w>\d+)x(?P<h>\d+)(?:x(?P<f>\d+))?)?(?P<repeat>:repeat)?$")


def template_tokens(spec: ModelSpec) -> int:
    """Chat-template tokens the model's family wraps around a one-turn prompt."""
    return spec.family.chat_template_tokens


# ---- workload ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Workload:
    """One kind of request, as `vlmctl bench --mix` writes it, with its text and output lengths."""

    kind: str
    width: int = 0
    height: int = 0
    frames: int = 0
    prompt_tokens: int = 64
    """Text tokens of the prompt (the chat template is added)."""
    output_tokens: int = 64
    repeat: bool = False
    """The same few images or videos recur (as `vlmctl bench` sends them): vLLM finds the template and the media
    in its prefix cache and skips their prefill and the vision encoder; False = every request brings new media."""

    @property
    def label(self) -> str:
        if self.kind == "text":
            return "text"
        size = f"{self.width}x{self.height}" + (f"x{self.frames}" if self.kind == "video" else "")
        return f"{self.kind}@{size}" + (":repeat" if self.repeat else "")

    @property
    def megapixels(self) -> float:
        return self.width * self.height * max(1, self.frames) / 1e6 if self.kind != "text" else 0.0


def parse_workload(text: str, prompt_tokens: int = 64, output_tokens: int = 64) -> Workload:
    """``text``, ``image@WxH`` or ``video@WxHxFRAMES`` (the syntax of `vlmctl bench --mix`, without a weight);
    ``:repeat`` after a size says the same media recur (prefix-cache hits), e.g. ``image@1280x720:repeat``."""
    m = _WORKLOAD_RE.match(text.strip())
    bad = ConfigError(f"--workload '{text}' is not text, image@WxH[:repeat] or video@WxHxFRAMES[:repeat].",
                      fix="e.g. --workload image@1280x720 (new images) or --workload image@1280x720:repeat "
                          "(the same images again)")
    if not m or m["kind"] == "text" and m["repeat"]:
        raise bad
    kind = m["kind"]
    if kind == "image" and (not m["w"] or m["f"]) or kind == "video" and not m["f"] or kind == "text" and m["w"]:
        raise bad
    w, h, f = int(m["w"] or 0), int(m["h"] or 0), int(m["f"] or 0)
    if kind != "text" and (w < 1 or h < 1 or w * h > 100_000_000 or kind == "video" and not 1 <= f <= 10_000):
        raise ConfigError(f"--workload '{text}': sizes must be positive (at most 100 megapixels, 10,000 frames).",
                          fix="e.g. --workload image@1280x720")
    if prompt_tokens < 1 or output_tokens < 1:
        raise ConfigError(f"--prompt-tokens {prompt_tokens} / --output-tokens {output_tokens} must be at least 1.",
                          fix="e.g. --prompt-tokens 64 --output-tokens 64")
    return Workload(kind, w, h, f, prompt_tokens, output_tokens, repeat=bool(m["repeat"]))


def _resize(spec: ModelSpec, width: int, height: int, max_pixels: int) -> tuple[int, int]:
    """The processor's smart resize: sides rounded to the patch grid, area kept within [min_pixels, max_pixels]."""
    unit = spec.family.grid(spec)
    h = max(unit, round(height / unit) * unit)
    w = max(unit, round(width / unit) * unit)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = max(unit, math.floor(height / beta / unit) * unit)
        w = max(unit, math.floor(width / beta / unit) * unit)
    elif h * w < spec.min_pixels:
        beta = math.sqrt(spec.min_pixels / (height * width))
        h = math.ceil(height * beta / unit) * unit
        w = math.ceil(width * beta / unit) * unit
    return w, h


def media_tokens(spec: ModelSpec, work: Workload, max_pixels: int) -> int:
    """LM tokens of the workload's image or video after the processor's resize (0 for text)."""
    if work.kind == "text":
        return 0
    unit = spec.family.grid(spec)
    w, h = _resize(spec, work.width, work.height, max_pixels)
    per_frame = (w // unit) * (h // unit)
    if work.kind == "image":
        return per_frame
    return per_frame * max(1, math.ceil(work.frames / spec.vision.temporal_patch_size))


# ---- the replica ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stage:
    """One pipeline stage of a replica: its GPU kind, node and decoder layers."""

    gpu: GpuType
    node: str
    layers: int
    first: bool
    last: bool


@dataclass(frozen=True)
class Replica:
    """What the speed model needs of a sized layout (one data-parallel replica)."""

    tp: int
    stages: tuple[Stage, ...]
    layer_bytes: float
    """Weight bytes of one decoder layer (all ranks together; quantized where the plan is)."""
    head_bytes: float
    """Weight bytes of the LM head (all ranks together)."""
    kv_bytes_per_token_layer: float
    """KV-cache bytes per token per layer on one GPU."""
    eager: bool
    vision_tp: int
    """Ranks that share one image's encoder work (TP in weights mode, 1 in data mode)."""
    max_num_seqs: int
    max_pixels: int
    max_num_batched_tokens: int = 8192
    """Tokens one engine step carries (decodes first, then prompt chunks)."""

    @property
    def pp(self) -> int:
        return len(self.stages)


@dataclass(frozen=True)
class Speed:
    """Predicted speed of a deployment for a workload at a concurrency."""

    ttft_ms: float
    tpot_ms: float
    output_tokens_per_s: float
    decode_step_ms: float
    bound: str
    prompt_tokens: int
    media_tokens: int
    output_tokens: int

    @property
    def request_ms(self) -> float:
        """One request end to end: first token, then the rest."""
        return self.ttft_ms + (self.output_tokens - 1) * self.tpot_ms


def _tflops(gpu: GpuType) -> float:
    """Datasheet TFLOP/s; for a GPU the catalog does not list, a low estimate from its bandwidth (0.1 FLOP/byte)."""
    return gpu.tflops or 0.1 * _bandwidth(gpu)


def _bandwidth(gpu: GpuType) -> float:
    return gpu.bandwidth_gbs or 300.0


def _link(a: Stage, b: Stage | None, k: SpeedConstants) -> tuple[str, float]:
    """(kind, GB/s) between two stages (or inside one stage's TP group when ``b`` is None)."""
    if b is not None and a.node != b.node:
        return "ethernet", k.ethernet_gbs
    return a.gpu.link, a.gpu.link_gbs


def _all_reduce_s(nbytes: float, tp: int, stage: Stage, k: SpeedConstants) -> float:
    """One ring all-reduce of ``nbytes`` over the stage's TP group."""
    if tp == 1:
        return 0.0
    kind, gbs = _link(stage, None, k)
    return k.link_latency_us[kind] * 1e-6 * math.log2(tp) + 2 * (tp - 1) / tp * nbytes / (gbs * 1e9)


def decode_step_s(spec: ModelSpec, r: Replica, batch: float, context: float, k: SpeedConstants,
                  ) -> tuple[float, dict[str, float]]:
    """Seconds of one decode step of ``batch`` sequences of ``context`` tokens each, and its parts."""
    parts = {"weights": 0.0, "compute": 0.0, "communication": 0.0, "scheduler": 0.0}
    act = batch * spec.hidden_size * 2
    for i, st in enumerate(r.stages):
        bw = _bandwidth(st.gpu) * 1e9 * k.bandwidth_fraction
        read = (st.layers * r.layer_bytes + (r.head_bytes if st.last else 0.0)) / r.tp
        read += batch * context * r.kv_bytes_per_token_layer * st.layers
        flops = 2 * batch * (st.layers * spec.lm_layer_params + (spec.embedding_params if st.last else 0)) / r.tp
        t_mem, t_cmp = read / bw, flops / (_tflops(st.gpu) * 1e12 * k.prefill_mfu)
        if t_cmp > t_mem:
            parts["compute"] += t_cmp
        else:
            parts["weights"] += t_mem
        parts["scheduler"] += st.layers * k.layer_us * 1e-6
        parts["communication"] += 2 * st.layers * _all_reduce_s(act, r.tp, st, k)
        if i + 1 < r.pp:
            kind, gbs = _link(st, r.stages[i + 1], k)
            parts["communication"] += k.link_latency_us[kind] * 1e-6 + 2 * act / (gbs * 1e9)
    layers = sum(st.layers for st in r.stages)
    parts["scheduler"] += (k.step_ms + (k.eager_layer_ms * layers if r.eager else 0.0)) * 1e-3 + k.seq_us * 1e-6 * batch
    return sum(parts.values()), parts


def prefill_s(spec: ModelSpec, r: Replica, tokens: int, media: int, k: SpeedConstants) -> float:
    """GPU seconds to prefill ``tokens`` uncached prompt tokens, ``media`` of them through the vision encoder."""
    total = 0.0
    if media:
        v = spec.vision
        patches = media * v.spatial_merge_size ** 2
        window = min(patches, v.attention_window_patches or patches)  # windowed (Qwen2.5-VL) or whole-image
        flops = 2 * v.params * patches + 4 * v.depth * patches * window * v.hidden_size
        gpu = r.stages[0].gpu
        total += flops / (r.vision_tp * _tflops(gpu) * 1e12 * k.vision_mfu)
    if tokens:
        act = tokens * spec.hidden_size * 2
        for i, st in enumerate(r.stages):
            attn = 2 * st.layers * tokens * tokens * spec.num_attention_heads * spec.head_dim  # causal: half of 4·n²
            flops = (2 * tokens * st.layers * spec.lm_layer_params + attn) / r.tp
            total += flops / (_tflops(st.gpu) * 1e12 * k.prefill_mfu)
            total += 2 * st.layers * _all_reduce_s(act, r.tp, st, k)
            if i + 1 < r.pp:
                kind, gbs = _link(st, r.stages[i + 1], k)
                total += k.link_latency_us[kind] * 1e-6 + 2 * act / (gbs * 1e9)
    return total


def _prompt_tokens(spec: ModelSpec, r: Replica, work: Workload, cached_fraction: float | None
                   ) -> tuple[int, int, int, int]:
    """Media tokens, prompt tokens, and of them those not in vLLM's caches (media; the whole prompt)."""
    media = media_tokens(spec, work, r.max_pixels)
    if cached_fraction is None:
        cached_fraction = 1.0 if work.repeat and media else 0.0
    prompt = work.prompt_tokens + template_tokens(spec) + media
    uncached_media = round(media * (1 - cached_fraction))
    uncached = max(1, prompt - round((prompt - work.prompt_tokens) * cached_fraction))
    return media, prompt, uncached_media, uncached


def predict(spec: ModelSpec, r: Replica, dp: int, work: Workload, concurrency: int, k: SpeedConstants,
            cached_fraction: float | None = None, requests: int | None = None,
            duration_s: float | None = None) -> Speed:
    """TTFT, TPOT and output tokens/s for ``concurrency`` requests in flight over ``dp`` replicas.

    ``cached_fraction``: share of the template and media found in vLLM's prefix cache; by default 1 when the
    workload's media repeat (``image@WxH:repeat``; `vlmctl bench` reuses four images per size) and 0 when every
    request brings new media. vLLM keys cached blocks by token ids plus the media's hash
    (vllm/v1/core/kv_cache_utils.py generate_block_hash_extra_keys), reuses the longest cached run of full blocks
    (vllm/v1/core/kv_cache_manager.py KVCacheManager.get_computed_blocks) and runs the vision encoder only for
    media not already computed or in the encoder cache (vllm/v1/core/sched/scheduler.py
    Scheduler._try_schedule_encoder_inputs).
    """
    if k.queueing == "simulated":
        return simulate(spec, r, dp, work, concurrency, k, cached_fraction, requests, duration_s)
    media, prompt, uncached_media, uncached = _prompt_tokens(spec, r, work, cached_fraction)
    per_replica = concurrency / dp
    running = min(per_replica, r.max_num_seqs)
    micro = max(1.0, running / r.pp)
    context = prompt + work.output_tokens / 2
    step, parts = decode_step_s(spec, r, micro, context, k)
    if r.pp > 1:  # micro-batches follow each other through the stages: a sequence waits for all of them
        step = max(step, r.pp * (parts["scheduler"]))
    pf = prefill_s(spec, r, uncached, uncached_media, k)
    mp_new = work.megapixels * (uncached_media / media if media else 0.0)
    # the API server's two serial workers: its event loop (HTTP, chat template, media load and hash, streaming) and
    # its renderer's thread pool of one worker, which runs the HF processor on media not in the processor cache
    # (vllm/renderers/base.py BaseRenderer.__init__, vllm/config/model.py ModelConfig.renderer_num_workers): a
    # request waits for both in turn, but the two overlap across requests, so the slower one paces them; each
    # costs a fixed time per media item besides its time per megapixel, and a new item's hand-off to the engine
    # core adds latency that overlaps the others' work
    items = 1 if media else 0
    new_items = items * uncached_media / media if media else 0.0
    loop = (k.api_ms + k.media_item_ms * items + k.media_ms_per_mpixel * work.megapixels) * k.host_factor * 1e-3
    render = (k.media_new_item_ms * new_items + k.media_new_ms_per_mpixel * mp_new) * k.host_factor * 1e-3
    hand_off = k.media_new_latency_ms * new_items * k.host_factor * 1e-3
    api, serial = loop + render + hand_off, max(loop, render)
    # the step that carries a prefill costs the larger of its decode work and the prefill's compute (the scheduler
    # fills a step's token budget with the running decodes first, then the waiting prompts:
    # vllm/v1/core/sched/scheduler.py Scheduler.schedule); in a closed loop at equal lengths the median request
    # waits for half the others on its replica, each paced by the slower of such a step and the API server's
    # slower worker (one API server per DP rank by default: vllm/entrypoints/cli/serve.py ServeSubcommand.cmd)
    first = max(step, pf)
    ttft = k.request_ms * 1e-3 + api + first + (running - 1) / 2 * max(first, serial)
    # the others' prefills take their share of the GPU's time (their requests/s × what a prefill adds to a step),
    # and every decode step of the request stretches by it: TPOT = step / (1 − share); the share depends on the
    # cycle, which depends on TPOT: a few fixed-point rounds
    excess, tpot = max(0.0, pf - step), step
    for _ in range(20):
        cycle = ttft + (work.output_tokens - 1) * tpot + k.gap_ms * 1e-3
        tpot = step / (1 - min(0.9, (running - 1) / cycle * excess))
    cycle = ttft + (work.output_tokens - 1) * tpot + k.gap_ms * 1e-3
    if running * serial > cycle:  # an API server takes at most 1 / serial requests per second: the first token waits
        ttft, cycle = ttft + running * serial - cycle, running * serial
    if per_replica > running:  # more requests than max_num_seqs or the KV cache holds: the median waits half the turns
        ttft += (per_replica - running) / running / 2 * cycle
    throughput = dp * running * work.output_tokens / cycle
    bound = max(parts, key=lambda key: parts[key])
    return Speed(ttft_ms=ttft * 1e3, tpot_ms=tpot * 1e3, output_tokens_per_s=throughput, decode_step_ms=step * 1e3,
                 bound=bound, prompt_tokens=prompt, media_tokens=media, output_tokens=work.output_tokens)


SIMULATED_CLIENTS = 256
"""Clients of one replica followed one by one; more only wait (plan() stays within its time budget)."""


def simulate(spec: ModelSpec, r: Replica, dp: int, work: Workload, concurrency: int, k: SpeedConstants,
             cached_fraction: float | None = None, requests: int | None = None,
             duration_s: float | None = None) -> Speed:
    """Revision 5: the closed loop as a discrete-event simulation of one replica's share of the clients.

    A request's host work (the event loop's parsing, template, media load and hash, and the renderer's HF processor
    for media not in the processor cache: vllm/renderers/base.py BaseRenderer.__init__, vllm/config/model.py
    ModelConfig.renderer_num_workers) runs in the API server's one Python interpreter, which the requests in it
    share and which also streams every output token (processor sharing, slowed by the streaming share); then a
    hand-off latency to the engine core; the engine core runs steps: every running sequence decodes one token and
    the waiting prompts fill the rest of the step's token budget in chunks (vllm/v1/core/sched/scheduler.py
    Scheduler.schedule), their media through the vision encoder in the step of their first chunk; a step costs
    the larger of its decode memory traffic and its prompt tokens' compute, plus the encoder. Prompts that reach
    the engine while a step runs are prefilled together in the next one (the bursts of first tokens in the
    per-request records). A request ends after its output tokens; its client sends the next one after a gap.
    All clients start together (as `vlmctl bench` levels do). The revision-6 candidate's terms (zero in revision
    5): a latency per media item, cached or not, and an encoder budget per step (media tokens, a fraction of the
    step's token budget, at least one item), which prefills large new images in separate steps, each inside the
    others' decodes. The revision-7 candidate's term (zero in revision 5): each request's host work and hand-off
    latency scaled by its own factor exp(host_spread · z), z drawn from a seeded generator, so the clients, sent
    together, fall out of step as the measured ones do and the others' prefills land inside a request's decode;
    then the level is simulated SPREAD_SEEDS times with the same seeds whatever the inputs (the same inputs give
    the same output) and the medians taken over all of their requests. Medians of TTFT and TPOT over the
    requests, output tokens/s over the span, as the bench reports them.
    """
    if k.host_spread:
        runs = [_simulate(spec, r, dp, work, concurrency, k, cached_fraction, requests, duration_s, seed)
                for seed in range(SPREAD_SEEDS)]
        ttfts = [t for run in runs for t in run[0]]
        tpots = [t for run in runs for t in run[1]]
        wait = sum(run[2] for run in runs) / len(runs)
        done, end = sum(run[3] for run in runs), sum(run[4] for run in runs)
        return _speed(spec, r, dp, work, concurrency, k, cached_fraction, ttfts, tpots, wait, done, end, runs[0][5])
    return _speed(spec, r, dp, work, concurrency, k, cached_fraction,
                  *_simulate(spec, r, dp, work, concurrency, k, cached_fraction, requests, duration_s, None))


SPREAD_SEEDS = 4
"""Simulated levels per prediction when requests' host times spread (host_spread > 0), seeds 0 to 3."""


def _speed(spec: ModelSpec, r: Replica, dp: int, work: Workload, concurrency: int, k: SpeedConstants,
           cached_fraction: float | None, ttfts: list[float], tpots: list[float], wait: float, done: int, end: float,
           decode) -> Speed:
    """The simulated requests' medians as a ``Speed`` (``wait``: the first token's wait of clients past
    SIMULATED_CLIENTS; ``done`` requests of one replica in ``end`` seconds)."""
    media, prompt, _, _ = _prompt_tokens(spec, r, work, cached_fraction)
    wanted = max(1, round(concurrency / dp))
    clients = min(wanted, SIMULATED_CLIENTS)
    context = prompt + work.output_tokens / 2
    ttft = _median(ttfts) + wait
    tpot = _median(tpots) if tpots else decode(1)
    step = decode(max(1, min(clients, r.max_num_seqs)))
    _, parts = decode_step_s(spec, r, max(1.0, min(clients, r.max_num_seqs) / r.pp), context, k)
    busy = min(dp, concurrency / wanted)  # replicas with clients (fewer than dp when concurrency < dp)
    return Speed(ttft_ms=ttft * 1e3, tpot_ms=tpot * 1e3, output_tokens_per_s=busy * done * work.output_tokens / end,
                 decode_step_ms=step * 1e3, bound=max(parts, key=lambda key: parts[key]), prompt_tokens=prompt,
                 media_tokens=media, output_tokens=work.output_tokens)


def _simulate(spec: ModelSpec, r: Replica, dp: int, work: Workload, concurrency: int, k: SpeedConstants,
              cached_fraction: float | None, requests: int | None, duration_s: float | None, seed: int | None):
    """One simulated level: its requests' TTFTs and TPOTs (s), the wait of the clients past SIMULATED_CLIENTS (s),
    the requests done and the span (s), and its decode step (seconds by batch). ``seed``: the generator of the
    requests' host-time factors (None: every factor 1)."""
    import heapq
    import random

    media, prompt, uncached_media, uncached = _prompt_tokens(spec, r, work, cached_fraction)
    wanted = max(1, round(concurrency / dp))
    # past SIMULATED_CLIENTS (more than the engine's batch ever reached in the measured rows) the replica is
    # saturated: the rest of the clients only wait, and Little's law gives their wait from the simulated request rate
    clients = min(wanted, SIMULATED_CLIENTS)
    total = max(1, round(requests / dp)) if requests else max(4 * clients, 24)
    total = min(total, 4 * clients + 24) if wanted > clients else total
    if duration_s is not None and wanted == clients:  # a timed bench level: clients send until the time is up
        total = 10**6
    out = work.output_tokens
    items = 1 if media else 0
    new_items = items * uncached_media / media if media else 0.0
    mp_new = work.megapixels * (uncached_media / media if media else 0.0)
    h = k.host_factor * 1e-3
    loop_s = (k.api_ms + k.media_item_ms * items + k.media_ms_per_mpixel * work.megapixels) * h
    render_s = (k.media_new_item_ms * new_items + k.media_new_ms_per_mpixel * mp_new) * h
    stream_s = k.stream_us * 1e-6 * k.host_factor
    latency_s = (k.request_ms + k.media_item_latency_ms * items) * 1e-3 + k.media_new_latency_ms * new_items * h
    vision_s = prefill_s(spec, r, 0, uncached_media, k)
    lm_s = prefill_s(spec, r, uncached, 0, k)
    budget = max(1, r.max_num_batched_tokens)
    encoder_tokens = k.encoder_budget * budget if k.encoder_budget else math.inf
    context = prompt + out / 2
    steps: dict[int, float] = {}
    rng = random.Random(seed) if seed is not None else None

    def decode(n: int) -> float:
        if n not in steps:
            micro = max(1.0, n / r.pp)
            t, parts = decode_step_s(spec, r, micro, context, k)
            steps[n] = max(t, r.pp * parts["scheduler"]) if r.pp > 1 else t
        return steps[n]

    sent = 0
    waiting: list[list] = []  # [id, prompt tokens left, encoder pending]
    running: list[list] = []  # [id, tokens left]
    arrivals: list[tuple[float, int]] = []  # (reaches the engine, id)
    # [host work left, id, hand-off latency]: the API server's requests, sharing its one interpreter
    host: list[list] = []
    host_t = 0.0
    start: dict[int, float] = {}

    def advance_host(t: float) -> None:
        """Run the API server's shared interpreter up to ``t``: its requests progress together (processor sharing),
        each leaving for the engine core after the hand-off latency."""
        nonlocal host_t
        while host:
            n, least = len(host), min(j[0] for j in host)
            if host_t + least * n > t:
                for j in host:
                    j[0] -= (t - host_t) / n
                break
            host_t += least * n
            for j in host:
                j[0] -= least
            for j in [j for j in host if j[0] <= 1e-12]:
                host.remove(j)
                heapq.heappush(arrivals, (host_t + j[2], j[1]))
        host_t = max(host_t, t)

    def next_arrival() -> float:
        soon = arrivals[0][0] if arrivals else math.inf
        if host and rng is None:
            soon = min(soon, host_t + min(j[0] for j in host) * len(host) + latency_s)
        elif host:  # processor sharing: the jobs end in order of their work left; each then takes its own latency
            t, before, n = host_t, 0.0, len(host)
            for i, j in enumerate(sorted(host, key=lambda j: j[0])):
                t += (j[0] - before) * (n - i)
                before = j[0]
                soon = min(soon, t + j[2])
        return soon

    def send(at: float) -> None:
        nonlocal sent
        advance_host(at)
        rid = sent
        sent += 1
        start[rid] = at
        # the same process detokenizes and streams every output token (one Python interpreter): what it streams
        # now slows its request work by that share
        busy = 1 / (1 - min(0.9, len(running) / decode(max(1, len(running))) * stream_s)) if running else 1.0
        f = math.exp(k.host_spread * rng.gauss(0.0, 1.0)) if rng is not None else 1.0
        host.append([(loop_s + render_s) * busy * f + 1e-9, rid, latency_s * f])

    for _ in range(min(clients, total)):
        send(0.0)
    first: dict[int, float] = {}
    ttfts, tpots = [], []
    now, end, done = 0.0, 0.0, 0
    while done < sent:
        advance_host(now)
        while arrivals and arrivals[0][0] <= now:
            waiting.append([heapq.heappop(arrivals)[1], uncached, uncached_media > 0])
        if not waiting and not running:
            now = max(now, next_arrival())
            continue
        room = max(0, r.max_num_seqs - len(running))
        if waiting and room:
            tokens, lm, vis = budget - len(running), 0.0, 0.0
            finished, encoded = [], 0
            for w in waiting[:room]:
                if tokens <= 0:
                    break
                if w[2] and encoded and (encoded + 1) * uncached_media > encoder_tokens:
                    continue  # the step's encoder budget is spent: this prompt waits for a later step
                encoded += 1 if w[2] else 0
                chunk = min(tokens, w[1])
                tokens -= chunk
                lm += lm_s * chunk / uncached
                if w[2]:
                    vis, w[2] = vis + vision_s, False
                w[1] -= chunk
                if w[1] == 0:
                    finished.append(w)
            dt = max(decode(max(1, len(running))), lm) + vis + (k.encoder_call_ms * 1e-3 if vis else 0.0)
            now += dt
            for w in finished:
                waiting.remove(w)
                first[w[0]] = now
            for q in running:
                q[1] -= 1
            running.extend([w[0], out - 1] for w in finished)
        else:
            dt = decode(len(running))
            n = min(q[1] for q in running)
            soon = next_arrival()
            if soon < math.inf:
                n = max(1, min(n, math.ceil((soon - now) / dt)))
            n = max(n, 1)
            now += n * dt
            for q in running:
                q[1] -= n
        ended = sorted(((now + q[1] * dt, q) for q in running if q[1] <= 0), key=lambda e: e[0])
        for t_end, q in ended:  # a sequence ends at the step that gives its last token
            running.remove(q)
            rid = q[0]
            ttfts.append(first[rid] - start[rid])
            if out > 1:
                tpots.append((t_end - first[rid]) / (out - 1))
            done += 1
            end = max(end, t_end)
            if sent < total and (duration_s is None or t_end + k.gap_ms * 1e-3 < duration_s):
                send(t_end + k.gap_ms * 1e-3)
    wait = (wanted - clients) * end / done if wanted > clients else 0.0  # the clients past SIMULATED_CLIENTS
    return ttfts, tpots, wait, done, end, decode


def _median(values: list[float]) -> float:
    import statistics

    return statistics.median(values)


def replica_from_plan(spec: ModelSpec, plan) -> Replica:
    """The speed model's view of a ``Plan`` (one replica), e.g. to predict what `vlmctl bench` will measure."""
    from vlmctl.hardware.gpus import gpu_type
    from vlmctl.plan import memory as mem

    kv = 1 if plan.kv_cache_dtype.startswith("fp8") else mem.dtype_bytes(plan.dtype)
    stages = []
    for stage in range(plan.pipeline_parallel_size):
        g = next(g for g in plan.per_gpu if g.stage == stage and g.dp_rank == 0)
        stages.append(Stage(gpu_type(g.gpu_type), g.node, g.layers, stage == 0,
                            stage == plan.pipeline_parallel_size - 1))
    layer = mem.stage_weights_bytes(spec, tp=1, layers=1, first=False, last=False, dtype=plan.dtype,
                                    quantization=plan.quantization, vision="none")
    tp = plan.tensor_parallel_size
    return Replica(tp=tp, stages=tuple(stages), layer_bytes=layer,
                   head_bytes=spec.embedding_params * mem.dtype_bytes(plan.dtype),
                   kv_bytes_per_token_layer=mem.kv_page_bytes(spec, tp, kv) / mem.BLOCK_SIZE,
                   eager=plan.enforce_eager, vision_tp=1 if plan.mm_encoder_tp_mode == "data" else tp,
                   max_num_seqs=plan.max_num_seqs, max_pixels=plan.media_limits.max_pixels,
                   max_num_batched_tokens=plan.max_num_batched_tokens)
