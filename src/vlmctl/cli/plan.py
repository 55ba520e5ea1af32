"""`vlmctl plan`: will this deployment start, with what context and concurrency — before launch."""
from __future__ import annotations

import json
import shlex
import sys

import click

from vlmctl.cli._output import check_writable, console, emit_json, next_steps
from vlmctl.engines.vllm import NEWEST as _NEWEST
from vlmctl.engines.vllm import PROFILES
from vlmctl.errors import ConfigError, PlanInfeasibleError

_SUPPORTED = ", ".join(PROFILES)

EXAMPLES = """
\b
Examples:
  vlmctl plan Qwen/Qwen2.5-VL-7B-Instruct --gpus h100-80gb:1
  vlmctl plan Qwen/Qwen2.5-VL-72B-Instruct --gpus rtx-2080-ti:8,rtx-2080-ti:8 --dtype float16
  vlmctl plan Qwen/Qwen2.5-VL-3B-Instruct-AWQ --cluster cluster.yaml --json > plan.json
  vlmctl plan ./Qwen2.5-VL-7B-Instruct --gpus a100-80gb:2 --max-model-len 32768 --concurrency 16
  vlmctl plan Qwen/Qwen2.5-VL-7B-Instruct --gpus l40s:2 --limit-mm-per-prompt '{"image":4,"video":0}'
  vlmctl plan Qwen/Qwen2.5-VL-7B-Instruct --gpus a10g:4 --emit commands
  vlmctl plan Qwen/Qwen2.5-VL-3B-Instruct-AWQ --cluster cluster.yaml --emit vllm-config
  vlmctl plan Qwen/Qwen2.5-VL-7B-Instruct --gpus h200:1 --vllm-version 0.26.0
  vlmctl plan Qwen/Qwen2.5-VL-7B-Instruct --gpus h200:1 --calibration ~/vllm-0.33-h200.json
  vlmctl plan Qwen/Qwen2.5-VL-7B-Instruct --gpus h100-80gb:4 --concurrency 64 --workload image@1280x720 \\
      --prompt-tokens 100 --output-tokens 256 --max-tpot-ms 20

\b
Exit codes: 0 a configuration starts; 3 none starts (the findings say why); 2 bad input.
"""


def _json_option(value: str | None, flag: str) -> dict | None:
    if value is None:
        return None
    try:
        data = json.loads(value)
    except ValueError as exc:
        raise ConfigError(f"{flag} '{value}' is not valid JSON ({exc.msg}).",
                          fix=f"""quote it for the shell, e.g. {flag} '{{"image": 4, "video": 0}}'""") from None
    if not isinstance(data, dict) or not all(isinstance(v, int) and not isinstance(v, bool) for v in data.values()):
        raise ConfigError(f"{flag} '{value}' must be a JSON object of integers.",
                          fix=f"""e.g. {flag} '{{"image": 4, "video": 0}}'""")
    return data


@click.command("plan", epilog=EXAMPLES)
@click.argument("model")
@click.option("--cluster", "cluster_file", type=click.Path(dir_okay=False), help="Cluster file (YAML).")
@click.option("--gpus", help="One entry per node, TYPE[:COUNT], e.g. rtx-2080-ti:8,rtx-2080-ti:8.")
@click.option("--tensor-parallel-size", "-tp", type=int, help="Fix TP (else searched).")
@click.option("--pipeline-parallel-size", "-pp", type=int, help="Fix PP (else searched).")
@click.option("--data-parallel-size", "-dp", type=int, help="Fix the number of replicas (else as many as fit).")
@click.option("--dtype", type=click.Choice(["auto", "float16", "half", "bfloat16", "float32"]), default="auto",
              show_default=True)
@click.option("--quantization", "-q", help="Quantization kernel (default: from the checkpoint, awq → awq_marlin).")
@click.option("--kv-cache-dtype", type=click.Choice(["auto", "fp8", "fp8_e4m3", "fp8_e5m2"]), default="auto",
              show_default=True)
