"""The shape of a vLLM version profile: everything that changes from one vLLM release to the next.

A profile is data (flag names, env names, log patterns, wordings, defaults) plus the calibration constants
of vLLM's memory accounting that can only be measured. ``vlmctl.engines.vllm`` indexes the profiles;
nothing outside this package names a vLLM version.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields

GIB = 1 << 30


@dataclass(frozen=True)
class Calibration:
    """Estimated terms of vLLM's memory accounting for one vLLM version / model runner."""

    vllm_version: str
    model_runner: str
    source: str
    """Where the numbers come from (measurement date and runs, or the reference they were taken from)."""

    weight_overhead_gib: float
    """'Model loading took X GiB' minus raw parameter bytes: rotary caches and other buffers (per GPU)."""
    non_torch_gib: float
    """Non-torch increase during the profile on a single GPU."""
    non_torch_tp_gib: float
    """Extra non-torch increase per GPU when TP or PP > 1 (NCCL, custom all-reduce buffers)."""
    cuda_context_gib: float
    """CUDA context + allocator state already used before vLLM's memory snapshot (limits utilization)."""
    nccl_init_gib: float
    """Memory NCCL takes before the snapshot when world size > 1 (also limits utilization)."""
    cudagraph_gib: float
    """CUDA-graph memory estimate subtracted when graphs are on (0 with --enforce-eager)."""
    lm_activation_factor: float
    """Multiplier on the LM dummy-pass estimate 2·T·(a·H + b·I/t) bytes."""
    lm_hidden_buffers: float
    """a: hidden-size buffers per token that TP does not shard (residual, row-parallel outputs before the all-reduce)."""
    lm_mlp_buffers: float
    """b: MLP-size buffers per token, sharded by TP."""
    sampler_bytes_per_logit: float
    """Bytes per (row × vocab) of the sampler dummy on the last PP stage (fp32 logits + a copy)."""
    vit_factor: float
    """Multiplier on the analytic ViT peak (docs/planner.md § vision encoder); 1.0 = the lower bound."""
    encoder_in_profile: bool
    """True when the start-up profile runs the vision encoder (so its peak is reserved); False when the profile
    skips it and the encoder's run-time peak must be kept free some other way."""
    unmeasured: tuple[str, ...] = ()
    """Constants carried over from another version or a reference, not measured for this version/runner."""


#: The constants a calibration fits (the numbers; not version, runner, source or switches).
CONSTANTS = tuple(f.name for f in fields(Calibration)
                  if f.name not in ("vllm_version", "model_runner", "source", "encoder_in_profile", "unmeasured"))


@dataclass(frozen=True)
class BatchTier:
    """GPUs with at least ``min_gib`` (and not excluded) get these serve defaults."""

    min_gib: float
    tokens: int
    """max_num_batched_tokens for the OpenAI API server."""
    seqs: int
    """max_num_seqs for the OpenAI API server."""
    excluded_names: tuple[str, ...] = ()
    """GPU names (catalog id prefixes) that stay on a lower tier whatever their memory."""
    excluded_cc: tuple[tuple[int, int], ...] = ()
    """Compute capabilities that stay on a lower tier whatever their memory."""


@dataclass(frozen=True)
class BatchDefaults:
    """``vllm serve``'s max_num_batched_tokens / max_num_seqs when unset, chosen by the GPU of the process
    that parses the arguments (on a mixed rack: the head's GPU)."""

    tiers: tuple[BatchTier, ...]
    """Tried in order; the first that matches wins."""
    fallback: tuple[int, int]
    """(max_num_batched_tokens, max_num_seqs) on every other GPU."""
    source: str

    def for_gpu(self, gpu_id: str, total_gib: float, compute_capability: tuple[int, int] | None = None
                ) -> tuple[int, int]:
        """(tokens, seqs) for one GPU."""
        for tier in self.tiers:
            if (total_gib >= tier.min_gib and not any(gpu_id.startswith(x) for x in tier.excluded_names)
                    and compute_capability not in tier.excluded_cc):
                return tier.tokens, tier.seqs
        return self.fallback


