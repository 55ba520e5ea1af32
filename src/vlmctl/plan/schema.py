"""The Plan: everything downstream (cluster, compose, serve, bench) consumes this, never re-derives it.

Settings carry vLLM's own names so a Plan reads like the ``vllm serve`` line it becomes.
``PlanResult.model_dump_json()`` is what ``vlmctl plan --json`` prints and
``PlanResult.model_validate_json()`` reads it back (round trip).
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vlmctl.engines.vllm import LEGACY
from vlmctl.findings import Finding


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GpuMemory(_Strict):
    """Predicted memory of one GPU (one worker) as vLLM will account it, in GiB."""

    node: str
    """Node name from the cluster file."""
    gpu_index: int
    """Physical GPU id on that node (what CUDA_VISIBLE_DEVICES lists)."""
    gpu_type: str
    """Catalog id of the GPU, e.g. ``rtx-2080-ti``."""
    stage: int
    """Pipeline stage this GPU serves (0-based)."""
    dp_rank: int = 0
    """Data-parallel replica this GPU belongs to (0-based)."""
    tp_rank: int
    """Tensor-parallel rank inside the stage."""
    layers: int
    """Decoder layers held by this stage."""
    total_gib: float
    """Total memory as cudaMemGetInfo reports it."""
    requested_gib: float
    """ceil(total × gpu_memory_utilization): vLLM's budget for this worker."""
    weights_gib: float
    """Model weights on this GPU (language-model shard + vision encoder + buffers)."""
    activation_gib: float
    """Torch peak increase during vLLM's start-up profile."""
    non_torch_gib: float
    """Non-torch increase during the profile (NCCL buffers, allocator slack)."""
    cudagraph_gib: float
    """CUDA-graph memory estimate vLLM subtracts (0 with --enforce-eager)."""
    encoder_runtime_gib: float
    """Vision-encoder peak of the largest admitted request that the start-up profile does NOT reserve
    (V2 model runner); kept free by lowering the KV budget."""
    kv_cache_gib: float
    """Memory left for the KV cache on this worker."""
    kv_blocks: int
    """KV blocks this worker could hold (the engine takes the minimum over workers)."""


class MediaLimits(_Strict):
    """The largest media the plan reserved memory for; `vlmctl serve` refuses anything bigger."""

    max_pixels: int
    """Largest image (or video frame) area after the processor's resize, in pixels."""
    max_images: int
    """Images per request."""
    max_videos: int
    """Videos per request."""
    max_video_frames: int
    """Frames per video after sampling."""
    encoder_tokens: int
    """Vision tokens of the largest admitted request."""
    pixel_grid: int = 28
    """Images are resized to multiples of this many pixels per side (patch × merge of the model's family)."""


class SpeedPrediction(_Strict):
    """Predicted serving speed of the plan for one workload at one concurrency (docs/planner.md § speed)."""

    workload: str
    """Request kind as `vlmctl bench --mix` writes it: ``text``, ``image@WxH`` or ``video@WxHxFRAMES``."""
    concurrency: int
    """Requests in flight across all replicas (closed loop, as `vlmctl bench --concurrency`)."""
    prompt_tokens: int
    """Prompt tokens per request: text, chat template and media."""
    media_tokens: int
    """Of those, the image or video tokens (what the vision encoder produces)."""
    output_tokens: int
    ttft_ms: float
    """Time to first token (median request)."""
    tpot_ms: float
    """Time per output token after the first (median request)."""
    output_tokens_per_s: float
    """Output tokens per second of the whole deployment (all replicas)."""
    decode_step_ms: float
    """One decode step of one replica at its share of the concurrency."""
    bound: str
    """What limits a decode step: ``weights`` (memory bandwidth), ``compute``, ``communication`` or ``scheduler``."""
    calibration: str
    """Where the speed constants come from (GPU, vLLM version, runs)."""


class NodePlacement(_Strict):
    """What runs on one node."""

    name: str
    address: str | None = None
    gpu_type: str
    gpu_ids: list[int]
    stages: list[int]
    """Pipeline stages hosted on this node."""
    dp_ranks: list[int] = Field(default_factory=lambda: [0])
    """Data-parallel replicas with GPUs on this node (``--data-parallel-size-local`` is their count when each
    replica fits in one node); ``gpu_ids`` lists their GPUs rank by rank."""
    nic: str | None = None
    """NIC override from the cluster file; `vlmctl cluster env` picks one when absent."""
    model_path: str | None = None


