"""Turn the search's candidates into a PlanResult: winner, findings, alternatives, explanation."""
from __future__ import annotations

from pathlib import Path

from vlmctl.clusterspec import RAY_REWRITTEN_ADDRESSES, ClusterSpec
from vlmctl.findings import Finding, errors
from vlmctl.models.spec import ModelSpec
from vlmctl.plan import memory as mem
from vlmctl.plan.calibration import Calibration, Chosen, choose
from vlmctl.plan.request import PlanRequest
from vlmctl.plan.schema import (Alternative, GpuMemory, MediaLimits, NodePlacement, Plan, PlanResult,
                                SpeedPrediction)
from vlmctl.plan.search import Candidate, Planner, _slots, score


def _placement(cluster: ClusterSpec, c: Candidate) -> list[NodePlacement]:
    out = []
    for node in cluster.nodes:
        here = [(rank, i, s) for rank, rep in enumerate(c.replicas) for i, s in enumerate(rep)
                if s.node.name == node.name]
        if not here:
            continue
        ids = [g for _, _, s in here for g in s.gpu_ids]
        out.append(NodePlacement(name=node.name, address=node.address, gpu_type=node.gpu_type.id, gpu_ids=ids,
                                 stages=sorted({i for _, i, _ in here}), dp_ranks=sorted({r for r, _, _ in here}),
                                 nic=node.nic, model_path=cluster.model_path_for(node)))
    return out


def speed_prediction(planner: Planner, c: Candidate) -> SpeedPrediction | None:
    """The schema form of a candidate's predicted speed."""
    sp = c.speed
    if sp is None:
        return None
    return SpeedPrediction(
        workload=planner.work.label, concurrency=planner.concurrency, prompt_tokens=sp.prompt_tokens,
        media_tokens=sp.media_tokens, output_tokens=sp.output_tokens, ttft_ms=round(sp.ttft_ms, 1),
        tpot_ms=round(sp.tpot_ms, 2), output_tokens_per_s=round(sp.output_tokens_per_s, 1),
        decode_step_ms=round(sp.decode_step_ms, 2), bound=sp.bound, calibration=planner.speed_constants.source)


