"""What a log says about the launch: model, GPU type and count, TP/PP, vLLM version, engine.

These are read so that a fix naming a number (TP, PP, max_model_len, utilization, max_num_seqs) can be computed by
the planner for the model and GPUs in the log, instead of being a rule of thumb.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

#: GPU names as vLLM, torch and nvidia-smi print them -> vlmctl GPU catalogue id (first match wins).
_GPU_NAMES: tuple[tuple[str, str], ...] = (
    (r"H200", "h200"),
    (r"H100", "h100-80gb"),
    (r"A100[- ]?(?:SXM4[- ]|PCIE[- ])?40\s?GB|A100-40", "a100-40gb"),
    (r"A100", "a100-80gb"),
    (r"L40S", "l40s"),
    (r"A10G\b", "a10g"),
    (r"\bA10\b", "a10"),
    (r"\bL4\b", "l4"),
    (r"(?:RTX )?4090", "rtx-4090"),
    (r"(?:RTX )?4060", "rtx-4060"),
    (r"(?:RTX )?3090", "rtx-3090"),
    (r"2080 ?Ti", "rtx-2080-ti"),
    (r"TITAN RTX", "titan-rtx"),
    (r"V100[- ](?:SXM2[- ]|PCIE[- ])?32\s?GB", "v100-32gb"),
    (r"V100", "v100-16gb"),
    (r"Tesla T4|\bT4\b", "t4"),
)
_VERSION = (
    r"vLLM API server version v?(\d+\.\d+(?:\.\d+)?(?:\.post\d+)?)",
    r"Initializing an? (?:V[01] )?LLM engine \(v(\d+\.\d+(?:\.\d+)?(?:\.post\d+)?)",
    r"vLLM Version\s*:\s*(\d+\.\d+(?:\.\d+)?)",
    r"\bvllm(?:==|\s+|: )v?(\d+\.\d+\.\d+(?:\.post\d+)?)\b",
    r"vLLM version:? v?(\d+\.\d+(?:\.\d+)?)",
    r"vLLM (\d+\.\d+\.\d+)",
    r"\bvllm(\d+\.\d+\.\d+)\b",                              # "vllm0.7.2" in a version list
    r"/vllm-(\d+\.\d+\.\d+)(?:\.post\d+)?(?:\+\w+)?-py\d",          # site-packages/vllm-0.7.2+cpu-py3.12…egg
)
#: transformers' version as pip, collect_env, `pip show` and issue templates print it (not transformers-stream-…)
_TRANSFORMERS = (
    r"\btransformers\s*(?:==|:)?\s*v?(\d+\.\d+(?:\.\d+)?(?:\.dev\d+)?)\b",
    r"Transformers version:? v?(\d+\.\d+(?:\.\d+)?(?:\.dev\d+)?)",
    r"installed transformers-(\d+\.\d+(?:\.\d+)?)",
)
#: A log that shows the fix was on transformers' side (reinstalling it, a transformers class it could not import).
_TRANSFORMERS_EVIDENCE = re.compile(
    r"pip3? install[^\n]{0,80}?\btransformers\b|upgrade transformers|transformers[^\n]{0,40}from source"
    r"|cannot import name '\w+' from 'transformers", re.I)
#: The architecture / model type a loading failure names (vLLM's registry, transformers' config lookup).
_ARCH = (
    r"Model architectures? \[?'(\w+)'",
    r"model architecture '(\w+)'",
    r"Resolved architecture: (\w+)",
    r"model type [`'\"]?(\w+)[`'\"]? but Transformers does not recognize",
    r"cannot import name '(\w+)' from 'transformers",
    r"KeyError: '(qwen\w+)'",
)


@dataclass
class LogContext:
    """Facts read from the log (None when the log does not say)."""

    model: str | None = None
    """A vlmctl catalogue id when the model is one the planner knows."""
    gpu: str | None = None
    """A vlmctl GPU catalogue id."""
    gpu_total_gib: float | None = None
    tensor_parallel_size: int | None = None
    pipeline_parallel_size: int | None = None
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    vllm_version: str | None = None
    engine: str | None = None
    """"v0" or "v1" (vLLM's engine generation) when the log shows it."""
    model_params_b: float | None = None
    """Parameters (billions) the model's name states (``Qwen1.5-72B-Chat`` -> 72), for models the planner lacks."""
    weight_bytes: float | None = None
    """Bytes per parameter the name implies: 0.5 for AWQ/GPTQ/Int4, 1 for Int8/FP8, else 2 (bf16/fp16)."""
    launch_gpus: int | None = None
    """GPUs one replica spans: TP x PP, or 1 when a launch command without a TP flag is in the log."""
    transformers_version: str | None = None
    """The transformers release the log shows installed (pip / collect_env / issue template lines)."""
    architecture: str | None = None
    """The architecture (or model type, or transformers class) a loading failure names."""
    transformers_evidence: bool = False
    """The log shows a fix on transformers' side (reinstalling it) or a transformers import that failed."""

    @property
    def weights_gib(self) -> float | None:
        """The weights' size from the name (None when the name states no size)."""
        if not self.model_params_b or not self.weight_bytes:
            return None
        return self.model_params_b * 1e9 * self.weight_bytes / 2**30

    def weights_exceed_gpus(self, share: float = 1.0) -> bool:
        """True when the weights alone take more than ``share`` of the GPUs the launch used (share 1: nothing
        else can fit; 0.8: too little is left for vLLM's profile and KV cache, whatever the other settings)."""
        weights = self.weights_gib
        if weights is None or not self.launch_gpus:
            return False
        # no GPU named: the weights per GPU above the largest GPU vlmctl knows cannot fit on any
        total = self.gpu_total_gib or _largest_gpu_gib()
        return weights / self.launch_gpus > share * total

    @property
    def gpu_count(self) -> int | None:
        """GPUs the launch used: TP x PP when the log shows TP."""
        if not self.tensor_parallel_size:
            return None
        return self.tensor_parallel_size * (self.pipeline_parallel_size or 1)

    def as_dict(self) -> dict:
        """Only the facts that were found."""
        return {k: v for k, v in asdict(self).items() if v is not None and v is not False}


def _largest_gpu_gib() -> float:
    from vlmctl.hardware.gpus import _index

    return max(g.total_gib for g in _index().values())


def _int(pattern: str, text: str) -> int | None:
    m = re.search(pattern, text, re.I)
    return int(m.group(1)) if m else None


def _gpu_by_memory(total: float) -> str | None:
    from vlmctl.hardware.gpus import _index

    best = min({g.id: g for g in _index().values()}.values(), key=lambda g: abs(g.total_gib - total))
    return best.id if abs(best.total_gib - total) <= 0.02 * total else None


def _model_patterns() -> list[tuple[re.Pattern, str]]:
    """(regex, catalogue id) for every model the planner knows, longest name first (-AWQ before the base)."""
    from vlmctl.models.catalog import CATALOG

    out = []
    for model_id in CATALOG:
        if "@" in model_id:
            continue
        name = model_id.split("/", 1)[1]
        body = re.escape(name).replace(re.escape("-Instruct"), "(?:-Instruct)?")
        out.append((re.compile(r"(?<![\w.])" + body + r"(?![\w.])", re.I), model_id))
    return sorted(out, key=lambda t: -len(t[1]))


def _model(text: str) -> str | None:
    for pattern, model_id in _model_patterns():
        m = pattern.search(text)
        if m and not re.search(r"GPTQ|Int[48]\b|bnb|bitsandbytes|FP8", text[m.start():m.end() + 40], re.I):
            return model_id
    return None


def _total_of(gpu: str) -> float:
    from vlmctl.hardware.gpus import gpu_type

    return gpu_type(gpu).total_gib


#: Where a log names the model it launched: CLI flags, vLLM's config line, LLM(model=...).
_MODEL_ARG = re.compile(r"(?:--model(?:-path)?|--served-model-name|model_path)[= ]+['\"]?(\S+?)['\"]?(?:\s|$)"
                        r"|\bmodel=['\"]([^'\"]+)['\"]|vllm serve (?!-)(\S+)")
_LAUNCH = re.compile(r"vllm serve|vllm\.entrypoints|api_server|\bLLM\(")


def _read_size(ctx: LogContext, text: str) -> None:
    for m in _MODEL_ARG.finditer(text):
        name = next(g for g in m.groups() if g).rstrip("/").rsplit("/", 1)[-1]
        size = re.search(r"(?<![\d.])(\d{1,3}(?:\.\d)?)[Bb](?![a-zA-Z\d])", name)
        if not size:
            continue
        ctx.model_params_b = float(size.group(1))
        ctx.weight_bytes = (0.5 if re.search(r"AWQ|GPTQ|Int4|4bit|w4a16|bnb", name, re.I) else
                            1.0 if re.search(r"Int8|FP8|8bit|w8a8", name, re.I) else 2.0)
        break
    if ctx.tensor_parallel_size:
        ctx.launch_gpus = ctx.tensor_parallel_size * (ctx.pipeline_parallel_size or 1)
    elif _LAUNCH.search(text) and not re.search(r"tensor[-_]parallel[-_]size|\s-tp\b|--tp\b", text):
        ctx.launch_gpus = 1


def read_context(text: str) -> LogContext:
    """Read model, GPU, layout, vLLM version and engine from a (normalised or raw) log."""
    ctx = LogContext()
    ctx.model = _model(text)
    for pattern, gpu in _GPU_NAMES:
        if re.search(pattern, text, re.I if not pattern.startswith(r"\bA10") else 0):
            ctx.gpu = gpu
            break
    # torch >= 2.1 ("total capacty" in 2.1/2.2), torch <= 2.0 ("79.35 GiB total capacity"), vLLM's profile line
    total = re.search(r"total capac(?:i)?ty of ([\d.]+) GiB|total_gpu_memory[= (]+([\d.]+) ?GiB"
                      r"|GPU \d+; ([\d.]+) GiB total capacity", text)
    if total:
        ctx.gpu_total_gib = float(total.group(1) or total.group(2) or total.group(3))
        if ctx.gpu is None or abs(_total_of(ctx.gpu) - ctx.gpu_total_gib) > 0.05 * ctx.gpu_total_gib:
            ctx.gpu = _gpu_by_memory(ctx.gpu_total_gib) or ctx.gpu
    ctx.tensor_parallel_size = (_int(r"tensor_parallel_size[=:'\" ]+(\d+)", text)
                                or _int(r"(?:--tensor-parallel-size|-tp|--tp)[= ](\d+)", text))
    ctx.pipeline_parallel_size = (_int(r"pipeline_parallel_size[=:'\" ]+(\d+)", text)
                                  or _int(r"(?:--pipeline-parallel-size|-pp)[= ](\d+)", text))
    ctx.max_model_len = (_int(r"max_seq_len=(\d+)", text) or _int(r"--max[-_]model[-_]len[= ](\d+)", text)
                         or _int(r"max_model_len[=:'\" ]+(\d+)", text))
    util = re.search(r"gpu[-_]memory[-_]utilization[=:'\" ]+(0?\.\d+|1(?:\.0)?)\b", text, re.I)
    if util:
        ctx.gpu_memory_utilization = float(util.group(1))
    _read_size(ctx, text)
    for pattern in _VERSION:
        m = re.search(pattern, text, re.I)
        if m:
            ctx.vllm_version = m.group(1)
            break
    for pattern in _TRANSFORMERS:
        m = re.search(pattern, text, re.I)
        if m:
            ctx.transformers_version = m.group(1)
            break
    ctx.transformers_evidence = bool(_TRANSFORMERS_EVIDENCE.search(text))
    for pattern in _ARCH:
        m = re.search(pattern, text)
        if m:
            ctx.architecture = m.group(1)
            break
    if re.search(r"V1 LLM engine|EngineCore|VllmWorker rank=|v1/engine|on V1 engine", text):
        ctx.engine = "v1"
    elif re.search(r"V0 LLM engine|VllmWorkerProcess|RayWorkerVllm|llm_engine\.py.*Initializing|"
                   r"vllm/worker/worker\.py|async_llm_engine", text):
        ctx.engine = "v0"
    return ctx
