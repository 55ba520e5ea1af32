"""Rich rendering of a PlanResult for people."""
from __future__ import annotations

from rich import box
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
            ("model", plan.model),
            ("data × tensor × pipeline", f"{plan.data_parallel_size} × {plan.tensor_parallel_size} × "
                                         f"{plan.pipeline_parallel_size}"
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
        if plan.speed is not None:
            sp = plan.speed
            rows.append(("predicted speed", f"{sp.output_tokens_per_s:,.0f} output tok/s, TTFT {sp.ttft_ms:,.0f} ms, "
                                            f"TPOT {sp.tpot_ms:.1f} ms ({sp.workload}, {sp.prompt_tokens:,} prompt / "
                                            f"{sp.output_tokens:,} output tokens, concurrency {sp.concurrency}; "
                                            f"decode bound by {sp.bound})"))
        for k, v in rows:
            settings.add_row(k, v)
        con.print(settings)
        groups: dict[tuple[str, int], list] = {}
        for g in plan.per_gpu:
            groups.setdefault((g.node, g.stage), []).append(g)
        rows = [
            ("decoder layers", lambda g: str(g.layers)),
            ("total (CUDA)", lambda g: f"{g.total_gib:.2f}"),
            ("budget = total × u", lambda g: f"{g.requested_gib:.2f}"),
            ("weights", lambda g: f"{g.weights_gib:.2f}"),
            ("profile activation", lambda g: f"{g.activation_gib:.2f}"),
            ("non-torch", lambda g: f"{g.non_torch_gib:.2f}"),
            ("CUDA graphs", lambda g: f"{g.cudagraph_gib:.2f}"),
            ("KV cache", lambda g: f"{g.kv_cache_gib:.2f}"),
            ("KV blocks", lambda g: f"{g.kv_blocks:,}"),
            ("encoder reserve (run time)", lambda g: f"{g.encoder_runtime_gib:.2f}"),
        ]
        columns: list[tuple[str, list[int], int, tuple[str, ...]]] = []  # node, stages, gpus, cells
        for (node, stage), members in groups.items():
            cells = tuple(cell(members[0]) for _, cell in rows)
            last = columns[-1] if columns else None
            if last and last[0] == node and last[3] == cells and last[2] == len(members):
                last[1].append(stage)
            else:
                columns.append((node, [stage], len(members), cells))
        gpus = Table(title="Memory per GPU (GiB), one column per pipeline stage", box=box.SIMPLE_HEAD)
        gpus.add_column("", no_wrap=True)
        for node, stages, count, _ in columns:
            label = f"stage {stages[0]}" if len(stages) == 1 else f"stages {stages[0]}–{stages[-1]}"
            gpu = next(g.gpu_type for g in plan.per_gpu if g.node == node and g.stage == stages[0])
            gpus.add_column(f"{node}\n{label}\n{gpu} ×{count}", justify="right")
        for i, (label, _) in enumerate(rows):
            gpus.add_row(label, *(col[3][i] for col in columns))
        con.print(gpus)
    if result.findings:
        con.print("[bold]Findings[/]")
        for f in result.findings:
            con.print(f"  [{_STYLE[f.severity]}]{f.severity:7}[/] " + escape(f"[{f.id}] {f.message}"), highlight=False)
            if f.fix:
                con.print(f"          fix: {f.fix}", highlight=False, markup=False)
    if result.alternatives:
        alt = Table(title="Alternatives (ranked)")
        for col in ("configuration", "starts", "KV tokens", "max len", "out tok/s", "TTFT / TPOT ms", "why not chosen"):
            alt.add_column(col)
        for a in result.alternatives:
            sp = a.speed
            alt.add_row(a.summary, "yes" if a.ok else "no", f"{a.kv_cache_tokens:,}", f"{a.max_model_len:,}",
                        f"{sp.output_tokens_per_s:,.0f}" if sp else "-",
                        f"{sp.ttft_ms:,.0f} / {sp.tpot_ms:.1f}" if sp else "-", a.reason)
        con.print(alt)