@dataclass(frozen=True)
class RunnerChoice:
    """Which model runner vLLM picks for a model when VLLM_USE_V2_MODEL_RUNNER is unset."""

    default: str
    """The runner for a dense, attention-only generative model."""
    hybrid: str
    """The runner for hybrid models (linear-attention or Mamba layers beside attention)."""
    moe: str
    """The runner for mixture-of-experts models…"""
    moe_architectures_on_default: tuple[str, ...] = ()
    """…except these architectures, which get ``default``."""
    source: str = ""

    def for_model(self, *, is_moe: bool = False, is_hybrid: bool = False, architectures: tuple[str, ...] = ()
                  ) -> str:
        """The runner vLLM would pick for a model with these traits."""
        if is_hybrid:
            return self.hybrid
        if is_moe and not set(architectures) & set(self.moe_architectures_on_default):
            return self.moe
        return self.default


@dataclass(frozen=True)
class Flags:
    """``vllm serve`` flag names, and the forms their values take."""

    tensor_parallel_size: str = "--tensor-parallel-size"
    pipeline_parallel_size: str = "--pipeline-parallel-size"
    distributed_executor_backend: str = "--distributed-executor-backend"
    dtype: str = "--dtype"
    quantization: str = "--quantization"
    kv_cache_dtype: str = "--kv-cache-dtype"
    max_model_len: str = "--max-model-len"
    gpu_memory_utilization: str = "--gpu-memory-utilization"
    kv_cache_memory_bytes: str = "--kv-cache-memory-bytes"
    max_num_seqs: str = "--max-num-seqs"
    max_num_batched_tokens: str = "--max-num-batched-tokens"
    limit_mm_per_prompt: str = "--limit-mm-per-prompt"
    mm_processor_kwargs: str = "--mm-processor-kwargs"
    media_io_kwargs: str = "--media-io-kwargs"
    mm_encoder_tp_mode: str = "--mm-encoder-tp-mode"
    enforce_eager: str = "--enforce-eager"
    served_model_name: str = "--served-model-name"
    host: str = "--host"
    port: str = "--port"
    api_key: str = "--api-key"
    limit_mm_item_options: bool = False
    """True when --limit-mm-per-prompt also takes per-modality dummy sizes
    (``{"video": {"count": 1, "num_frames": 32, "width": 512, "height": 512}}``)."""
    max_model_len_auto: bool = False
    """True when ``--max-model-len auto`` (or -1) picks the largest length that fits."""
    source: str = ""


@dataclass(frozen=True)
class EnvNames:
    """Environment variables vLLM reads that vlmctl sets or checks."""

    multiproc_method: str = "VLLM_WORKER_MULTIPROC_METHOD"
    pp_layer_partition: str = "VLLM_PP_LAYER_PARTITION"
    api_key: str = "VLLM_API_KEY"
    no_usage_stats: str = "VLLM_NO_USAGE_STATS"
    host_ip: str = "VLLM_HOST_IP"
    config_root: str = "VLLM_CONFIG_ROOT"
    logging_level: str = "VLLM_LOGGING_LEVEL"
    estimate_cudagraphs: str = "VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS"
    source: str = ""


@dataclass(frozen=True)
class Runner:
    """One model runner of a vLLM version: how to select it and what its start-up profile covers."""

    name: str
    """'v1' or 'v2'."""
    env: dict[str, str]
    """Environment that selects this runner (empty for the default one)."""
    profiles_encoder: bool
    """The start-up profile runs the vision encoder on the worst-case item (its peak is reserved)."""
    profiles_sampler: bool
    """The start-up profile runs the sampler dummy (logits of max_num_seqs rows) on the last stage."""
    estimates_cudagraphs: bool
    """CUDA-graph memory is estimated before the KV budget and subtracted from it."""
    source: str


