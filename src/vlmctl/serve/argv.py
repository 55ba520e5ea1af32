"""Plan → the exact ``vllm serve`` command line and environment.

Flag names are vLLM 0.26.0's, read from its wheel (``vllm/engine/arg_utils.py``):
``--tensor-parallel-size`` (l.1014), ``--pipeline-parallel-size`` (l.976),
``--distributed-executor-backend`` (l.972; ray|mp|uni|external_launcher), ``--quantization`` (l.830),
``--enforce-eager`` (l.838), ``--served-model-name`` (l.859), ``--gpu-memory-utilization`` (l.1163),
``--kv-cache-memory-bytes`` (l.1166; vLLM's own hint prints the ``--kv-cache-memory=`` abbreviation,
which argparse expands), ``--kv-cache-dtype`` (l.1168), ``--limit-mm-per-prompt`` (l.1254),
``--media-io-kwargs`` (l.1260), ``--mm-processor-kwargs`` (l.1263), ``--mm-encoder-tp-mode`` (l.1279;
weights|data), ``--max-num-batched-tokens`` (l.1423); ``--host``/``--port``/``--api-key`` from
``FrontendArgs`` (``vllm/entrypoints/openai/cli_args.py``). The API key goes in ``VLLM_API_KEY``
(``vllm/envs.py``; ``api_server.py`` l.307 reads it when ``--api-key`` is absent) so it never shows in
``ps``. ``VLLM_PP_LAYER_PARTITION`` and ``VLLM_USE_V2_MODEL_RUNNER`` are read in ``vllm/envs.py``.

Media limits are enforced by vLLM itself: image/video counts by ``--limit-mm-per-prompt`` (more is
a 400), image area by ``--mm-processor-kwargs max_pixels`` (the processor resizes down to it) and
video frames by ``--media-io-kwargs '{"video": {"num_frames": N}}'`` (vLLM samples N frames).
"""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field

from vlmctl.plan.schema import Plan

#: Shown instead of the key in printed commands.
REDACTED = "<redacted>"


@dataclass
class VllmLaunch:
    """The command and the environment that start the planned engine (on the head node)."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)

    def shell(self, redact: bool = True) -> str:
        """Copy-pasteable form: ``export`` lines, then the command with one flag per line."""
        lines = []
        for key, value in self.env.items():
            shown = REDACTED if redact and key == "VLLM_API_KEY" else value
            lines.append(f"export {key}={shlex.quote(shown)}")
        parts, i = [shlex.join(self.argv[:3])], 3
        while i < len(self.argv):
            if i + 1 < len(self.argv) and not self.argv[i + 1].startswith("--"):
                parts.append(shlex.join(self.argv[i : i + 2]))
                i += 2
            else:
                parts.append(shlex.quote(self.argv[i]))
                i += 1
        lines.append(" \\\n  ".join(parts))
        return "\n".join(lines)


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def vllm_argv(plan: Plan, host: str = "127.0.0.1", port: int = 8000, launcher: list[str] | None = None) -> list[str]:
    """The ``vllm serve`` argv for ``plan`` (no secrets; the API key travels in the environment)."""
    argv = [*(launcher or ["vllm"]), "serve", plan.model_path or plan.model]
    argv += ["--served-model-name", plan.served_model_name, "--host", host, "--port", str(port)]
    argv += ["--tensor-parallel-size", str(plan.tensor_parallel_size)]
    argv += ["--pipeline-parallel-size", str(plan.pipeline_parallel_size)]
    if plan.distributed_executor_backend != "uni":  # the planner picks ray whenever the plan spans nodes
        argv += ["--distributed-executor-backend", plan.distributed_executor_backend]
    argv += ["--dtype", plan.dtype]
    if plan.quantization:
        argv += ["--quantization", plan.quantization]
    if plan.kv_cache_dtype != "auto":
        argv += ["--kv-cache-dtype", plan.kv_cache_dtype]
    argv += ["--max-model-len", str(plan.max_model_len)]
    argv += ["--gpu-memory-utilization", f"{plan.gpu_memory_utilization:g}"]
    if plan.kv_cache_memory_bytes is not None:
        argv += ["--kv-cache-memory-bytes", str(plan.kv_cache_memory_bytes)]
    argv += ["--max-num-seqs", str(plan.max_num_seqs)]
    argv += ["--max-num-batched-tokens", str(plan.max_num_batched_tokens)]
    argv += ["--limit-mm-per-prompt", _json(plan.limit_mm_per_prompt)]
    mm_kwargs = dict(plan.mm_processor_kwargs)
    mm_kwargs.setdefault("max_pixels", plan.media_limits.max_pixels)
    argv += ["--mm-processor-kwargs", _json(mm_kwargs)]
    if plan.limit_mm_per_prompt.get("video", plan.media_limits.max_videos) > 0:
        argv += ["--media-io-kwargs", _json({"video": {"num_frames": plan.media_limits.max_video_frames}})]
    argv += ["--mm-encoder-tp-mode", plan.mm_encoder_tp_mode]
    if plan.enforce_eager:
        argv.append("--enforce-eager")
    if plan.enable_expert_parallel:
        argv.append("--enable-expert-parallel")
    return argv


def vllm_env(plan: Plan, api_key: str | None = None) -> dict[str, str]:
    """Environment for the ``vllm serve`` process: the plan's env plus what the plan's choices need."""
    env = {"VLLM_WORKER_MULTIPROC_METHOD": "spawn", "VLLM_NO_USAGE_STATS": "1"}
    env.update(plan.env)
    if plan.pp_layer_partition:
        env["VLLM_PP_LAYER_PARTITION"] = ",".join(str(n) for n in plan.pp_layer_partition)
    if plan.model_runner == "v1":
        env["VLLM_USE_V2_MODEL_RUNNER"] = "0"
    if api_key:
        env["VLLM_API_KEY"] = api_key
    return env


def vllm_launch(
    plan: Plan, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None, launcher: list[str] | None = None
) -> VllmLaunch:
    """argv + env to start ``plan`` with vLLM."""
    return VllmLaunch(vllm_argv(plan, host, port, launcher), vllm_env(plan, api_key))