class Plan(_Strict):
    """A validated deployment: vLLM-named settings plus the predictions behind them."""

    model: str
    """Catalog id or local folder, as given."""
    model_path: str | None = None
    """Path to serve from on every node (cluster file or local folder); None = the model id (hub)."""
    served_model_name: str
    cluster_name: str | None = None
    """The cluster file's ``name`` (per-node state folders are named after it); None when planned for --gpus."""
    vllm_version: str = LEGACY
    """vLLM release the plan was made for (`vlmctl serve` refuses another one unless --force)."""
    vllm_profile: str | None = None
    """The supported profile the plan used when ``vllm_version`` has none of its own (None = its own)."""
    model_runner: Literal["v1", "v2"] = "v2"
    """vLLM model runner (VLLM_USE_V2_MODEL_RUNNER=0 selects v1)."""
    calibration_file: str | None = None
    """Calibration file whose constants the plan used (None = the profile's built-in ones)."""

    tensor_parallel_size: int = Field(ge=1)
    pipeline_parallel_size: int = Field(ge=1)
    data_parallel_size: int = Field(1, ge=1)
    """Engine replicas, each TP × PP GPUs (vLLM ``--data-parallel-size``); requests are balanced across them."""
    pp_layer_partition: list[int] | None = None
    """Decoder layers per stage when not vLLM's default split (becomes VLLM_PP_LAYER_PARTITION)."""
    dtype: Literal["float16", "bfloat16", "float32"]
    quantization: str | None = None
    kv_cache_dtype: str = "auto"
    max_model_len: int = Field(ge=16)
    gpu_memory_utilization: float = Field(gt=0, le=1)
    kv_cache_memory_bytes: int | None = None
    """When set, vLLM uses exactly this KV budget per GPU and ignores gpu_memory_utilization."""
    max_num_seqs: int = Field(ge=1)
    max_num_batched_tokens: int = Field(ge=1)
    limit_mm_per_prompt: dict[str, int]
    mm_processor_kwargs: dict[str, int] = Field(default_factory=dict)
    mm_encoder_tp_mode: Literal["weights", "data"] = "weights"
    enforce_eager: bool = False
    enable_expert_parallel: bool = False
    """MoE: experts dealt whole over the TP ranks (--enable-expert-parallel) instead of split by TP."""
    distributed_executor_backend: Literal["uni", "mp", "ray"] = "uni"
    """How one replica's workers run: ``ray`` when a replica spans nodes, ``mp`` for several GPUs in one node."""
    data_parallel_backend: Literal["mp", "ray"] = "mp"
    """How replicas are started (vLLM ``--data-parallel-backend``): ``ray`` when they sit on several nodes."""
    env: dict[str, str] = Field(default_factory=dict)
    """Environment for every vLLM process (per-node network variables come from `cluster env`)."""

    nodes: list[NodePlacement]
    per_gpu: list[GpuMemory]
    kv_cache_tokens: int
    """Tokens the KV cache of one replica holds (blocks × 16, minimum over its workers)."""
    max_concurrency: float
    """Requests of max_model_len tokens that fit at once in one replica."""
    media_limits: MediaLimits
    decode_tokens_per_s_bound: float
    """Batch-1 decode upper bound: weights read per token over HBM bandwidth, summed over stages."""
    speed: SpeedPrediction | None = None
    """Predicted TTFT, TPOT and throughput for the requested workload and concurrency."""


class Alternative(_Strict):
    """A configuration the search ranked below the winner, and why."""

    summary: str
    ok: bool
    kv_cache_tokens: int
    max_model_len: int
    max_concurrency: float
    data_parallel_size: int = 1
    speed: SpeedPrediction | None = None
    reason: str
    """Why it lost (or why it cannot start)."""


class PlanResult(_Strict):
    """What `vlmctl plan --json` prints: verdict, plan, findings, ranked alternatives."""

    ok: bool
    """True when the plan is predicted to start."""
    plan: Plan | None
    """The winner; when ok is false, the closest failing configuration (None if none could be sized)."""
    findings: list[Finding]
    alternatives: list[Alternative] = Field(default_factory=list)
    explanation: str = ""
    """Why the winner won."""