@dataclass(frozen=True)
class MemoryLines:
    """Regular expressions for the figures vLLM logs at start-up (group 1 is the number)."""

    patterns: dict[str, tuple[str, type]]
    v2_runner_marker: tuple[str, ...]
    """Substrings that show the V2 model runner wrote the log."""
    v1_runner_marker: tuple[str, ...]
    failures: tuple[str, ...]
    """Start-up failures, most specific first (the first two mean the KV cache did not fit)."""
    encoder_profile: str
    """'profiled with N <modality> items of the maximum feature size' (V1 runner)."""


@dataclass(frozen=True)
class VllmProfile:
    """Everything vlmctl needs to know about one vLLM release."""

    version: str
    """The release, e.g. '0.26.0'."""
    source: str
    """How this profile was read (wheel, source tree, commit)."""
    measured: str
    """What was measured with this release (GPU, date, runs), or 'not measured'."""
    runner_choice: RunnerChoice
    """Which runner vLLM picks for which model."""
    runners: dict[str, Runner]
    calibrations: dict[str, Calibration]
    """Calibration constants per runner."""
    default_utilization: float
    utilization_source: str
    batch_defaults: BatchDefaults
    default_mm_limit: int
    """Items per modality vLLM admits when --limit-mm-per-prompt is unset."""
    encoder_budget: str
    """Where the encoder budget rule is read (``encoder_budget_tokens`` implements it)."""
    flags: Flags
    env: EnvNames
    log_phases: tuple[tuple[str, str], ...]
    """(phase, regex) in start-up order: loading, profiling, graph capture, ready."""
    kv_tokens_line: str
    """Regex of the line with the KV cache's size in tokens (group 1)."""
    memory_lines: MemoryLines
    wordings: dict[str, str] = field(default_factory=dict)
    """vLLM's own error messages, as format strings (rules quote them)."""
    family_calibrations: dict[tuple[str, str], Calibration] = field(default_factory=dict)
    """(runner, model family name) -> constants measured for that family, where they differ from the runner's."""

    @property
    def default_runner(self) -> str:
        """The runner for a dense Qwen-VL model."""
        return self.runner_choice.default

    @property
    def measured_any(self) -> bool:
        """True when some constant of this profile was measured with this release."""
        return any(set(c.unmeasured) != set(CONSTANTS) for c in self.calibrations.values())

    def calibration(self, runner: str | None = None, family: str | None = None) -> Calibration:
        """The calibration constants for ``runner`` (default: this version's default runner), and for the model
        ``family`` when it was measured on its own."""
        name = runner or self.default_runner
        if family and (name, family) in self.family_calibrations:
            return self.family_calibrations[(name, family)]
        if name not in self.calibrations:
            from vlmctl.errors import ConfigError

            raise ConfigError(f"vLLM {self.version} has no model runner '{name}' (runners: "
                              f"{', '.join(sorted(self.calibrations))}).",
                              fix=f"--model-runner {self.default_runner}")
        return self.calibrations[name]

    def encoder_budget_tokens(self, max_num_batched_tokens: int, largest_item: int) -> int:
        """Encoder tokens one step (and the start-up profile) runs: max(max_num_batched_tokens, largest item), 0
        without media."""
        return max(max_num_batched_tokens, largest_item) if largest_item else 0

    def phase_patterns(self) -> list[tuple[str, re.Pattern]]:
        """Compiled log phases."""
        return [(name, re.compile(rx)) for name, rx in self.log_phases]

    def kv_tokens_in(self, text: str) -> int | None:
        """The KV cache size in tokens vLLM logged (the smallest when several workers logged one)."""
        found = [int(m.group(1).replace(",", "")) for m in re.finditer(self.kv_tokens_line, text)]
        return min(found) if found else None

    def wording(self, key: str, **values) -> str:
        """vLLM's message ``key`` filled with ``values``."""
        return self.wordings[key].format(**values)
