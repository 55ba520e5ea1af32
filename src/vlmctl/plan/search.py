"""The search: enumerate DP × TP × PP over the cluster, size each candidate with vLLM's arithmetic, predict its
speed, rank.

A replica (TP × PP GPUs) is sized once, on the tightest GPUs it is placed on; the cluster runs as many replicas as
fit. Replicas stay inside a node where one node holds one; PP across nodes only where none does.

Pure: no torch, Ray or vLLM import. ``make_plan`` is what the CLI, tests and other commands call.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from vlmctl.clusterspec import ClusterSpec, NodeSpec
from vlmctl.findings import Finding, errors
from vlmctl.hardware.gpus import GpuType
from vlmctl.models.spec import ModelSpec
from vlmctl.plan import memory as mem
from vlmctl.engines.vllm import VllmProfile
from vlmctl.engines.vllm.speed import speed_constants, with_host_factor
from vlmctl.plan import speed as spd
from vlmctl.plan.calibration import GIB, Calibration, choose
from vlmctl.plan.media import MediaProfile, profiles_for
from vlmctl.plan.request import PlanRequest
from vlmctl.plan.rules import RuleInput, check

MIN_USEFUL_LEN = 2048


@dataclass(frozen=True)
class Slot:
    """A TP group's worth of GPUs on one node: one pipeline stage can run here."""

    node: NodeSpec
    gpu: GpuType
    gpu_ids: tuple[int, ...]
    total_gib: float
    reserved_gib: float


@dataclass
class Candidate:
    """One sized configuration: its settings, per-stage memory, findings and score."""

    tp: int
    pp: int
    slots: list[Slot]
    partition: list[int]
    dtype: str
    quantization: str | None
    vision_mode: str
    media: MediaProfile
    eager: bool
    utilization: float
    max_model_len: int
    max_num_seqs: int
    max_num_batched_tokens: int
    stages: list[mem.StageMemory] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    frames: int = 0
    encoder_tokens: int = 0
    reserve_note: str = ""
    expert_parallel: bool = False
    replicas: list[list[Slot]] = field(default_factory=list)
    """Every data-parallel replica's slots (``slots`` is the one sized: the tightest)."""
    speed: spd.Speed | None = None
    slo_misses: list[str] = field(default_factory=list)

    @property
    def dp(self) -> int:
        return max(1, len(self.replicas))

    @property
    def crosses_nodes(self) -> bool:
        """True when one replica spans several nodes (PP over the network)."""
        return len({s.node.name for s in self.slots}) > 1

    @property
    def ok(self) -> bool:
        return not errors(self.findings)

    @property
    def blocks(self) -> int:
        return min((s.blocks for s in self.stages), default=0)

    @property
    def tightest(self) -> mem.StageMemory | None:
        return min(self.stages, key=lambda s: s.blocks, default=None)

    @property
    def kv_tokens(self) -> int:
        s = self.tightest
        return s.kv_tokens(self.max_model_len) if s else 0

    @property
    def concurrency(self) -> float:
        s = self.tightest
        return s.concurrency(self.max_model_len) if s else 0.0

    @property
    def decode_bound(self) -> float:
        """Batch-1 tokens/s upper bound: each stage reads its weights once per token, stages in sequence."""
        secs = sum(s.weights / (slot.gpu.bandwidth_gbs * 1e9) for s, slot in zip(self.stages, self.slots))
        return 1.0 / secs if secs else 0.0

    @property
    def layout(self) -> str:
        ep = " (expert parallel)" if self.expert_parallel else ""
        return f"DP {self.dp} × TP {self.tp}{ep} × PP {self.pp}"

    @property
    def summary(self) -> str:
        g = " " + self.slots[0].gpu.id if self.slots else ""
        return (f"{self.layout}{g}, {self.dtype}, {self.media.name}, "
                f"{'eager' if self.eager else 'CUDA graphs'}, ViT {self.vision_mode}")