def to_plan(model: str, spec: ModelSpec, cluster: ClusterSpec, req: PlanRequest, c: Candidate,
            chosen: Chosen | None = None, speed: SpeedPrediction | None = None) -> Plan:
    """The Plan for a sized candidate (vLLM-named settings + predictions)."""
    chosen = chosen or choose(req.vllm_version, req.model_runner, req.calibration)
    nodes = _placement(cluster, c)
    default_part = mem.pp_partition(spec.num_hidden_layers, c.pp)
    env = {"VLLM_WORKER_MULTIPROC_METHOD": "spawn"}
    if c.partition != default_part:
        env["VLLM_PP_LAYER_PARTITION"] = ",".join(map(str, c.partition))
    env.update(chosen.engine.runners[chosen.runner].env)
    world = c.tp * c.pp
    backend = "ray" if c.crosses_nodes else ("mp" if world > 1 else "uni")
    per_gpu = []
    for dp_rank, replica in enumerate(c.replicas):
        for stage, (slot, s) in enumerate(zip(replica, c.stages)):
            for rank, gid in enumerate(slot.gpu_ids):
                per_gpu.append(GpuMemory(
                    node=slot.node.name, gpu_index=gid, gpu_type=slot.gpu.id, stage=stage, dp_rank=dp_rank,
                    tp_rank=rank, layers=s.layers, total_gib=round(slot.total_gib, 2),
                    requested_gib=mem.gib(s.requested), weights_gib=mem.gib(s.weights),
                    activation_gib=mem.gib(s.activation), non_torch_gib=mem.gib(s.non_torch),
                    cudagraph_gib=mem.gib(s.cudagraph), encoder_runtime_gib=mem.gib(s.encoder_runtime),
                    kv_cache_gib=mem.gib(max(0.0, s.available_kv)), kv_blocks=s.blocks))
    media = c.media
    limits = {"image": media.images, "video": media.videos if c.frames or not media.videos else 0}
    kwargs = {"max_pixels": media.max_pixels} if media.max_pixels != spec.max_pixels or media.fixed else {}
    model_path = cluster.model_path
    if model_path is None and nodes and all(n.model_path for n in nodes):
        model_path = nodes[0].model_path
    if model_path is None and Path(model).expanduser().is_dir():
        model_path = str(Path(model).expanduser().resolve())
    return Plan(
        model=model, model_path=model_path, served_model_name=Path(model.rstrip("/")).name or model,
        cluster_name=None if cluster.from_gpus else cluster.name,
        vllm_version=chosen.vllm_version, model_runner=chosen.runner,
        vllm_profile=None if chosen.engine.version == chosen.vllm_version else chosen.engine.version,
        calibration_file=chosen.calibration_file,
        tensor_parallel_size=c.tp, pipeline_parallel_size=c.pp, data_parallel_size=c.dp,
        pp_layer_partition=c.partition if c.partition != default_part else None,
        dtype=c.dtype, quantization=c.quantization, kv_cache_dtype=req.kv_cache_dtype,
        max_model_len=c.max_model_len, gpu_memory_utilization=c.utilization,
        max_num_seqs=c.max_num_seqs, max_num_batched_tokens=c.max_num_batched_tokens,
        limit_mm_per_prompt=limits, mm_processor_kwargs=kwargs, mm_encoder_tp_mode=c.vision_mode,
        enforce_eager=c.eager, enable_expert_parallel=c.expert_parallel, distributed_executor_backend=backend,
        data_parallel_backend="ray" if c.dp > 1 and len(nodes) > 1 else "mp", env=env, nodes=nodes, per_gpu=per_gpu,
        kv_cache_tokens=c.kv_tokens, max_concurrency=round(c.concurrency, 2),
        media_limits=MediaLimits(max_pixels=media.max_pixels, max_images=media.images, max_videos=limits["video"],
                                 max_video_frames=c.frames, encoder_tokens=c.encoder_tokens,
                                 pixel_grid=spec.family.grid(spec)),
        decode_tokens_per_s_bound=round(c.decode_bound, 1), speed=speed,
    )


def _context_findings(spec: ModelSpec, cluster: ClusterSpec, req: PlanRequest, c: Candidate) -> list[Finding]:
    out = []
    nodes = {s.node.name for rep in c.replicas for s in rep}
    if c.crosses_nodes:
        out.append(Finding(id="ray-multinode", severity="info",
                           message=f"the engine spans {len(nodes)} nodes: vLLM runs with --distributed-executor-backend "
                                   "ray; every node needs the same Ray, vLLM and model path.",
                           fix="vlmctl cluster up / join, then vlmctl cluster verify"))
    if len(nodes) > 1:
        if not c.crosses_nodes:
            out.append(Finding(id="ray-multinode", severity="info",
                               message=f"the {c.dp} replicas sit on {len(nodes)} nodes: vLLM starts them with "
                                       "--data-parallel-backend ray; every node needs the same Ray, vLLM and "
                                       "model path.",
                               fix="vlmctl cluster up / join, then vlmctl cluster verify"))
        for node in cluster.nodes:
            if node.name in nodes and node.address in RAY_REWRITTEN_ADDRESSES:
                out.append(Finding(
                    id="ray-loopback-address", severity="warning",
                    message=f"node '{node.name}' has address {node.address}: `ray start` replaces it with the machine's "
                            "network address (ray/_private/services.py resolve_ip_for_localhost), so Ray and "
                            "VLLM_HOST_IP disagree and `vlmctl cluster up` refuses it.",
                    fix="for nodes on one machine use 127.0.0.2, 127.0.0.3, …; else the node's network address"))
    if c.tp * c.pp > 1:
        out.append(Finding(id="spawn", severity="info",
                           message="VLLM_WORKER_MULTIPROC_METHOD=spawn is set: forking after CUDA is initialised fails "
                                   "with 'Cannot re-initialize CUDA in forked subprocess'.", fix=""))
    every = [s for rep in c.replicas for s in rep]
    types = {s.gpu.id: s for s in every}
    if len({(s.total_gib - s.reserved_gib) for s in every}) > 1:
        small = min(every, key=lambda s: s.total_gib - s.reserved_gib)
        part = f" Layers are split {c.partition} to give the smaller GPUs fewer." \
            if c.partition != mem.pp_partition(spec.num_hidden_layers, c.pp) else ""
        out.append(Finding(id="mixed-gpus", severity="info",
                           message=f"mixed GPUs ({', '.join(types)}): vLLM sizes every worker's KV cache to the "
                                   f"smallest, so {small.gpu.name} on {small.node.name} bounds the plan.{part}",
                           fix=""))
    used = sum(len(s.gpu_ids) for s in every)
    total = sum(n.count for n in cluster.nodes)
    if used < total:
        out.append(Finding(id="gpus-unused", severity="info",
                           message=f"the plan uses {used} of the cluster's {total} GPUs.",
                           fix="pass --tensor-parallel-size/--pipeline-parallel-size/--data-parallel-size to use "
                               "more"))
    if c.media.rank > 0 and not c.media.fixed:
        out.append(Finding(id="media-capped", severity="warning",
                           message=f"full-size images and video do not fit beside the weights and KV cache here; the "
                                   f"plan admits {c.media.name} (max_pixels {c.media.max_pixels}, "
                                   f"{c.media.images} image(s), {c.media.videos} video(s) per prompt).",
                           fix="more GPUs or a quantized checkpoint to admit larger media"))
    if c.vision_mode == "data" and c.media.vision_on and not req.mm_encoder_tp_mode and c.tp > 1:
        v = spec.vision
        out.append(Finding(id="mm-encoder-data-mode", severity="info",
                           message=f"TP {c.tp} does not divide the vision encoder ({v.num_heads} heads, MLP width "
                                   f"{v.intermediate_size}): the plan replicates it on every rank "
                                   "(--mm-encoder-tp-mode data), which costs its full weights per GPU.",
                           fix=""))
    if c.eager and req.enforce_eager is None:
        out.append(Finding(id="enforce-eager", severity="info",
                           message="CUDA graphs do not fit: the plan runs eager (slower decode).",
                           fix="more memory per GPU to enable CUDA graphs"))
    return out


