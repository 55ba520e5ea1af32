"""Rich rendering of a PlanResult for people."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vlmctl.plan.schema import PlanResult

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def render(con: Console, result: PlanResult) -> None:
    """Verdict, settings, per-GPU memory, findings, alternatives."""
    plan = result.plan
    verdict = "[bold green]STARTS[/]" if result.ok else "[bold red]WILL NOT START[/]"
    con.print(f"{verdict}  {escape(result.explanation)}" if result.explanation else verdict)
    if plan is not None:
        settings = Table(title="Settings (vLLM names)", show_header=False, box=None, pad_edge=False)
        settings.add_column(style="bold")
        settings.add_column()
        rows = [
            ("model", plan.model), ("tensor × pipeline", f"{plan.tensor_parallel_size} × {plan.pipeline_parallel_size}"
                                    + (f" (layers {plan.pp_layer_partition})" if plan.pp_layer_partition else "")),
            ("dtype / quantization", f"{plan.dtype} / {plan.quantization or '-'}"),
            ("max_model_len", f"{plan.max_model_len:,}"),
            ("gpu_memory_utilization", str(plan.gpu_memory_utilization)),
            ("max_num_seqs / batched tokens", f"{plan.max_num_seqs} / {plan.max_num_batched_tokens}"),
            ("limit_mm_per_prompt", str(plan.limit_mm_per_prompt)),
            ("max_pixels / video frames", f"{plan.media_limits.max_pixels:,} / {plan.media_limits.max_video_frames}"),
            ("mm_encoder_tp_mode", plan.mm_encoder_tp_mode),
            ("CUDA graphs", "off (enforce_eager)" if plan.enforce_eager else "on"),
            ("executor", plan.distributed_executor_backend),
            ("model runner", f"{plan.model_runner} (vLLM {plan.vllm_version})"),
            ("KV cache", f"{plan.kv_cache_tokens:,} tokens, {plan.max_concurrency}× requests of {plan.max_model_len:,}"),
            ("batch-1 decode bound", f"{plan.decode_tokens_per_s_bound:.0f} tok/s"),
        ]
        for k, v in rows:
            settings.add_row(k, v)
        con.print(settings)
        gpus = Table(title="Per GPU (GiB)")
        for col in ("node", "gpu", "stage", "layers", "total", "requested", "weights", "activation", "non-torch",
                    "graphs", "enc. reserve", "KV", "blocks"):
            gpus.add_column(col, justify="right" if col not in ("node", "gpu") else "left")
        seen = set()
        for g in plan.per_gpu:
            key = (g.node, g.stage, g.gpu_type)
            if key in seen and g.tp_rank:
                continue
            seen.add(key)
            count = sum(1 for x in plan.per_gpu if (x.node, x.stage) == (g.node, g.stage))
            gpus.add_row(g.node, f"{g.gpu_type}" + (f" ×{count}" if count > 1 else ""), str(g.stage), str(g.layers),
                         f"{g.total_gib:.2f}", f"{g.requested_gib:.2f}", f"{g.weights_gib:.2f}",
                         f"{g.activation_gib:.2f}", f"{g.non_torch_gib:.2f}", f"{g.cudagraph_gib:.2f}",
                         f"{g.encoder_runtime_gib:.2f}", f"{g.kv_cache_gib:.2f}", f"{g.kv_blocks:,}")
        con.print(gpus)
    if result.findings:
        con.print("[bold]Findings[/]")
        for f in result.findings:
            con.print(f"  [{_STYLE[f.severity]}]{f.severity:7}[/] " + escape(f"[{f.id}] {f.message}"), highlight=False)
            if f.fix:
                con.print(f"          fix: {f.fix}", highlight=False, markup=False)
    if result.alternatives:
        alt = Table(title="Alternatives (ranked)")
        for col in ("configuration", "starts", "KV tokens", "max len", "why not chosen"):
            alt.add_column(col)
        for a in result.alternatives:
            alt.add_row(a.summary, "yes" if a.ok else "no", f"{a.kv_cache_tokens:,}", f"{a.max_model_len:,}", a.reason)
        con.print(alt)