def _slots(cluster: ClusterSpec, tp: int) -> list[Slot]:
    out = []
    for node in cluster.nodes:
        ids, gpu = node.ids, node.gpu_type
        total = node.total_gib or gpu.total_gib
        for k in range(len(ids) // tp):
            out.append(Slot(node, gpu, tuple(ids[k * tp:(k + 1) * tp]), total, node.reserved_gib))
    return out


def _room(s: Slot) -> float:
    return s.total_gib - s.reserved_gib


def _layouts(slots: list[Slot], pp: int, dp: int | None) -> list[list[list[Slot]]]:
    """Ways to cut the slots into replicas of ``pp`` stages, kept in cluster order (stage 0 on the first node used).

    One per distinct room: the replicas that fit on slots at least that roomy (all slots, then fewer but larger
    ones); ``dp`` fixes the replica count. A replica's stages are consecutive slots, so they share a node where
    they can."""
    out, seen = [], set()
    for room in sorted({_room(s) for s in slots}, reverse=True):
        usable = [s for s in slots if _room(s) >= room]
        n = len(usable) // pp
        if dp is not None:
            if n < dp:
                continue
            n = dp
        if n == 0:
            continue
        if n * pp < len(usable):  # fewer replicas than slots: keep the roomiest, in cluster order
            order = {id(s): i for i, s in enumerate(usable)}
            usable = sorted(sorted(usable, key=lambda s: (-_room(s), order[id(s)]))[:n * pp], key=lambda s: order[id(s)])
        key = tuple(id(s) for s in usable)
        if key in seen:
            continue
        seen.add(key)
        out.append([usable[i * pp:(i + 1) * pp] for i in range(n)])
    return out


def _tightest(replicas: list[list[Slot]]) -> list[Slot]:
    """The replica to size: vLLM gives every DP rank the same flags, so the least room bounds them all."""
    return min(enumerate(replicas), key=lambda ir: (min(_room(s) for s in ir[1]), -ir[0]))[1]


def _default_batch(slots: list[Slot], engine: VllmProfile) -> tuple[int, int]:
    """vLLM serve's (max_num_batched_tokens, max_num_seqs) when unset: the smallest any GPU of the plan gets (the
    head's GPU decides in vLLM; the smallest keeps the plan valid whichever node is the head)."""
    rules = engine.batch_defaults
    return min(rules.for_gpu(s.gpu.id, s.total_gib, s.gpu.compute_capability) for s in slots)


def _quant_kernel(spec: ModelSpec, req: PlanRequest, gpus: tuple[GpuType, ...]) -> str | None:
    if req.quantization:
        return req.quantization
    q = spec.quantization
    if q is None:
        return None
    if q.quant_method == "awq":
        marlin_ok = (q.bits == 4 and q.group_size in (-1, 32, 64, 128) and q.zero_point
                     and all(g.compute_capability >= (7, 5) for g in gpus))
        return "awq_marlin" if marlin_ok else "awq"
    if q.quant_method == "gptq":
        return "gptq_marlin" if all(g.compute_capability >= (7, 5) for g in gpus) else "gptq"
    return q.quant_method


def _dtype(spec: ModelSpec, req: PlanRequest, gpus: tuple[GpuType, ...], quant: str | None) -> str:
    if req.dtype != "auto":
        return req.dtype
    if spec.torch_dtype in ("float16", "half") or quant == "awq":
        return "float16"
    return "bfloat16" if all(g.bf16 for g in gpus) else "float16"


def _max_utilization(slot: Slot, world: int, cal: Calibration) -> float:
    """Largest u whose request fits the free memory at start (CUDA context, NCCL, other processes)."""
    used = cal.cuda_context_gib + (cal.nccl_init_gib if world > 1 else 0.0) + slot.reserved_gib
    return math.floor((slot.total_gib - used) / slot.total_gib * 100) / 100


class _Sizer:
    """Sizes one (TP, PP, dtype, media, eager) configuration with vLLM's arithmetic.

    Memoised on what the sizing reads: the search sizes the same configuration at many lengths (the
    max_model_len bisection), and a length only matters through the media a request can carry."""

    def __init__(self, spec: ModelSpec, req: PlanRequest, cal: Calibration, engine: VllmProfile) -> None:
        self.spec, self.req, self.cal, self.engine = spec, req, cal, engine
        self._weights: dict[tuple, float] = {}
        self._shapes: dict[tuple, dict] = {}
        self._media: dict[tuple, tuple[int, int, int]] = {}
        self._stages: dict[tuple, tuple[mem.StageMemory, ...]] = {}
        self._groups: tuple | None = None
        self._kv_bytes = 1 if req.kv_cache_dtype.startswith("fp8") else None

    def weights(self, tp: int, layers: int, first: bool, last: bool, dtype: str, quantization: str | None,
                vision: str, expert_parallel: bool = False, data_parallel: int = 1) -> float:
        """Memoised stage_weights_bytes (the search asks for the same stage shapes many times)."""
        k = (tp, layers, first, last, dtype, quantization, vision, expert_parallel, data_parallel)
        w = self._weights.get(k)
        if w is None:
            w = self._weights[k] = mem.stage_weights_bytes(
                self.spec, tp=tp, layers=layers, first=first, last=last, dtype=dtype, quantization=quantization,
                vision=vision, expert_parallel=expert_parallel, data_parallel=data_parallel)
        return w

    def media_tokens(self, media: MediaProfile, max_model_len: int, batched: int) -> tuple[int, int, int]:
        """(frames admitted, largest item tokens, encoder tokens in one step) for this profile and length."""
        k = (media, max_model_len if media.videos else 0, batched)
        hit = self._media.get(k)
        if hit is not None:
            return hit
        spec = self.spec
        img = mem.image_tokens(spec, media.max_pixels) if media.images else 0
        frames = 0
        vid = 0
        if media.videos:
            frames = spec.family.video_frames_within(spec, media.max_pixels, max_model_len, media.frames)
            vid = mem.video_tokens(spec, media.max_pixels, frames)
        item = max(img, vid)
        hit = self._media[k] = (frames, item, self.engine.encoder_budget_tokens(batched, item))
        return hit

    def size(self, c: Candidate) -> None:
        c.findings = []
        frames, _, step = self.media_tokens(c.media, c.max_model_len, c.max_num_batched_tokens)
        c.frames, c.encoder_tokens = frames, step
        vision_on = c.media.vision_on
        key = (step, vision_on, c.vision_mode if vision_on else None, c.vision_mode == "data" if step else None,
               c.tp, c.pp, c.dtype, c.quantization, c.expert_parallel, c.dp if c.expert_parallel else 1,
               c.eager, c.utilization, c.max_num_seqs, c.max_num_batched_tokens, tuple(c.partition),
               tuple(s.total_gib for s in c.slots))
        stages = self._stages.get(key)
        if stages is None:
            stages = self._stages[key] = self._size(c, step)
        c.stages = list(stages)

    def _size(self, c: Candidate, step: int) -> tuple[mem.StageMemory, ...]:
        spec, cal = self.spec, self.cal
        vision = c.vision_mode if c.media.vision_on else "none"
        tp_eff = 1 if c.vision_mode == "data" else c.tp
        patches = step * mem.patches_per_token(spec)
        vit = mem.vit_peak_bytes(spec, patches, tp_eff, cal) if step else 0.0
        outputs = mem.encoder_output_bytes(spec, step, c.dtype)
        kv_bytes = self._kv_bytes or mem.dtype_bytes(c.dtype)
        buffers = (spec.family.persistent_buffer_bytes(spec, c.max_num_batched_tokens, mem.dtype_bytes(c.dtype))
                   if c.media.vision_on else 0.0)
        world = c.tp * c.pp
        extra = cal.weight_overhead_gib * GIB + buffers
        lm_by_last = {last: mem.lm_activation_bytes(spec, tp=c.tp, tokens=c.max_num_batched_tokens,
                                                    seqs=c.max_num_seqs, last=last, cal=cal) for last in (False, True)}
        non_torch = (cal.non_torch_gib + (cal.non_torch_tp_gib if world > 1 else 0.0)) * GIB
        graphs = 0.0 if c.eager else cal.cudagraph_gib * GIB
        stages = []
        start = 0
        for i, (slot, layers) in enumerate(zip(c.slots, c.partition)):
            first, last = i == 0, i == c.pp - 1
            total = slot.total_gib * GIB
            requested = math.ceil(total * c.utilization)
            weights = self.weights(c.tp, layers, first, last, c.dtype, c.quantization, vision, c.expert_parallel,
                                   c.dp) + extra
            key = (c.tp, kv_bytes, start, layers)
            if key not in self._shapes:
                if self._groups is None:
                    self._groups = mem.kv_groups(spec)
                self._shapes[key] = mem.cache_shape(spec, c.tp, kv_bytes, start, layers, self._groups)
            shape = self._shapes[key]
            start += layers
            lm = lm_by_last[last]
            if cal.encoder_in_profile and step:
                activation, runtime = max(vit, outputs + lm), 0.0
            else:  # the encoder runs on the first PP stage only (vLLM GPUModelRunner.execute_model)
                activation, runtime = lm, (vit + outputs if step and first else 0.0)
            avail = requested - weights - activation - non_torch - graphs
            stages.append(mem.StageMemory(total, requested, weights, activation, non_torch, graphs, runtime,
                                          avail, shape["page"], layers, shape["block_size"], shape["group_size"],
                                          shape["state_blocks"], shape["state_bytes"]))
        return tuple(stages)


def _fit_len(stages: list[mem.StageMemory], derived: int, concurrency: int | None) -> int:
    """Largest max_model_len the KV cache holds (for ``concurrency`` requests), vLLM-style, rounded down."""
    tight = min(stages, key=lambda s: s.blocks)
    blocks = tight.blocks
    if concurrency:
        blocks //= concurrency
    fit = min(derived, max(0, blocks - tight.state_blocks) * tight.block_size)
    if fit >= 8192:
        return fit // 1024 * 1024
    return fit // 256 * 256 if fit >= 256 else fit // mem.BLOCK_SIZE * mem.BLOCK_SIZE


class Planner:
    """Enumerates and sizes candidates for one model, cluster and request."""

    def __init__(self, spec: ModelSpec, cluster: ClusterSpec, req: PlanRequest,
                 constants: Calibration | None = None) -> None:
        self.spec, self.cluster, self.req = spec, cluster, req
        self.chosen = choose(req.vllm_version, req.model_runner, req.calibration, is_moe=spec.moe is not None,
                             is_hybrid=spec.linear_attention is not None,
                             architectures=tuple(spec.family.architectures), family=spec.family.name)
        if constants is not None:
            self.chosen = replace(self.chosen, cal=constants,
                                  findings=[f for f in self.chosen.findings if f.id == "vllm-version-unknown"])
        self.engine, self.cal = self.chosen.engine, self.chosen.cal
        self.sizer = _Sizer(spec, req, self.cal, self.engine)
        self.work = spd.parse_workload(req.workload, req.prompt_tokens, req.output_tokens)
        self.speed_constants = with_host_factor(speed_constants(self.chosen.engine.version), self.chosen.host_factor,
                                                self.chosen.calibration_file)
        self.concurrency = req.concurrency or 1
        self._slots: dict[int, list[Slot]] = {}
        self._static: dict[tuple, list[Finding]] = {}

    # -- candidates -------------------------------------------------------------------------
    def slots(self, tp: int) -> list[Slot]:
        """The cluster's TP groups of ``tp`` GPUs (memoised: node properties resolve the GPU catalog)."""
        if tp not in self._slots:
            self._slots[tp] = _slots(self.cluster, tp)
        return self._slots[tp]

    def tp_options(self) -> list[int]:
        if self.req.tensor_parallel_size:
            return [self.req.tensor_parallel_size]
        most = max(n.count for n in self.cluster.nodes)
        return [t for t in range(1, most + 1) if (t & (t - 1)) == 0 or self.spec.num_attention_heads % t == 0]

    def pp_options(self, n_slots: int) -> list[int]:
        if self.req.pipeline_parallel_size:
            return [self.req.pipeline_parallel_size] if self.req.pipeline_parallel_size <= n_slots else []
        opts = set(range(1, min(n_slots, 8) + 1)) | {n_slots}
        return sorted(p for p in opts if 1 <= p <= min(n_slots, self.spec.num_hidden_layers))

    def static_findings(self, tp: int, pp: int, dtype: str, quant: str | None, vision: str,
                        gpus: tuple[GpuType, ...], partition: list[int], expert_parallel: bool = False,
                        dp: int = 1) -> list[Finding]:
        key = (tp, pp, dtype, quant, vision, gpus, tuple(partition), expert_parallel, dp)
        found = self._static.get(key)
        if found is None:
            found = self._static[key] = check(RuleInput(self.spec, tp, pp, dtype, self.req.dtype, quant, vision, gpus,
                                                         key[6], expert_parallel, dp))
        return list(found)

    def passing_tps(self) -> list[int]:
        """TP sizes that pass every static rule on this cluster (for fixes)."""
        out = []
        for t in range(1, max(n.count for n in self.cluster.nodes) + 1):
            slots = self.slots(t)
            if not slots:
                continue
            gpus = tuple({s.gpu.id: s.gpu for s in slots}.values())
            quant = _quant_kernel(self.spec, self.req, gpus)
            dtype = _dtype(self.spec, self.req, gpus, quant)
            mode = self.req.mm_encoder_tp_mode or "weights"
            part = mem.pp_partition(self.spec.num_hidden_layers, 1)
            if not errors(self.static_findings(t, 1, dtype, quant, mode, gpus, part)):
                out.append(t)
        return out

    def ep_options(self, tp: int, dp: int = 1) -> list[bool]:
        """Expert parallelism: as asked, else both for an MoE model whose expert-parallel group (TP × DP ranks,
        as vLLM forms it) has more than one GPU."""
        if self.req.enable_expert_parallel is not None:
            return [self.req.enable_expert_parallel]
        return [False, True] if self.spec.moe is not None and tp * dp > 1 else [False]

    def evaluate(self, tp: int, pp: int, slots: list[Slot], media: MediaProfile, eager: bool, vision_mode: str,
                 partition: list[int] | None = None, expert_parallel: bool = False,
                 replicas: list[list[Slot]] | None = None, predict: bool = True) -> Candidate:
        """Size one configuration; ``predict``: also its speed when it starts (the search predicts only the
        candidates it keeps)."""
        spec, req, cal = self.spec, self.req, self.cal
        gpus = tuple({s.gpu.id: s.gpu for s in slots}.values())
        quant = _quant_kernel(spec, req, gpus)
        dtype = _dtype(spec, req, gpus, quant)
        part = partition or mem.pp_partition(spec.num_hidden_layers, pp)
        t_default, s_default = _default_batch(slots, self.engine)
        seqs = req.max_num_seqs or s_default
        derived = spec.derived_max_model_len
        length = req.max_model_len or derived
        batched = req.max_num_batched_tokens or min(t_default, seqs * length)
        u_max = min(_max_utilization(s, tp * pp, cal) for s in slots)
        util = req.gpu_memory_utilization or min(self.engine.default_utilization, u_max)
        c = Candidate(tp, pp, slots, part, dtype, quant, vision_mode, media, eager, util, length, seqs, batched,
                      expert_parallel=expert_parallel, replicas=replicas or [slots])
        static = self.static_findings(tp, pp, dtype, quant, vision_mode if media.vision_on else "none", gpus, part,
                                      expert_parallel, c.dp)
        if errors(static):
            c.findings = static
            return c
        fixed_u = req.gpu_memory_utilization is not None

        last: dict = {}

        def settle(max_model_len: int) -> list[Finding]:
            if last.get("length") == max_model_len:  # sized at this length just before: the same state again
                return last["findings"]
            c.max_model_len = max_model_len
            c.max_num_seqs = seqs
            c.max_num_batched_tokens = req.max_num_batched_tokens or min(t_default, seqs * max_model_len)
            c.utilization, c.reserve_note = util, ""
            self.sizer.size(c)
            last.update(length=max_model_len, findings=self._reserve_encoder(c, fixed_u) + self._state_per_sequence(c))
            return last["findings"]

        reserve = settle(length)
        if req.max_model_len is None:
            reserve = settle(self._auto_len(settle, c, derived))
        c.findings = static + reserve + self._memory_findings(c, u_max, derived)
        if predict and c.ok:
            self.predict(c)
        return c

    def request_tokens(self, c: Candidate) -> int:
        """KV tokens one request of the workload takes (prompt, template, media, output)."""
        work = self.work
        media = spd.media_tokens(self.spec, work, c.media.max_pixels) if c.media.vision_on else 0
        return work.prompt_tokens + spd.template_tokens(self.spec) + media + work.output_tokens

    def replica(self, c: Candidate) -> spd.Replica:
        """The speed model's view of a sized candidate (running at most what its KV cache holds)."""
        kv = 1 if self.req.kv_cache_dtype.startswith("fp8") else mem.dtype_bytes(c.dtype)
        layer = self.sizer.weights(tp=1, layers=1, first=False, last=False, dtype=c.dtype,
                                   quantization=c.quantization, vision="none")
        stages = tuple(spd.Stage(slot.gpu, slot.node.name, layers, i == 0, i == c.pp - 1)
                       for i, (slot, layers) in enumerate(zip(c.slots, c.partition)))
        return spd.Replica(tp=c.tp, stages=stages, layer_bytes=layer,
                           head_bytes=self.spec.embedding_params * mem.dtype_bytes(c.dtype),
                           kv_bytes_per_token_layer=mem.kv_page_bytes(self.spec, c.tp, kv) / mem.BLOCK_SIZE,
                           eager=c.eager, vision_tp=1 if c.vision_mode == "data" else c.tp,
                           max_num_seqs=max(1, min(c.max_num_seqs, c.kv_tokens // self.request_tokens(c))),
                           max_pixels=c.media.max_pixels, max_num_batched_tokens=c.max_num_batched_tokens)

    def predict(self, c: Candidate) -> None:
        """Fill the candidate's speed and the latency targets it misses."""
        c.speed = spd.predict(self.spec, self.replica(c), c.dp, self.work, self.concurrency, self.speed_constants)
        c.slo_misses = []
        if self.req.max_ttft_ms and c.speed.ttft_ms > self.req.max_ttft_ms:
            c.slo_misses.append(f"TTFT {c.speed.ttft_ms:,.0f} ms > {self.req.max_ttft_ms:g}")
        if self.req.max_tpot_ms and c.speed.tpot_ms > self.req.max_tpot_ms:
            c.slo_misses.append(f"TPOT {c.speed.tpot_ms:.1f} ms > {self.req.max_tpot_ms:g}")

    def _auto_len(self, settle, c: Candidate, derived: int) -> int:
        """Largest length L (on a 256-token grid) whose own sizing still holds L — fit(L) is non-increasing in L."""
        def fits(length: int) -> bool:
            settle(length)
            return _fit_len(c.stages, derived, None) >= length

        if fits(derived):
            return derived
        # feasibility is monotone (a length that holds, holds every shorter one) and fit(L) bounds every feasible
        # length above L: fit(derived) holds itself, and fit(256) / fit(floor) cap the answer, so the bisection
        # runs over a few grid points instead of the whole range
        floor = _fit_len(c.stages, derived, None) // 256
        lo, hi = 0, derived // 256
        if hi >= 2:
            if not fits(256):
                return max(mem.BLOCK_SIZE, _fit_len(c.stages, derived, None))
            lo, hi = 1, min(hi, _fit_len(c.stages, derived, None) // 256)
            if lo < floor <= hi and fits(floor * 256):
                lo, hi = floor, min(hi, _fit_len(c.stages, derived, None) // 256)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(mid * 256):
                lo = mid
            else:
                hi = mid - 1
        if lo == 0:
            return max(mem.BLOCK_SIZE, _fit_len(c.stages, derived, None))
        best = lo * 256
        return best // 1024 * 1024 if best >= 8192 else best

    # -- memory rules -----------------------------------------------------------------------
    def _state_per_sequence(self, c: Candidate) -> list[Finding]:
        """Hybrids with full CUDA graphs: every decode sequence holds one linear-attention state block, so vLLM
        refuses max_num_seqs above the pool's blocks (config/compilation.py
        CompilationConfig.resolve_cudagraph_mode_and_sizes, vLLM 0.26). The plan lowers max_num_seqs when the
        user left it open."""
        if c.eager or self.spec.linear_attention is None or not c.stages:
            return []
        blocks = c.blocks
        if c.max_num_seqs <= blocks or blocks < 1:
            return []
        if self.req.max_num_seqs is None:
            asked = c.max_num_seqs
            c.max_num_seqs = blocks
            self.sizer.size(c)
            c.max_num_seqs = min(blocks, c.blocks)
            return [Finding(
                id="hybrid-max-num-seqs", severity="info",
                message=f"each decode sequence of {self.spec.family.name} holds one linear-attention state block and "
                        f"CUDA graphs need one per sequence: the pool has {blocks} blocks, so the plan sets "
                        f"max_num_seqs {c.max_num_seqs} (vLLM's default {asked} would not start).",
                fix="for more sequences: more memory per GPU (higher TP) or --enforce-eager")]
        return [Finding(
            id="hybrid-max-num-seqs", severity="error",
            message=f"max_num_seqs ({c.max_num_seqs}) exceeds available Mamba cache blocks ({blocks}). Each decode "
                    "sequence requires one Mamba cache block, so CUDA graph capture cannot proceed. Please lower "
                    f"max_num_seqs to at most {blocks} or increase gpu_memory_utilization.",
            fix=f"--max-num-seqs {blocks}, or --enforce-eager")]

    def _reserve_encoder(self, c: Candidate, fixed_u: bool) -> list[Finding]:
        """V2 runner: keep the vision encoder's run-time peak free (its start-up profile does not)."""
        peak = max((s.encoder_runtime for s in c.stages), default=0.0)
        if not peak:
            return []
        cal = self.cal
        shortfall = 0.0
        blocks = c.blocks
        for s, slot in zip(c.stages, c.slots):
            if not s.encoder_runtime:
                continue
            # every worker allocates the same block count (the minimum): a stage with fewer layers keeps the rest
            slack = max(0.0, s.available_kv - blocks * s.page * s.layers)
            free_after = s.total - s.requested - (cal.cuda_context_gib + slot.reserved_gib) * GIB + slack
            shortfall = max(shortfall, (s.encoder_runtime - free_after) / s.total)
        if shortfall <= 0:
            return []
        peak_gib = mem.gib(peak)
        what = (f"the largest request these limits admit ({c.encoder_tokens} vision tokens: "
                f"{c.media.name}) needs about {peak_gib} GiB in the vision encoder at run time")
        if fixed_u:
            return [Finding(
                id="encoder-runtime-oom", severity="warning",
                message=f"vLLM {self.chosen.vllm_version}'s {self.chosen.runner.upper()} model runner does not reserve the "
                        "vision encoder at start-up: "
                        f"{what}, more than gpu_memory_utilization {c.utilization} leaves free, so such a request "
                        "would fail with torch.OutOfMemoryError inside the vision encoder.",
                fix="drop --gpu-memory-utilization (the plan lowers it for you), lower max_pixels/frames or the video "
                    "limit, or plan --model-runner v1 (VLLM_USE_V2_MODEL_RUNNER=0)")]
        before = c.kv_tokens
        new_u = math.floor((c.utilization - shortfall) * 100) / 100
        c.utilization = new_u
        self.sizer.size(c)
        cost = before - c.kv_tokens
        c.reserve_note = f"u lowered to {new_u} to keep {peak_gib} GiB for the vision encoder"
        return [Finding(
            id="encoder-runtime-reserve", severity="info",
            message=f"vLLM {self.chosen.vllm_version}'s {self.chosen.runner.upper()} model runner does not reserve the "
                    "vision encoder at start-up and "
                    f"{what}: the plan lowers gpu_memory_utilization to {new_u} to keep it free "
                    f"(costs {cost:,} KV tokens).",
            fix="to keep those KV tokens instead, lower max_pixels/frames or disable video (--limit-mm-per-prompt)")]

    def _memory_findings(self, c: Candidate, u_max: float, derived: int) -> list[Finding]:
        out: list[Finding] = []
        L = c.max_model_len
        if L > derived:
            out.append(Finding(
                id="max-model-len-derived", severity="error",
                message=self.engine.wording("max-model-len-derived", max_model_len=L,
                                            max_len_key="max_position_embeddings",
                                            derived=self.spec.max_position_embeddings, model_max_length=None),
                fix=f"--max-model-len {derived} or less"))
        if c.utilization > u_max + 1e-9:
            worst = min(c.slots, key=lambda s: _max_utilization(s, c.tp * c.pp, self.cal))
            free = worst.total_gib * u_max
            out.append(Finding(
                id="free-memory", severity="error",
                message=self.engine.wording("free-memory", device="cuda:0", free=free, total=worst.total_gib,
                                            utilization=c.utilization, wanted=worst.total_gib * c.utilization),
                fix=f"--gpu-memory-utilization {u_max} or lower ({worst.node.name}: CUDA context"
                    f"{', NCCL' if c.tp * c.pp > 1 else ''} and other processes use the rest)"))
        for i, s in enumerate(c.stages):
            if s.available_kv <= 0:
                out.append(Finding(
                    id="kv-no-memory", severity="error",
                    message=self.engine.wording("kv-no-memory") + f" (stage {i}: weights {mem.gib(s.weights)} + activation "
                            f"{mem.gib(s.activation)} + non-torch {mem.gib(s.non_torch)} + graphs "
                            f"{mem.gib(s.cudagraph)} GiB exceed the {mem.gib(s.requested)} GiB requested)",
                    fix="more GPUs per stage (higher TP or PP), a quantized checkpoint, smaller max_pixels or no video"))
                break
            if s.need_for_len(L) > s.available_kv:
                est = s.estimated_max_len(L)
                more = self.engine.wording("kv-max-model-len-estimate", estimate=est) if est else ""
                out.append(Finding(
                    id="kv-max-model-len", severity="error",
                    message=self.engine.wording("kv-max-model-len", max_model_len=L,
                                                needed_gib=mem.gib(s.need_for_len(L)),
                                                available_gib=mem.gib(s.available_kv), estimate=more),
                    fix=f"--max-model-len {est}" if est else "more GPUs, or a smaller model / quantized checkpoint"))
                break
        if not errors(out):
            per_request = self.request_tokens(c)
            share = math.ceil(self.concurrency / c.dp)
            if c.kv_tokens < share * per_request:
                out.append(Finding(
                    id="kv-concurrency", severity="warning",
                    message=f"each replica's KV cache holds {c.kv_tokens:,} tokens: {c.kv_tokens // per_request} "
                            f"requests of {per_request:,} tokens ({self.work.label}), fewer than the {share} that "
                            f"--concurrency {self.concurrency} puts on it; the rest wait their turn.",
                    fix="more GPUs, a quantized checkpoint or --kv-cache-dtype fp8"))
            if L < min(MIN_USEFUL_LEN, derived) and self.req.max_model_len is None:
                out.append(Finding(
                    id="kv-too-small", severity="error",
                    message=f"only {L} tokens of context fit: too little for a useful deployment.",
                    fix="more GPUs, a quantized checkpoint, smaller images or no video"))
            item = mem.image_tokens(self.spec, c.media.max_pixels) if c.media.images else 0
            px = self.spec.family.pixels_per_token(self.spec)
            if item > L:
                auto = self.req.max_model_len is None and not c.media.fixed
                out.append(Finding(
                    id="mm-item-exceeds-len", severity="error" if auto else "warning",
                    message=f"a full-size image ({item} tokens at max_pixels {c.media.max_pixels}) does not fit in "
                            f"max_model_len {L}; such requests will be rejected.",
                    fix=f"--mm-processor-kwargs '{{\"max_pixels\": {max(px * 4, L // 2 * px)}}}'"))
        return out

    # -- search -----------------------------------------------------------------------------
    def candidates(self) -> list[Candidate]:
        out: list[Candidate] = []
        profiles = profiles_for(self.spec, self.req, self.engine.default_mm_limit)
        eagers = [self.req.enforce_eager] if self.req.enforce_eager is not None else [False, True]
        modes = [self.req.mm_encoder_tp_mode] if self.req.mm_encoder_tp_mode else ["weights", "data"]
        # PP only where no node holds a replica: once a one-stage replica starts with full media, deeper pipelines
        # are not sized (unless PP is fixed or the longest context is what counts)
        skip_pp = not self.req.pipeline_parallel_size and self.req.prefer != "context"
        for pp_wanted in (False, True):
            if pp_wanted and skip_pp and any(c.ok and c.media.rank == 0 for c in out):
                break
            out += self._candidates(pp_wanted, profiles, eagers, modes)
        return out

    def _candidates(self, pp_wanted: bool, profiles, eagers, modes) -> list[Candidate]:
        out: list[Candidate] = []
        for tp in self.tp_options():
            slots = self.slots(tp)
            if not slots:
                continue
            for pp in self.pp_options(len(slots)):
                if (pp > 1) != pp_wanted:
                    continue
                layouts = _layouts(slots, pp, self.req.data_parallel_size)
                # most replicas first (all slots, sized on the tightest); fewer, roomier replicas only while the
                # larger layouts do not start with full media (or when the longest context is what counts)
                layouts = layouts[::-1] if pp == 1 or len(layouts) < 3 else [layouts[-1], layouts[0]]
                for replicas, ep in ((r, e) for r in layouts for e in self.ep_options(tp, len(r))):
                    if self.req.prefer != "context" and any(
                            c.ok and c.media.rank == 0 and c.tp == tp and c.pp == pp and c.dp > len(replicas)
                            for c in out):
                        break
                    chosen = _tightest(replicas)
                    best: Candidate | None = None
                    for mode in modes:
                        cand = self._first_ok(tp, pp, chosen, profiles, eagers, mode, replicas, ep)
                        if best is None or _better_failure(cand, best) or cand.ok and not best.ok:
                            best = cand
                        if best.ok or not best.media.vision_on:
                            # failing without media: the vision encoder's TP mode changes nothing in that sizing,
                            # so the other mode fails alike and cannot replace it
                            break
                    assert best is not None
                    if best.ok and pp > 1:
                        best = self._try_uneven(best)
                    if best.ok:
                        self.predict(best)
                    out.append(best)
                if pp > 1 and self.req.prefer != "context" and any(
                        c.ok and c.media.rank == 0 and c.tp == tp and c.pp == pp for c in out):
                    break  # a deeper pipeline only splits what this one already holds
        return out

    def _first_ok(self, tp, pp, slots, profiles, eagers, mode, replicas, ep=False) -> Candidate:
        if len(profiles) > 1:
            if self._weights_overflow(tp, pp, slots):
                profiles = profiles[-1:]
            else:
                floor = self.evaluate(tp, pp, slots, profiles[-1], eagers[-1], mode, expert_parallel=ep,
                                      replicas=replicas, predict=False)
                if not floor.ok and not any(f.id in _STATIC_IDS for f in errors(floor.findings)):
                    return floor  # the most modest profile runs out of memory: no richer one can start
        last: Candidate | None = None
        for media in profiles:
            for eager in eagers:
                cand = self.evaluate(tp, pp, slots, media, eager, mode, expert_parallel=ep, replicas=replicas,
                                     predict=False)
                if cand.ok:
                    return cand
                if last is None or _better_failure(cand, last):
                    last = cand
                if errors(cand.findings) and all(f.id in _STATIC_IDS for f in errors(cand.findings)):
                    return cand
        assert last is not None
        return last

    def _weights_overflow(self, tp: int, pp: int, slots: list[Slot]) -> bool:
        """True when the language-model weights alone exceed some stage's whole budget (no media profile can help)."""
        part = mem.pp_partition(self.spec.num_hidden_layers, pp)
        gpus = tuple({s.gpu.id: s.gpu for s in slots}.values())
        quant = _quant_kernel(self.spec, self.req, gpus)
        dtype = _dtype(self.spec, self.req, gpus, quant)
        for i, (slot, layers) in enumerate(zip(slots, part)):
            w = self.sizer.weights(tp=tp, layers=layers, first=i == 0, last=i == pp - 1, dtype=dtype,
                                   quantization=quant, vision="none")
            if w > slot.total_gib * GIB:
                return True
        return False

    def _try_uneven(self, c: Candidate) -> Candidate:
        """Give each stage layers in proportion to its room (mixed GPUs, embedding/lm_head/sampler on the end stages);
        keep the split if it holds more KV tokens than vLLM's default."""
        n = self.spec.num_hidden_layers
        layer = self.sizer.weights(tp=c.tp, layers=1, first=False, last=False, dtype=c.dtype,
                                   quantization=c.quantization, vision="none")
        room = [max(1.0, s.requested - s.activation - s.non_torch - s.cudagraph - (s.weights - s.layers * layer)
                    - s.encoder_runtime) for s in c.stages]
        part = [max(1, int(n * r / sum(room))) for r in room]
        while sum(part) < n:
            part[part.index(min(part))] += 1
        while sum(part) > n:
            part[part.index(max(part))] -= 1
        if part == c.partition:
            return c
        alt = self.evaluate(c.tp, c.pp, c.slots, c.media, c.eager, c.vision_mode, partition=part,
                            expert_parallel=c.expert_parallel, replicas=c.replicas, predict=False)
        return alt if alt.ok and alt.kv_tokens > c.kv_tokens else c


_STATIC_IDS = {"tp-heads", "tp-kv-heads", "tp-vision-heads", "tp-vision-mlp", "quant-shard-align", "quant-min-cc",
               "quant-dtype", "dtype-bf16", "gpu-cc-too-old", "pp-layers", "tp-linear-heads", "tp-moe-intermediate",
               "ep-dense-model"}


def _better_failure(a: Candidate, b: Candidate) -> bool:
    """Among failing candidates, prefer the one that got furthest (memory errors over static ones)."""
    def depth(c: Candidate) -> tuple:
        static = any(f.id in _STATIC_IDS for f in errors(c.findings))
        return (c.ok, not static, min((s.available_kv for s in c.stages), default=-math.inf))
    return depth(a) > depth(b)


def _bucket(x: float) -> int:
    """Log buckets 5 % wide, so near-ties fall through to the next criterion."""
    return int(math.log(x) / math.log(1.05)) if x > 0 else -10**6


def score(c: Candidate, prefer: str) -> tuple:
    """Higher is better: starts, richest media, meets the latency targets, then the user's objective.

    throughput: predicted output tokens/s at the requested concurrency, replicas inside one node first (PP across
    nodes only where no node holds a replica); latency: predicted time per request (TTFT + output × TPOT);
    context: max_model_len first. Ties (5 % buckets) go to fewer PP stages, then more KV tokens, then the smaller
    replica.
    """
    base = (c.ok, -c.media.rank, not c.slo_misses)
    sp = c.speed
    thr = _bucket(sp.output_tokens_per_s) if sp else -10**6
    fast = _bucket(1e6 / sp.request_ms) if sp else -10**6
    world = c.tp * c.pp
    if prefer == "context":
        return base + (c.max_model_len, thr, c.kv_tokens, -world)
    if prefer == "latency":
        return base + (not c.crosses_nodes, fast, thr, -c.pp, c.kv_tokens, c.max_model_len, -world)
    return base + (not c.crosses_nodes, thr, fast, -c.pp, c.kv_tokens, c.max_model_len, -world)