def _alt(planner: Planner, c: Candidate, reason: str) -> Alternative:
    return Alternative(summary=c.summary, ok=c.ok, kv_cache_tokens=c.kv_tokens, max_model_len=c.max_model_len,
                       max_concurrency=round(c.concurrency, 2), data_parallel_size=c.dp,
                       speed=speed_prediction(planner, c), reason=reason)


def _numbers(c: Candidate) -> str:
    sp = c.speed
    if sp is None:
        return ""
    return (f"{sp.output_tokens_per_s:,.0f} output tok/s, TTFT {sp.ttft_ms:,.0f} ms, TPOT {sp.tpot_ms:.1f} ms")


def _why_lost(w: Candidate, c: Candidate, prefer: str) -> str:
    if not c.ok:
        e = errors(c.findings)[0]
        return f"does not start: [{e.id}] {e.message}"
    if c.media.rank > w.media.rank:
        return f"admits only {c.media.name}"
    if c.slo_misses and not w.slo_misses:
        return f"misses the latency target ({'; '.join(c.slo_misses)})"
    if prefer != "context" and c.crosses_nodes and not w.crosses_nodes:
        return f"pipelines a replica across nodes although one node holds one ({_numbers(c)})"
    if prefer == "context" and c.max_model_len < w.max_model_len:
        return f"shorter context ({c.max_model_len:,} vs {w.max_model_len:,})"
    if c.speed and w.speed:
        if prefer == "latency" and c.speed.request_ms > w.speed.request_ms * 1.001:
            return (f"slower per request ({c.speed.request_ms:,.0f} vs {w.speed.request_ms:,.0f} ms: "
                    f"{_numbers(c)})")
        if c.speed.output_tokens_per_s < w.speed.output_tokens_per_s * 0.999:
            return (f"predicts {c.speed.output_tokens_per_s:,.0f} vs {w.speed.output_tokens_per_s:,.0f} output tok/s "
                    f"(TTFT {c.speed.ttft_ms:,.0f} ms, TPOT {c.speed.tpot_ms:.1f} ms)")
    if c.kv_tokens < w.kv_tokens:
        return f"fewer KV tokens ({c.kv_tokens:,} vs {w.kv_tokens:,})"
    if c.max_model_len < w.max_model_len:
        return f"shorter context ({c.max_model_len} vs {w.max_model_len})"
    if c.expert_parallel != w.expert_parallel and c.dp == w.dp and c.tp == w.tp and c.pp == w.pp:
        return ("the same memory and bounds; vLLM's default (no expert parallelism) is kept on a tie"
                if c.expert_parallel else "the same memory and bounds; expert parallelism is not vLLM's default")
    return "ranked lower on the same numbers (larger replicas)"