@click.option("--max-model-len", type=int, help="Fix the context length (else auto-fit to the KV cache).")
@click.option("--gpu-memory-utilization", type=float, help=f"Fix u in (0, 1] (else vLLM's default, {PROFILES[_NEWEST].default_utilization}, "
                   "lowered if needed).")
@click.option("--max-num-seqs", type=int, help="Fix max sequences per step (else vLLM's default for the GPU).")
@click.option("--max-num-batched-tokens", type=int, help="Fix tokens per step (else vLLM's default for the GPU).")
@click.option("--limit-mm-per-prompt", help='JSON, e.g. \'{"image":4,"video":0}\' (else searched).')
@click.option("--mm-processor-kwargs", help='JSON, e.g. \'{"max_pixels":1003520}\' (else searched).')
@click.option("--mm-encoder-tp-mode", type=click.Choice(["weights", "data"]), help="Vision encoder TP mode.")
@click.option("--enforce-eager/--cuda-graphs", "enforce_eager", default=None, help="Fix eager vs CUDA graphs.")
@click.option("--model-runner", type=click.Choice(["v2", "v1"]),
              help="vLLM model runner (default: the one that release picks for the model; v1 = "
                   "VLLM_USE_V2_MODEL_RUNNER=0).")
@click.option("--vllm-version", metavar="X.Y[.Z]",
              help=f"vLLM release the nodes run (default: the one installed here, else the newest supported, "
                   f"{_NEWEST}; supported: {_SUPPORTED}). Another release plans with the nearest profile and a "
                   "warning.")
@click.option("--calibration", "calibration_file", type=click.Path(dir_okay=False),
              help="Calibration file from `vlmctl calibrate` (default: the per-user one for that release, "
                   "$VLMCTL_CALIBRATION_DIR/vllm-X.Y.json, when it exists).")
@click.option("--enable-expert-parallel/--no-expert-parallel", "enable_expert_parallel", default=None,
              help="MoE models: deal whole experts over the TP ranks (else searched).")
@click.option("--concurrency", type=int, help="Requests in flight to predict speed for (default 1).")
@click.option("--workload", default="text", show_default=True, metavar="KIND[@WxH[xF][:repeat]]",
              help="Request kind for the speed prediction, as `vlmctl bench --mix`: text, image@WxH, video@WxHxF; "
                   "add :repeat when the same media recur (prefix-cache hits), e.g. image@1280x720:repeat.")
@click.option("--prompt-tokens", type=int, default=64, show_default=True, help="Text tokens per prompt.")
@click.option("--output-tokens", type=int, default=64, show_default=True, help="Output tokens per request.")
@click.option("--prefer", type=click.Choice(["throughput", "latency", "context"]), default="throughput",
              show_default=True, help="Rank by output tokens/s, by time per request, or by max_model_len.")
@click.option("--max-ttft-ms", type=float, help="Latency target: time to first token (ms).")
@click.option("--max-tpot-ms", type=float, help="Latency target: time per output token (ms).")
@click.option("--json", "as_json", is_flag=True, help="Print the PlanResult as JSON (round-trips).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Also write the PlanResult JSON here.")
@click.option("--emit", type=click.Choice(["env", "commands", "vllm-config"]),
              help="Print each node's environment, each node's launch lines, or vLLM's --config YAML + env file.")
