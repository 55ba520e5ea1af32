"""vLLM's flag names for the settings a Plan carries.

``flag_names(version)`` takes the names the version profile (``vlmctl.engines.vllm``) knows and adds the
few it does not carry (data and expert parallelism, ``--config``); every flag a release's ``vllm serve``
accepts is in ``vlmctl.engines.vllm.serve_flags``.
"""
from __future__ import annotations

#: Plan field (or launch setting) -> the ``vllm serve`` flag that carries it.
FLAGS: dict[str, str] = {
    "served_model_name": "--served-model-name",
    "host": "--host",
    "port": "--port",
    "api_key": "--api-key",
    "tensor_parallel_size": "--tensor-parallel-size",
    "pipeline_parallel_size": "--pipeline-parallel-size",
    "data_parallel_size": "--data-parallel-size",
    "data_parallel_size_local": "--data-parallel-size-local",
    "data_parallel_backend": "--data-parallel-backend",
    "distributed_executor_backend": "--distributed-executor-backend",
    "dtype": "--dtype",
    "quantization": "--quantization",
    "kv_cache_dtype": "--kv-cache-dtype",
    "max_model_len": "--max-model-len",
    "gpu_memory_utilization": "--gpu-memory-utilization",
    "kv_cache_memory_bytes": "--kv-cache-memory-bytes",
    "max_num_seqs": "--max-num-seqs",
    "max_num_batched_tokens": "--max-num-batched-tokens",
    "limit_mm_per_prompt": "--limit-mm-per-prompt",
    "mm_processor_kwargs": "--mm-processor-kwargs",
    "media_io_kwargs": "--media-io-kwargs",
    "mm_encoder_tp_mode": "--mm-encoder-tp-mode",
    "enforce_eager": "--enforce-eager",
    "enable_expert_parallel": "--enable-expert-parallel",
    "config": "--config",
}


def flag_names(vllm_version: str | None = None) -> dict[str, str]:
    """Plan field -> flag for ``vllm_version``: the profile's names over the table above."""
    from dataclasses import fields

    from vlmctl.engines.vllm import profile

    flags = profile(vllm_version).flags
    out = dict(FLAGS)
    out.update({f.name: getattr(flags, f.name) for f in fields(flags)
                if isinstance(getattr(flags, f.name), str) and getattr(flags, f.name).startswith("--")})
    return out