def _placement_errors(spec: ModelSpec, cluster: ClusterSpec, req: PlanRequest) -> list[Finding]:
    tp, pp = req.tensor_parallel_size, req.pipeline_parallel_size
    total = sum(n.count for n in cluster.nodes)
    most = max(n.count for n in cluster.nodes)
    if tp and tp > most:
        return [Finding(id="tp-exceeds-node", severity="error",
                        message=f"tensor_parallel_size ({tp}) is larger than the GPUs of any node ({most}); vlmctl keeps "
                                "each TP group inside one node (TP over the network is too slow).",
                        fix=f"--tensor-parallel-size {most} or less, with --pipeline-parallel-size across nodes")]
    if tp and pp and tp * pp > total:
        return [Finding(id="world-size", severity="error",
                        message=f"tensor_parallel_size ({tp}) × pipeline_parallel_size ({pp}) = {tp * pp} GPUs but the "
                                f"cluster has {total}.",
                        fix="lower --pipeline-parallel-size or --tensor-parallel-size, or add a node")]
    if tp and pp and pp > len(_slots(cluster, tp)):
        return [Finding(id="world-size", severity="error",
                        message=f"pipeline_parallel_size ({pp}) needs {pp} groups of {tp} GPUs on single nodes; the "
                                f"cluster has {len(_slots(cluster, tp))}.",
                        fix="lower --pipeline-parallel-size or --tensor-parallel-size")]
    return []


_SHAPE = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "vocab_size")


def _describe(spec: ModelSpec) -> str:
    quant = f", {spec.quantization.quant_method}" if spec.quantization else ""
    return f"{spec.model_type}, {spec.num_hidden_layers} layers, hidden {spec.hidden_size}{quant}"


def _model_path_findings(model: str, spec: ModelSpec, cluster: ClusterSpec, nodes: list[str]) -> list[Finding]:
    """The checkpoint at each model path this machine can read must be the planned model (its config.json)."""
    from vlmctl.errors import ConfigError
    from vlmctl.models.loader import spec_from_folder

    paths = {cluster.model_path_for(n) for n in cluster.nodes if n.name in nodes} - {None}
    out = []
    for path in sorted(paths):
        folder = Path(path).expanduser()
        if not (folder / "config.json").is_file():
            continue  # not on this machine: `vlmctl cluster verify` checks it on every node
        try:
            there = spec_from_folder(folder)
        except ConfigError as exc:
            out.append(Finding(id="model-path-mismatch", severity="error",
                               message=f"model_path '{path}' is not the planned {model}: {exc.message}",
                               fix=f"point model_path at {model}'s folder, or plan for that folder: vlmctl plan {path} "
                                   "--cluster FILE"))
            continue
        differ = [f for f in _SHAPE if getattr(there, f) != getattr(spec, f)]
        if (there.quantization is None) != (spec.quantization is None):
            differ.append("quantization")
        if differ:
            out.append(Finding(
                id="model-path-mismatch", severity="error",
                message=f"model_path '{path}' holds another model ({_describe(there)}) than the planned {model} "
                        f"({_describe(spec)}; differs in {', '.join(differ)}): vLLM would serve that checkpoint under "
                        "this plan's name with this plan's memory arithmetic.",
                fix=f"point model_path at {model}'s folder, or plan for the folder: vlmctl plan {path} --cluster FILE"))
    return out


_STATIC_TP = ("tp-heads", "tp-kv-heads", "tp-vision-heads", "tp-vision-mlp", "quant-shard-align")