def cli(model, cluster_file, gpus, tensor_parallel_size, pipeline_parallel_size, data_parallel_size, dtype,
        quantization, kv_cache_dtype, max_model_len, gpu_memory_utilization, max_num_seqs, max_num_batched_tokens,
        limit_mm_per_prompt, mm_processor_kwargs, mm_encoder_tp_mode, enforce_eager, model_runner,
        enable_expert_parallel, vllm_version, calibration_file, concurrency, workload, prompt_tokens, output_tokens,
        prefer, max_ttft_ms, max_tpot_ms, as_json, output, emit) -> None:
    """Plan a deployment: will it start, with what context and concurrency (no GPU needed).

    MODEL is a catalog id (`vlmctl models`) or a local model folder. Options keep vLLM's names;
    a given option is fixed, an omitted one is searched.
    """
    from vlmctl.engines.vllm import installed_version
    from vlmctl.plan import make_plan

    vllm_version = vllm_version or installed_version()  # a GPU node plans for the vLLM it runs
    if gpus is None and cluster_file is None:
        raise ConfigError("no hardware given.", fix="add --gpus TYPE[:COUNT],… (e.g. --gpus a100-80gb:2) or --cluster FILE")
    if gpus is not None and cluster_file is not None:
        raise ConfigError(f"--gpus '{gpus}' and --cluster '{cluster_file}' both given.", fix="give only one of them")
    settings = {
        "tensor_parallel_size": tensor_parallel_size, "pipeline_parallel_size": pipeline_parallel_size,
        "data_parallel_size": data_parallel_size,
        "dtype": dtype, "quantization": quantization, "kv_cache_dtype": kv_cache_dtype,
        "max_model_len": max_model_len, "gpu_memory_utilization": gpu_memory_utilization,
        "max_num_seqs": max_num_seqs, "max_num_batched_tokens": max_num_batched_tokens,
        "limit_mm_per_prompt": _json_option(limit_mm_per_prompt, "--limit-mm-per-prompt"),
        "mm_processor_kwargs": _json_option(mm_processor_kwargs, "--mm-processor-kwargs"),
        "mm_encoder_tp_mode": mm_encoder_tp_mode, "enforce_eager": enforce_eager, "model_runner": model_runner,
        "enable_expert_parallel": enable_expert_parallel, "vllm_version": vllm_version, "calibration": calibration_file,
        "concurrency": concurrency, "workload": workload, "prompt_tokens": prompt_tokens,
        "output_tokens": output_tokens, "prefer": prefer, "max_ttft_ms": max_ttft_ms, "max_tpot_ms": max_tpot_ms,
    }
    if output:
        check_writable(output, "--output")
    result = make_plan(model, cluster=cluster_file, gpus=gpus, **{k: v for k, v in settings.items() if v is not None})
    if output:
        try:
            with open(output, "w", encoding="utf-8") as fh:
                fh.write(result.model_dump_json(indent=2) + "\n")
        except OSError as exc:
            raise ConfigError(f"--output {output} cannot be written ({exc.strerror}).",
                              fix="--output ./plan.json") from None
    if as_json:
        emit_json(result)
    elif emit:
        _emit(result, emit, cluster_file)
    else:
        from vlmctl.cli.plan_render import render

        con = console()
        render(con, result)
        if result.ok:
            target = output or "plan.json"
            steps = [] if output else [f"vlmctl plan {shlex.quote(model)} … -o plan.json"]
            next_steps(con, *steps, f"vlmctl serve --plan {target} --dry-run",
                       *(["vlmctl cluster up --cluster " + cluster_file] if cluster_file else []))
    if not result.ok:
        if as_json:
            sys.exit(PlanInfeasibleError.exit_code)
        first = next(f for f in result.findings if f.severity == "error")
        raise PlanInfeasibleError(f"no configuration starts: [{first.id}] {first.message}", fix=first.fix)


def _emit(result, what: str, cluster_file: str | None) -> None:
    from vlmctl.clusterspec import load_cluster
    from vlmctl.launch import build_launch
    from vlmctl.launch.shell import commands_text, env_text, vllm_config_text

    if result.plan is None:
        return
    spec = build_launch(result.plan, load_cluster(cluster_file) if cluster_file else None)
    if what == "env":
        click.echo(env_text(spec), nl=False)
    elif what == "commands":
        click.echo(commands_text(spec), nl=False)
    else:
        click.echo(vllm_config_text(spec, result.plan), nl=False)
