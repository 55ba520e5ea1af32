"""PlanRequest: what the user fixed (vLLM-named) and what they want; everything unset is searched."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vlmctl.plan.rules import MIN_CC

MM_MODALITIES = ("image", "video")
#: Quantization methods the planner has rules for, as vLLM names them.
QUANTIZATIONS = tuple(MIN_CC)


class PlanRequest(BaseModel):
    """Settings given on the command line (None = let the planner choose)."""

    model_config = ConfigDict(extra="forbid")

    tensor_parallel_size: int | None = Field(None, ge=1, le=64)
    pipeline_parallel_size: int | None = Field(None, ge=1, le=64)
    data_parallel_size: int | None = Field(None, ge=1, le=512)
    """Engine replicas (else as many as the cluster holds)."""
    dtype: Literal["auto", "float16", "bfloat16", "float32", "half"] = "auto"
    quantization: str | None = None
    """A vLLM quantization method the planner knows (QUANTIZATIONS); None = from the checkpoint."""
    kv_cache_dtype: Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2", "bfloat16", "float16"] = "auto"
    max_model_len: int | None = Field(None, ge=16, le=2**24)
    gpu_memory_utilization: float | None = Field(None, gt=0, le=1, allow_inf_nan=False)
    max_num_seqs: int | None = Field(None, ge=1, le=2**16)
    max_num_batched_tokens: int | None = Field(None, ge=1, le=2**24)
    limit_mm_per_prompt: dict[str, int] | None = None
    mm_processor_kwargs: dict[str, int] | None = None
    mm_encoder_tp_mode: Literal["weights", "data"] | None = None
    enforce_eager: bool | None = None
    enable_expert_parallel: bool | None = None
    """MoE models: deal whole experts over the TP ranks (--enable-expert-parallel); None = let the search try both."""
    model_runner: Literal["v1", "v2"] | None = None
    """vLLM model runner to plan for (None = the one that vLLM release picks for the model)."""
    vllm_version: str | None = Field(None, max_length=64)
    """vLLM release to plan for (None = the newest supported; an unknown one plans with the nearest profile)."""
    calibration: str | None = Field(None, max_length=4096)
    """Calibration file from `vlmctl calibrate` (None = the per-user one for that release, if any)."""
    concurrency: int | None = Field(None, ge=1, le=2**20)
    """Requests in flight (closed loop) the speed is predicted for; the KV cache must hold them (default 1)."""
    workload: str = "text"
    """Request kind for the speed prediction: text, image@WxH or video@WxHxFRAMES (as `vlmctl bench --mix`), with
    ``:repeat`` when the same media recur (vLLM serves them from its prefix cache)."""
    prompt_tokens: int = Field(64, ge=1, le=10_000_000)
    """Text tokens per prompt (the chat template and media tokens are added)."""
    output_tokens: int = Field(64, ge=1, le=10_000_000)
    prefer: Literal["throughput", "latency", "context"] = "throughput"
    """What to rank by: output tokens/s, time per request (TTFT + output × TPOT), or max_model_len."""
    max_ttft_ms: float | None = Field(None, gt=0)
    """Latency target: configurations predicted slower to the first token rank below those that meet it."""
    max_tpot_ms: float | None = Field(None, gt=0)
    """Latency target for the time per output token."""

    @model_validator(mode="after")
    def _check(self) -> "PlanRequest":
        if self.dtype == "half":
            self.dtype = "float16"
        if self.quantization is not None and self.quantization not in QUANTIZATIONS:
            from vlmctl.errors import did_you_mean

            hint = did_you_mean(self.quantization, QUANTIZATIONS).strip()
            raise ValueError(f"--quantization '{self.quantization}' is not a method the planner knows "
                             f"({hint + ' ' if hint else ''}known: {', '.join(QUANTIZATIONS)})")
        for key, val in (self.limit_mm_per_prompt or {}).items():
            if key not in MM_MODALITIES:
                raise ValueError(f"--limit-mm-per-prompt key '{key}' is not a modality of Qwen2.5-VL "
                                 f"(use {', '.join(MM_MODALITIES)})")
            if not 0 <= val <= 1024:
                raise ValueError(f"--limit-mm-per-prompt {key}={val} must be between 0 and 1024")
        for key, val in (self.mm_processor_kwargs or {}).items():
            if key not in ("max_pixels", "min_pixels", "num_frames"):
                raise ValueError(f"--mm-processor-kwargs key '{key}' is not one the planner understands "
                                 "(use max_pixels, min_pixels)")
            if not 0 < val <= 2**31:
                raise ValueError(f"--mm-processor-kwargs {key}={val} must be between 1 and {2**31}")
        if (self.max_num_batched_tokens and self.max_model_len
                and self.max_num_batched_tokens < 16):
            raise ValueError("--max-num-batched-tokens must be at least 16")
        return self