def build_result(model: str, spec: ModelSpec, cluster: ClusterSpec, req: PlanRequest,
                 constants: Calibration | None = None) -> PlanResult:
    """Search, rank and explain."""
    placement = _placement_errors(spec, cluster, req)
    if placement:
        return PlanResult(ok=False, plan=None, findings=placement)
    planner = Planner(spec, cluster, req, constants)
    cands = planner.candidates()
    if not cands:
        return PlanResult(ok=False, plan=None, findings=[Finding(
            id="world-size", severity="error", message="no TP × PP layout fits this cluster.",
            fix="add GPUs or lower --tensor-parallel-size")])
    ranked = sorted(cands, key=lambda c: score(c, req.prefer), reverse=True)
    win = ranked[0]
    findings = list(win.findings)
    static_fail = [f for f in errors(findings) if f.id in _STATIC_TP]
    if static_fail:
        ok_tps = planner.passing_tps()
        tail = f"; TP sizes that pass every rule here: {', '.join(map(str, ok_tps))}" if ok_tps else ""
        findings = [f.model_copy(update={"fix": f.fix + tail}) if f in static_fail else f for f in findings]
        if any(f.id in ("tp-vision-mlp", "tp-vision-heads") for f in static_fail) and req.mm_encoder_tp_mode is None:
            data = planner.evaluate(win.tp, win.pp, win.slots, win.media, win.eager, "data", replicas=win.replicas)
            left = sorted({f.id for f in errors(data.findings) if f.id in _STATIC_TP})
            verdict = (f"but TP {win.tp} still fails [{', '.join(left)}]" if left
                       else f"and TP {win.tp} passes every rule")
            findings.append(Finding(id="tp-vision-data-mode", severity="info",
                                    message=f"with --mm-encoder-tp-mode data the vision encoder is replicated (no vision "
                                            f"divisibility rules) {verdict}.",
                                    fix="" if left else
                                    f"vlmctl plan {model} --tensor-parallel-size {win.tp} --mm-encoder-tp-mode data"))
    plan = to_plan(model, spec, cluster, req, win, planner.chosen, speed_prediction(planner, win)) if win.stages else None
    ok = win.ok
    if plan is not None:
        findings += _context_findings(spec, cluster, req, win)
        mismatch = _model_path_findings(model, spec, cluster, [n.name for n in plan.nodes])
        findings = mismatch + findings
        ok = ok and not mismatch
        if win.ok and win.slo_misses:
            findings.append(Finding(
                id="latency-target-missed", severity="warning",
                message=f"no configuration meets the latency targets at --concurrency {planner.concurrency}: the "
                        f"best predicts {'; '.join(win.slo_misses)}.",
                fix="lower --concurrency, add GPUs, or relax --max-ttft-ms/--max-tpot-ms"))
    findings += planner.chosen.findings
    alts, seen = [], {(win.dp, win.tp, win.pp, win.expert_parallel)}
    for c in ranked[1:]:
        if (c.dp, c.tp, c.pp, c.expert_parallel) in seen:
            continue
        seen.add((c.dp, c.tp, c.pp, c.expert_parallel))
        alts.append(_alt(planner, c, _why_lost(win, c, req.prefer)))
        if len(alts) == 5:
            break
    explanation = ""
    if win.ok:
        explanation = (f"{win.summary}: starts with {win.kv_tokens:,} KV tokens per replica "
                       f"({win.concurrency:.2f} requests of {win.max_model_len} tokens)")
        if win.speed:
            explanation += (f"; predicted for {planner.work.label} at concurrency {planner.concurrency}: "
                            f"{_numbers(win)}")
        explanation += f"; ranked for {req.prefer}."
        runner = next((c for c in ranked[1:] if c.ok and (c.dp, c.tp, c.pp, c.expert_parallel)
                       != (win.dp, win.tp, win.pp, win.expert_parallel)), None)
        if runner is not None:
            explanation += f" Runner-up {runner.layout}: {_why_lost(win, runner, req.prefer)}."
        if win.reserve_note:
            explanation += f" {win.reserve_note}."
    return PlanResult(ok=ok, plan=plan, findings=findings, alternatives=alts, explanation=explanation)
