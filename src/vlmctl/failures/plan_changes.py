"""Plan changes that follow from a matched failure.

Each function takes (values pulled from the log, the launched plan or None, the LogContext) and returns
{plan field: new value}. A number (TP, PP, max_model_len, utilization, max_num_seqs) comes, in this order, from
vLLM's own message (e.g. the estimated maximum model length it printed), from the planner run for the model and GPUs
the log names (``planned``: the advice then passes every planner rule, e.g. vision heads % TP), or from arithmetic on
the launched plan. Without any of these no number is given: the fix text says what to lower.
"""
from __future__ import annotations

from typing import Any

Values = dict[str, Any]


def _round16(n: int) -> int:
    return max(16, n // 16 * 16)


def planned(ctx: Any, values: Values, gpus: int | None = None, **settings: Any) -> Any:
    """The planner's Plan for the model and GPUs the log names (None when it cannot be planned or does not fit).

    Records in ``values['advice']`` what the numbers were computed for.
    """
    if ctx is None or not (ctx.model and ctx.gpu):
        return None
    from vlmctl.errors import VlmctlError
    from vlmctl.plan import make_plan

    count = gpus or ctx.gpu_count or 1
    if ctx.vllm_version:
        settings.setdefault("vllm_version", ctx.vllm_version)
    try:
        result = make_plan(ctx.model, gpus=f"{ctx.gpu}:{count}", **settings)
    except (VlmctlError, ValueError):
        return None
    if not result.ok or result.plan is None:
        return None
    values["advice"] = f"computed by `vlmctl plan {ctx.model} --gpus {ctx.gpu}:{count}`"
    return result.plan


def _layout(plan: Any) -> dict[str, Any]:
    return {"tensor_parallel_size": plan.tensor_parallel_size, "pipeline_parallel_size": plan.pipeline_parallel_size}


def _memory(plan: Any) -> dict[str, Any]:
    return {"max_model_len": plan.max_model_len, "gpu_memory_utilization": plan.gpu_memory_utilization,
            "max_num_seqs": plan.max_num_seqs}


def max_len_from_kv(values: Values, plan: Any, ctx: Any) -> dict[str, Any]:
    """vLLM printed the KV capacity (or the GiB figures): the longest context that fits, multiple of 16."""
    est = values.get("estimated_max_model_len") or values.get("kv_cache_tokens")
    if not est and values.get("needed_gib") and values.get("available_gib") and values.get("max_seq_len"):
        est = int(values["max_seq_len"] * values["available_gib"] / values["needed_gib"])
        values["estimate_is_linear"] = True
    if est and est > 0:
        return {"max_model_len": _round16(int(est))}
    # the message without its numbers (a title, a cut excerpt): what the planner admits on the log's GPUs
    p = planned(ctx, values, **_fixed_layout(ctx))
    return {"max_model_len": p.max_model_len, "gpu_memory_utilization": p.gpu_memory_utilization} if p else {}


def utilization_from_free(values: Values, plan: Any, ctx: Any) -> dict[str, Any]:
    """gpu_memory_utilization just below free/total as vLLM printed them."""
    free, total = values.get("free_gib"), values.get("total_gib")
    if not (free and total):
        return {}
    return {"gpu_memory_utilization": round(int(free / total * 100 - 1) / 100, 2)}


def kv_room(values: Values, plan: Any, ctx: Any) -> dict[str, Any]:
    """No room for KV blocks: the planner's layout and memory settings, else half the launched max_model_len."""
    p = planned(ctx, values, **_fixed_layout(ctx))
    if p is not None:
        return _memory(p)
    p = planned(ctx, values)
    if p is not None:
        return {**_layout(p), **_memory(p)}
    if plan is not None and getattr(plan, "max_model_len", None):
        return {"max_model_len": _round16(plan.max_model_len // 2)}
    return {}


def _fixed_layout(ctx: Any) -> dict[str, Any]:
    if ctx is None or not ctx.tensor_parallel_size:
        return {}
    return {"tensor_parallel_size": ctx.tensor_parallel_size,
            "pipeline_parallel_size": ctx.pipeline_parallel_size or 1}


def _pow2_divisor(n: int, limit: int) -> int:
    d = 1
    while d * 2 <= limit and n % (d * 2) == 0:
        d *= 2
    return d


def tp_from_heads(values: Values, plan: Any, ctx: Any) -> dict[str, Any]:
    """TP that divides the heads; the planner's layout for the same GPUs when the model is known.

    Without the planner: the largest power of two <= TP dividing the heads (KV heads, vocabulary and a vision
    tower's 16 heads are powers-of-two friendly; an odd divisor such as 7 or 6 is not), the rest as PP.
    """
    heads, tp = values.get("heads"), values.get("tp")
    p = planned(ctx, values, gpus=(ctx.gpu_count if ctx and ctx.gpu_count else tp))
    if p is not None:
        return _layout(p)
    if not (heads and tp):
        return {}
    new = _pow2_divisor(heads, tp)
    change: dict[str, Any] = {"tensor_parallel_size": new}
    if tp % new == 0 and tp // new > 1:
        change["pipeline_parallel_size"] = tp // new
    return change


def tp_halve(values: Values, plan: Any, ctx: Any) -> dict[str, Any]:
    """A sharded shape does not divide: the planner's layout, else TP halved and PP doubled."""
    p = planned(ctx, values)
    if p is not None:
        return _layout(p)
    tp = getattr(plan, "tensor_parallel_size", None) if plan is not None else None
    tp = tp or (ctx.tensor_parallel_size if ctx else None) or values.get("tp")
    pp = (getattr(plan, "pipeline_parallel_size", None) if plan is not None else None) or \
        (ctx.pipeline_parallel_size if ctx else None) or 1
    if tp and tp > 1:
        return {"tensor_parallel_size": tp // 2, "pipeline_parallel_size": pp * 2}
    return {}


def dtype_half(values: Values, plan: Any, ctx: Any) -> dict[str, Any]:
    return {"dtype": "float16"}


def dtype_supported(values: Values, plan: Any, ctx: Any) -> dict[str, Any]:
    """The dtype a quantization method's message lists as supported (half -> float16)."""
    supported = str(values.get("supported") or "float16")
    return {"dtype": {"half": "float16", "float": "float32", "bf16": "bfloat16"}.get(supported, supported)}


def spawn(values: Values, plan: Any, ctx: Any) -> dict[str, Any]:
    return {"env.VLLM_WORKER_MULTIPROC_METHOD": "spawn"}


def disable_custom_all_reduce(values: Values, plan: Any, ctx: Any) -> dict[str, Any]:
    return {"disable_custom_all_reduce": True}


def p2p_off(values: Values, plan: Any, ctx: Any) -> dict[str, Any]:
    return {"env.NCCL_P2P_DISABLE": "1"}


def eager(values: Values, plan: Any, ctx: Any) -> dict[str, Any]:
    change: dict[str, Any] = {"enforce_eager": True}
    p = planned(ctx, values, enforce_eager=True, **_fixed_layout(ctx))
    if p is not None:
        change["gpu_memory_utilization"] = p.gpu_memory_utilization
    return change


def mm_profile(values: Values, plan: Any, ctx: Any) -> dict[str, Any]:
    need = values.get("mm_worst_case_tokens")
    if plan is not None and need and getattr(plan, "max_num_batched_tokens", 0) < need:
        return {"max_num_batched_tokens": need}
    return {}


def mm_limit(values: Values, plan: Any, ctx: Any) -> dict[str, Any]:
    """Raise the per-request media limit to what the request carried, if the planner says it still fits."""
    modality = values.get("modality") or "image"
    modality = "video" if modality.startswith("video") else "image"
    want = values.get("passed") or ((values.get("limit") or 0) + 1)
    key = f"limit_mm_per_prompt.{modality}"
    p = planned(ctx, values, limit_mm_per_prompt={modality: want}, **_fixed_layout(ctx))
    if p is not None:
        return {key: p.limit_mm_per_prompt.get(modality, want), "max_model_len": p.max_model_len}
    return {key: want} if want else {}


def prompt_fit(values: Values, plan: Any, ctx: Any) -> dict[str, Any]:
    """A request longer than max_model_len: raise it to the request's length if the planner says that fits."""
    need = values.get("prompt_tokens")
    if not need:
        return {}
    want = -(-int(need) // 16) * 16
    p = planned(ctx, values, max_model_len=want, **_fixed_layout(ctx))
    return {"max_model_len": p.max_model_len} if p is not None and p.max_model_len >= want else {}


def batched_tokens_to_max_len(values: Values, plan: Any, ctx: Any) -> dict[str, Any]:
    """Without chunked prefill one step must hold a whole sequence: max_num_batched_tokens up to max_model_len."""
    need = values.get("max_model_len") or (ctx.max_model_len if ctx is not None else None)
    return {"max_num_batched_tokens": int(need)} if need else {}


def max_len_derived(values: Values, plan: Any, ctx: Any) -> dict[str, Any]:
    derived = values.get("derived")
    return {"max_model_len": derived} if derived else {}


def encoder_oom(values: Values, plan: Any, ctx: Any) -> dict[str, Any]:
    """Leave the vision encoder's request-time peak outside the KV budget."""
    change: dict[str, Any] = {"env.VLLM_USE_V2_MODEL_RUNNER": "0"}
    if plan is not None:
        gpus = list(getattr(plan, "per_gpu", []) or [])
        peak = max((g.encoder_runtime_gib for g in gpus), default=0.0)
        total = min((g.total_gib for g in gpus), default=0.0)
        if peak > 0 and total > 0:
            target = int((plan.gpu_memory_utilization - peak / total) * 100) / 100
        else:
            target = plan.gpu_memory_utilization - 0.05
        change["gpu_memory_utilization"] = round(max(0.5, target), 2)
        kw = dict(getattr(plan, "mm_processor_kwargs", {}) or {})
        if kw.get("max_pixels"):
            change["mm_processor_kwargs.max_pixels"] = kw["max_pixels"] // 2
        return change
    p = planned(ctx, values, **_fixed_layout(ctx))
    if p is not None:
        change["gpu_memory_utilization"] = p.gpu_memory_utilization
    return change


def runtime_oom(values: Values, plan: Any, ctx: Any) -> dict[str, Any]:
    """Request-time OOM: the planner's utilization and concurrency, else 0.05 less and half the sequences."""
    p = planned(ctx, values, **_fixed_layout(ctx))
    if p is not None:
        return {"gpu_memory_utilization": p.gpu_memory_utilization, "max_num_seqs": p.max_num_seqs}
    if plan is None:
        util = ctx.gpu_memory_utilization if ctx is not None else None
        return {"gpu_memory_utilization": round(max(0.5, util - 0.05), 2)} if util else {}
    return {"gpu_memory_utilization": round(max(0.5, plan.gpu_memory_utilization - 0.05), 2),
            "max_num_seqs": max(1, plan.max_num_seqs // 2)}


def startup_oom(values: Values, plan: Any, ctx: Any) -> dict[str, Any]:
    """Start-up OOM: what the planner admits on these GPUs, else half the context and no video."""
    p = planned(ctx, values, **_fixed_layout(ctx)) or planned(ctx, values)
    if p is not None:
        change = {**(_layout(p) if not _fixed_layout(ctx) else {}), **_memory(p)}
        change["limit_mm_per_prompt.image"] = p.limit_mm_per_prompt.get("image", 1)
        change["limit_mm_per_prompt.video"] = p.limit_mm_per_prompt.get("video", 0)
        return change
    if plan is None:
        return {}
    change = {"max_model_len": _round16(plan.max_model_len // 2)}
    if plan.limit_mm_per_prompt.get("video", 0) > 0:
        change["limit_mm_per_prompt.video"] = 0
    return change


def dummy_seqs_oom(values: Values, plan: Any, ctx: Any) -> dict[str, Any]:
    """V0's profile runs max_num_seqs dummy multimodal sequences: the planner's max_num_seqs, else a quarter."""
    p = planned(ctx, values, **_fixed_layout(ctx))
    if p is not None:
        return {"max_num_seqs": p.max_num_seqs, "max_model_len": p.max_model_len}
    if plan is not None:
        return {"max_num_seqs": max(1, plan.max_num_seqs // 4)}
    return {}
