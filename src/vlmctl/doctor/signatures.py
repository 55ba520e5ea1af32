"""The catalog of known failures: each signature maps vLLM / Ray / NCCL / torch error text to a cause and fix.

A signature carries the regexes for every wording seen in the wild (old and new vLLM releases), the
values it can pull out of the text (``extract``) and, optionally, the plan change that follows from
them (``plan_change``: field of :class:`vlmctl.plan.schema.Plan` -> new value, or ``env.NAME``).
Regexes run on normalised text: worker prefixes such as ``(RayWorkerWrapper pid=…, ip=…)`` and
``ERROR 08-02 08:50:03 file.py:12]`` are stripped and whitespace is collapsed (see ``explain``).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vlmctl.findings import Severity
from vlmctl.models.families import FAMILIES

#: vLLM model files of every supported family (a vision-encoder frame in a traceback names one of them).
_VISION_MODEL_FILES = "(?:" + "|".join(sorted({re.escape(f.removesuffix(".py")) for fam in FAMILIES
                                               for f in fam.vllm_model_files})) + r")\.py"

Values = dict[str, Any]
PlanChange = Callable[[Values, Any], dict[str, Any]]


@dataclass(frozen=True)
class Signature:
    """One known failure: how to recognise it, why it happens, what to change."""

    id: str
    title: str
    patterns: tuple[str, ...]
    """Regexes (case-insensitive, on whitespace-collapsed text); any one matching is a hit."""
    cause: str
    fix: str
    severity: Severity = "error"
    sources: tuple[str, ...] = ()
    """Public reports where this failure and its wording were seen."""
    unless: tuple[str, ...] = ()
    """Regexes that veto the match (to keep look-alike signatures apart)."""
    plan_change: PlanChange | None = None
    """Plan fields to change (``max_model_len``, ``env.NAME``, ``limit_mm_per_prompt.video``) from values + plan."""
    plan_change_doc: str = ""
    """The plan change in words, for docs/doctor.md."""
    supersedes: tuple[str, ...] = ()
    """Ids of broader signatures this one replaces when both match."""
    context: tuple[str, ...] = ()
    """Regexes searched anywhere in the log for extra named values (e.g. the KV budget vLLM printed)."""
    stalls: bool = False
    """vLLM does not exit on this failure but waits forever: `vlmctl serve` stops it as soon as it shows."""
    compiled: tuple[re.Pattern, ...] = field(init=False, repr=False, compare=False)
    compiled_unless: tuple[re.Pattern, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "compiled", tuple(re.compile(p, re.I | re.S) for p in self.patterns))
        object.__setattr__(self, "compiled_unless", tuple(re.compile(p, re.I | re.S) for p in self.unless))

    def search(self, text: str) -> re.Match | None:
        """The first regex match in ``text`` (normalised), or None; vetoed by ``unless``."""
        if any(u.search(text) for u in self.compiled_unless):
            return None
        for pattern in self.compiled:
            m = pattern.search(text)
            if m:
                return m
        return None


def _int(s: str | None) -> int | None:
    return int(s.replace(",", "")) if s else None


def _round16(n: int) -> int:
    return max(16, n // 16 * 16)


def _max_len_change(values: Values, plan: Any) -> dict[str, Any]:
    est = values.get("estimated_max_model_len") or values.get("kv_cache_tokens")
    if not est and values.get("needed_gib") and values.get("available_gib") and values.get("max_seq_len"):
        est = int(values["max_seq_len"] * values["available_gib"] / values["needed_gib"])
        values["estimate_is_linear"] = True
    return {"max_model_len": _round16(int(est))} if est else {}


def _free_memory_change(values: Values, plan: Any) -> dict[str, Any]:
    free, total = values.get("free_gib"), values.get("total_gib")
    if not (free and total):
        return {}
    return {"gpu_memory_utilization": round(int(free / total * 100 - 1) / 100, 2)}


def _kv_no_blocks_change(values: Values, plan: Any) -> dict[str, Any]:
    if plan is not None and getattr(plan, "max_model_len", None):
        return {"max_model_len": _round16(plan.max_model_len // 2)}
    return {}


def _tp_heads_change(values: Values, plan: Any) -> dict[str, Any]:
    heads, tp = values.get("heads"), values.get("tp")
    if not (heads and tp):
        return {}
    ok = [d for d in range(tp, 0, -1) if heads % d == 0]
    change: dict[str, Any] = {"tensor_parallel_size": ok[0]}
    if tp % ok[0] == 0 and tp // ok[0] > 1:
        change["pipeline_parallel_size"] = tp // ok[0]
    return change


def _tp_halve(values: Values, plan: Any) -> dict[str, Any]:
    tp = getattr(plan, "tensor_parallel_size", None) if plan is not None else None
    if tp and tp > 1:
        return {"tensor_parallel_size": tp // 2, "pipeline_parallel_size": plan.pipeline_parallel_size * 2}
    return {}


def _dtype_half(values: Values, plan: Any) -> dict[str, Any]:
    return {"dtype": "float16"}


def _spawn(values: Values, plan: Any) -> dict[str, Any]:
    return {"env.VLLM_WORKER_MULTIPROC_METHOD": "spawn"}


def _mm_profile_change(values: Values, plan: Any) -> dict[str, Any]:
    need = values.get("mm_worst_case_tokens")
    if plan is not None and need and getattr(plan, "max_num_batched_tokens", 0) < need:
        return {"max_num_batched_tokens": need}
    return {}


def _encoder_oom_change(values: Values, plan: Any) -> dict[str, Any]:
    change: dict[str, Any] = {"env.VLLM_USE_V2_MODEL_RUNNER": "0"}
    if plan is not None:
        gpus = list(getattr(plan, "per_gpu", []) or [])
        peak = max((g.encoder_runtime_gib for g in gpus), default=0.0)
        total = min((g.total_gib for g in gpus), default=0.0)
        if peak > 0 and total > 0:  # leave the planner's encoder peak outside the KV budget
            target = int((plan.gpu_memory_utilization - peak / total) * 100) / 100
        else:
            target = plan.gpu_memory_utilization - 0.05
        change["gpu_memory_utilization"] = round(max(0.5, target), 2)
        kw = dict(getattr(plan, "mm_processor_kwargs", {}) or {})
        if kw.get("max_pixels"):
            change["mm_processor_kwargs.max_pixels"] = kw["max_pixels"] // 2
    return change


def _runtime_oom_change(values: Values, plan: Any) -> dict[str, Any]:
    if plan is None:
        return {}
    return {"gpu_memory_utilization": round(max(0.5, plan.gpu_memory_utilization - 0.05), 2),
            "max_num_seqs": max(1, plan.max_num_seqs // 2)}


def _startup_oom_change(values: Values, plan: Any) -> dict[str, Any]:
    if plan is None:
        return {}
    change: dict[str, Any] = {"max_model_len": _round16(plan.max_model_len // 2)}
    if plan.limit_mm_per_prompt.get("video", 0) > 0:
        change["limit_mm_per_prompt.video"] = 0
    return change


_TP_FIX = ("use a tensor-parallel size that divides the shape (or move GPUs to pipeline parallel: "
           "--pipeline-parallel-size); `vlmctl plan` lists the TP sizes that pass every check")

CATALOG: tuple[Signature, ...] = (
    Signature(
        id="gloo-loopback",
        title="Gloo bound to loopback (hostname resolves to 127.x or not at all)",
        patterns=(
            r"Unable to resolve hostname to a \(local\) address\. Using the loopback address as fallback",
            r"Gloo connectFullMesh failed.{0,200}?remote=\[127\.0\.0\.1\]",
        ),
        cause="torch's Gloo resolves gethostname() to pick its bind address; on this node the name maps to "
              "127.x (or nothing), so ranks on other nodes dial their own loopback and connectFullMesh fails.",
        fix="set GLOO_SOCKET_IFNAME=<nic> and NCCL_SOCKET_IFNAME==<nic> on EVERY node before `ray start` "
            "(the NIC that routes to the head: `vlmctl doctor --head HEAD_IP`), or make the hostname resolve "
            "to the node's routable address in /etc/hosts; `vlmctl cluster up` sets both per node.",
        sources=("vllm-project/vllm#7074", "aws-samples/aws-do-eks#50", "vllm-project/vllm#5094",
                 "gpustack/gpustack#2125"),
        plan_change=None,
    ),
    Signature(
        id="gloo-connect-failed",
        title="Gloo full-mesh connect failed between nodes",
        patterns=(r"Gloo connectFullMesh failed",),
        unless=(r"Using the loopback address as fallback", r"remote=\[127\.0\.0\.1\]"),
        cause="the CPU process group could not connect every rank: wrong NIC picked on a multi-NIC host, a "
              "firewall between nodes, or GLOO_SOCKET_IFNAME differing from the NIC Ray registered.",
        fix="pin GLOO_SOCKET_IFNAME / NCCL_SOCKET_IFNAME per node to the NIC that routes to the head "
            "(`vlmctl doctor --head HEAD_IP` shows it) and open the ports between nodes.",
        sources=("gpustack/gpustack#2125", "sgl-project/sglang#3226"),
    ),
    Signature(
        id="ray-node-ip-mismatch",
        title="Placement group never forms: vLLM's IP is not a Ray node IP",
        patterns=(r"No available node types can fulfill resource request \{'node:[0-9a-f.:]+'",),
        cause="vLLM asks Ray for a GPU on node:<its own IP>, found via the default route (a UDP probe to "
              "8.8.8.8); that IP differs from the one Ray registered, so the request can never be met.",
        fix="start Ray with `--node-ip-address=<ip>` and export VLLM_HOST_IP=<same ip> on each node "
            "(`vlmctl cluster up` does both); check `ray list nodes`.",
        sources=("vllm-project/vllm#7815", "vllm-project/vllm#13388", "vllm-project/vllm#13521"),
        stalls=True,
    ),
    Signature(
        id="ray-local-instance",
        title="vLLM started its own Ray instead of joining the cluster",
        patterns=(r"Started a local Ray instance.*?Waiting for creating a placement group",),
        cause="vLLM's ray.init() had no address: without RAY_ADDRESS it reads the default temp dir's "
              "/tmp/ray/ray_current_cluster, which a `ray start --temp-dir=…` never writes, so it started a one-node "
              "Ray on the head and waits forever for the other nodes' GPUs.",
        fix="export RAY_ADDRESS=<head address>:<Ray port> before `vllm serve` (`vlmctl serve --plan … --cluster …` "
            "sets it); `ray status` should list every node.",
        sources=("measured by vlmctl on the project's H100 (vLLM 0.26.0, Ray 2.60.0)",),
        supersedes=("world-size-gpus",),
        stalls=True,
    ),
    Signature(
        id="ray-unique-ip",
        title="vLLM sees more IPs than Ray nodes",
        patterns=(r"Every node should have a unique IP address",),
        cause="on multi-NIC nodes vLLM's get_ip() returns the default-route address, which differs from the "
              "Ray node IP; VLLM_HOST_IP set on the driver is not propagated to the workers.",
        fix="set VLLM_HOST_IP on every node (before `ray start`) to the address given to "
            "`ray start --node-ip-address`; `vlmctl cluster up` does this.",
        sources=("vllm-project/vllm#43095", "ray-project/ray#63917"),
    ),
    Signature(
        id="ray-node-dead",
        title="A Ray worker node was marked dead",
        patterns=(r"has been marked dead because the detector has missed too many heartbeats",
                  r"mistakenly been marked as dead by the GCS"),
        cause="the raylet on a worker stopped answering health checks: it crashed (often host OOM), the node "
              "was overloaded, or the network between nodes is slow or flapping. The engine loses that stage.",
        fix="check the worker's `dmesg` for the OOM killer and `/tmp/ray/session_latest/logs/raylet.out`; "
            "keep the `ray start` terminal/container alive; start workers one at a time; then "
            "`vlmctl cluster status`.",
        sources=("ray-project/ray#45179", "vllm-project/vllm#19960", "ray-project/ray#54035"),
    ),
    Signature(
        id="ray-version-mismatch",
        title="Ray / Python versions differ between nodes",
        patterns=(r"Version mismatch: The cluster was started with:\s*Ray: (?P<cluster_ray>\S+)\s*Python: "
                  r"(?P<cluster_python>\S+)\s*This process on node (?P<node>\S+) was started with:\s*Ray: "
                  r"(?P<node_ray>\S+)\s*Python: (?P<node_python>\S+)",),
        cause="Ray refuses processes whose Ray or Python version differs from the head's.",
        fix="use one image (same Ray, Python, vLLM, torch) on every node; `vlmctl doctor` prints the versions "
            "to compare and `vlmctl cluster verify` checks them across nodes.",
        sources=("ray-project/ray#50511", "gpustack/gpustack#1640"),
    ),
    Signature(
        id="kv-max-seq-len-v1",
        plan_change_doc="`max_model_len` ← estimated maximum (or scaled from the GiB figures), multiple of 16",
        title="max_model_len does not fit the KV cache (V1 engine)",
        patterns=(r"To serve at least one request with the models?'?s max seq len \((?P<max_seq_len>\d+)\),? "
                  r"\((?P<needed_gib>[\d.]+) GiB KV cache is needed, which is larger than the available KV "
                  r"cache memory \((?P<available_gib>-?[\d.]+) GiB\)\.(?: Based on the available memory, the "
                  r"estimated maximum model length is (?P<estimated_max_model_len>\d+)\.)?",),
        cause="after weights and the start-up profile's activation peak (for a VLM: the largest dummy image/"
              "video), the KV budget cannot hold one request of max_model_len tokens. Qwen2.5-VL defaults to "
              "max_model_len 128000.",
        fix="set --max-model-len to the estimated maximum (or less), or free KV memory: raise "
            "--gpu-memory-utilization, lower --limit-mm-per-prompt / max_pixels, add GPUs; `vlmctl plan` "
            "sizes this before launch.",
        sources=("vllm-project/vllm#16118", "vllm-project/vllm#25350", "vllm-project/vllm PR #16168"),
        plan_change=_max_len_change,
    ),
    Signature(
        id="kv-max-seq-len-v0",
        plan_change_doc="`max_model_len` ← KV capacity printed, multiple of 16",
        title="max_model_len does not fit the KV cache (V0 engine)",
        patterns=(r"The model's max seq len \((?P<max_seq_len>\d+)\) is larger than the maximum number of "
                  r"tokens that can be stored in KV cache \((?P<kv_cache_tokens>\d+)\)",),
        cause="the KV cache holds fewer tokens than one max_model_len request; what is left after weights and "
              "the profiling peak is too small (and depends non-monotonically on max_model_len).",
        fix="set --max-model-len to the KV capacity printed (or less), or raise --gpu-memory-utilization "
            "(at the risk of OOM).",
        sources=("vllm-project/vllm#10517", "QwenLM/Qwen3#295", "vllm-project/vllm#2418"),
        plan_change=_max_len_change,
    ),
    Signature(
        id="kv-no-blocks",
        plan_change_doc="`max_model_len` halved",
        title="No memory left for any KV block",
        patterns=(r"No available memory for the cache blocks",
                  r"the rest of the memory reserved for KV Cache is -[\d.]+GiB"),
        cause="weights + activation peak (+ non-torch, + CUDA graphs) already exceed "
              "gpu_memory_utilization x total; for Qwen2.5-VL the video/image profiling peak is often >10 GiB.",
        fix="raise --gpu-memory-utilization, lower --max-model-len, --limit-mm-per-prompt and max_pixels "
            "(mm_processor_kwargs), or use more/larger GPUs; `vlmctl plan` shows each term per GPU.",
        sources=("vllm-project/vllm#10439", "vllm-project/vllm#13882", "vllm-project/vllm#18124"),
        plan_change=_kv_no_blocks_change,
        context=(r"Available KV cache memory: (?P<available_kv_gib>-?[\d.]+) ?GiB",
                 r"torch peak memory increase: (?P<torch_peak_gib>[\d.]+) ?GiB",
                 r"weights memory: (?P<weights_gib>[\d.]+) ?GiB",
                 r"reserved for KV Cache is (?P<available_kv_gib>-?[\d.]+) ?GiB"),
    ),
    Signature(
        id="free-memory-startup",
        plan_change_doc="`gpu_memory_utilization` ← free/total − 0.01",
        title="Less free GPU memory than gpu_memory_utilization asks for",
        patterns=(r"Free memory on device (?:cuda:\d+ )?\((?P<free_gib>[\d.]+)/(?P<total_gib>[\d.]+) GiB\) on "
                  r"startup is less than desired GPU memory utilization \((?P<util>[\d.]+), "
                  r"(?P<requested_gib>[\d.]+) GiB\)",),
        cause="gpu_memory_utilization is a fraction of TOTAL memory; another process (or a previous engine "
              "that did not exit) holds memory, so the requested share is not free.",
        fix="free the GPU (`nvidia-smi` shows who holds it) or lower --gpu-memory-utilization below "
            "free/total.",
        sources=("pytorch/pytorch#175666", "vllm-project/vllm#20305"),
        plan_change=_free_memory_change,
    ),
    Signature(
        id="mm-profile-too-short",
        plan_change_doc="`max_num_batched_tokens` ← worst-case multimodal tokens",
        title="Profiling sequence too short for the worst-case image/video",
        severity="warning",
        patterns=(r"(?:The sequence length used for profiling \(max_num_batched_tokens / max_num_seqs = "
                  r"(?P<profile_len>\d+)\)|The context length \((?P<context_len>\d+)\) of the model) is too "
                  r"short to hold the multi-modal embeddings in the worst case \((?P<mm_worst_case_tokens>\d+) "
                  r"tokens in total",),
        cause="the largest admitted image/video needs more tokens than one profiling sequence holds, so the "
              "start-up profile under-reserves memory and a large request can fail (or OOM) later.",
        fix="cap the media: --limit-mm-per-prompt '{\"image\":1,\"video\":0}' and mm_processor_kwargs "
            "max_pixels; or raise --max-num-batched-tokens / lower --max-num-seqs.",
        sources=("vllm-project/vllm#15802", "QwenLM/Qwen3-VL#738", "vllm-project/vllm#20123"),
        plan_change=_mm_profile_change,
    ),
    Signature(
        id="tp-heads",
        plan_change_doc="largest TP dividing the heads; the rest as PP",
        title="Attention heads not divisible by tensor-parallel size",
        patterns=(r"Total number of attention heads \((?P<heads>\d+)\) must be divisible by tensor parallel "
                  r"size \((?P<tp>\d+)\)",),
        cause="tensor parallelism splits attention heads evenly across ranks (Qwen2.5-VL-7B has 28 heads, "
              "the vision tower 16).",
        fix=_TP_FIX,
        sources=("vllm-project/vllm#2652", "vllm-project/vllm#414", "vllm-project/vllm#52435"),
        plan_change=_tp_heads_change,
    ),
    Signature(
        id="tp-shape-divisible",
        plan_change_doc="TP halved, PP doubled",
        title="A layer shape is not divisible by tensor-parallel size",
        patterns=(r"AssertionError: (?P<dim>\d+) is not divisible by (?P<tp>\d+)",),
        cause="a sharded dimension (e.g. the Qwen2.5-VL vision MLP width 3420, or vision heads) does not "
              "divide by the TP size.",
        fix="use a TP size that divides it, or --mm-encoder-tp-mode data for the vision tower; " + _TP_FIX,
        sources=("vllm-project/vllm#24004", "vllm-project/vllm#8097"),
        plan_change=_tp_halve,
    ),
    Signature(
        id="quant-shape-tp",
        plan_change_doc="TP halved, PP doubled",
        title="Quantized weight shape not aligned with tensor-parallel size",
        patterns=(r"The (?:input|output) size is not aligned with the quantized weight shape",),
        cause="with AWQ/GPTQ, intermediate_size / TP must be a multiple of the group size (128); "
              "Qwen2.5-VL-72B-AWQ's original 29568 = 128 x 231 fails at TP 2, 4, 8.",
        fix="read intermediate_size from the checkpoint's config.json (re-downloaded AWQ checkpoints are "
            "padded to 29696), lower TP and use pipeline parallel, or use a padded re-quantized checkpoint.",
        sources=("QwenLM/Qwen3-VL#831", "vllm-project/vllm#5675", "QwenLM/Qwen3#698"),
        plan_change=_tp_halve,
    ),
    Signature(
        id="marlin-shape-tp",
        plan_change_doc="TP halved, PP doubled",
        title="Marlin kernel: partition not divisible by min_thread_k / min_thread_n",
        patterns=(r"Weight (?:input_size_per_partition|output_size_per_partition) = (?P<partition>\d+) is not "
                  r"divisible by min_thread_[kn] = (?P<thread>\d+)",),
        cause="the Marlin kernel needs K % 128 == 0 and N % 64 == 0 per TP shard; the quantized layer split "
              "by this TP size does not satisfy it.",
        fix="lower --tensor-parallel-size (use pipeline parallel for the rest) or run with "
            "--quantization awq / gptq (non-Marlin kernel).",
        sources=("vllm-project/vllm#13640", "vllm-project/vllm#9913", "vllm-project/llm-compressor#54"),
        plan_change=_tp_halve,
    ),
    Signature(
        id="quant-capability",
        title="Quantization method needs a newer GPU",
        patterns=(r"The quantization method (?P<method>\S+) is not supported for the current GPU\. Minimum "
                  r"capability: (?P<min_cc>\d+)\. Current capability: (?P<cc>\d+)",
                  r"Quantization scheme is not supported for ',? *'the current GPU\. Min capability: "
                  r"(?P<min_cc2>\d+)\. ',? *'Current capability: (?P<cc2>\d+)"),
        cause="the quantization kernel was not built for this compute capability (e.g. fp8 W8A8 needs 8.9; "
              "Marlin kernels needed 8.0 before vLLM PR #29901).",
        fix="use a quantization this GPU supports (awq at CC 7.5, or bf16/fp16 weights), or a newer vLLM.",
        sources=("vllm-project/vllm#4327", "vllm-project/vllm#14040", "vllm-project/vllm#4202"),
    ),
    Signature(
        id="bf16-unsupported",
        plan_change_doc="`dtype` ← float16",
        title="bfloat16 on a GPU below compute capability 8.0",
        patterns=(r"Bfloat16 is only supported on GPUs with compute capability of at least 8\.0\. Your "
                  r"(?P<gpu>.+?) GPU has compute capability (?P<cc>[\d.]+)",),
        cause="Turing and Volta GPUs (RTX 2080 Ti, Titan RTX, T4, V100) have no native bfloat16.",
        fix="--dtype half (float16) on these nodes; with a mixed fleet use float16 everywhere.",
        sources=("vllm-project/vllm#1157", "vllm-project/vllm#946", "xorbitsai/inference#1804"),
        plan_change=_dtype_half,
    ),
    Signature(
        id="cuda-fork",
        plan_change_doc="`env.VLLM_WORKER_MULTIPROC_METHOD` ← spawn",
        title="CUDA initialised before vLLM forked its workers",
        patterns=(r"Cannot re-initialize CUDA in forked subprocess",),
        cause="something called torch.cuda before vLLM forked its worker processes; CUDA cannot be used "
              "in a forked child.",
        fix="export VLLM_WORKER_MULTIPROC_METHOD=spawn (and guard scripts with `if __name__ == '__main__':`).",
        sources=("vllm-project/vllm#8937", "vllm-project/vllm#7151", "vllm-project/vllm#12754"),
        plan_change=_spawn,
    ),
    Signature(
        id="no-kernel-image",
        title="The installed build has no kernels for this GPU",
        patterns=(r"no kernel image is available for execution on the device",),
        cause="torch/vLLM (or flash-attn) was compiled for other SM architectures than this GPU's "
              "(TORCH_CUDA_ARCH_LIST); common with brand-new (sm_120) or old (sm_75) cards.",
        fix="install a build that includes this GPU's sm_XY (`vlmctl doctor` compares the torch arch list "
            "with the GPU's compute capability) or rebuild with TORCH_CUDA_ARCH_LIST set.",
        sources=("vllm-project/vllm#14452", "vllm-project/vllm#16307", "vllm-project/vllm#19906"),
    ),
    Signature(
        id="model-path-missing",
        title="Model path missing on a node (treated as a Hub repo id)",
        patterns=(r"Repo id must be in the form 'repo_name' or 'namespace/repo_name': '(?P<path>/[^']*)'",),
        cause="the local model folder does not exist on the node that raised this, so transformers took the "
              "path for a Hugging Face repo id.",
        fix="put the model at the SAME path on every node (or a shared filesystem); `vlmctl cluster verify` "
            "checks path and fingerprint on each node.",
        sources=("gpustack/gpustack#1268", "vllm-project/vllm#5727", "vllm-project/vllm#12867"),
    ),
    Signature(
        id="pp-unsupported",
        title="Pipeline parallelism not supported for this architecture (old vLLM)",
        patterns=(r"Pipeline parallelism is (?:only supported for the following\s+architectures|not supported "
                  r"for this model)",),
        cause="this vLLM release does not implement SupportsPP for the model (Qwen2-VL era).",
        fix="upgrade vLLM (Qwen2.5-VL supports PP in current releases) or use TP only on one node.",
        sources=("QwenLM/Qwen3-VL#261", "vllm-project/vllm#7684", "vllm-project/vllm#9015"),
    ),
    Signature(
        id="world-size-gpus",
        title="More GPUs requested than this node has, without a multi-node backend",
        patterns=(r"world_size \((?P<world>\d+)\) is less than than max local gpu count \((?P<local>\d+)\)",
                  r"World size \((?P<world2>\d+)\) is larger than the number of available GPUs \((?P<local2>\d+)\)",
                  r"Tensor parallel size \((?P<tp>\d+)\) (?:exceeds available GPUs|cannot be larger than the "
                  r"number of available GPUs) \((?P<local3>\d+)\)"),
        cause="TP x PP exceeds the GPUs on this node and vLLM was not told to span nodes.",
        fix="add --distributed-executor-backend ray (with a Ray cluster up: `vlmctl cluster up`) or "
            "--nnodes/--node-rank for the mp backend; or lower TP x PP.",
        sources=("vllm-project/vllm#15217", "gpustack/gpustack#4280", "vllm-project/vllm PR #30140"),
    ),
    Signature(
        id="oom-vision-encoder-runtime",
        plan_change_doc="`env.VLLM_USE_V2_MODEL_RUNNER` ← 0, `gpu_memory_utilization` − the plan's encoder peak / total (else − 0.05), `max_pixels` halved",
        title="CUDA OOM in the vision encoder while serving a request",
        patterns=(_VISION_MODEL_FILES + r".{0,2000}?(?:OutOfMemoryError|CUDA out of memory)",
                  r"_execute_mm_encoder.{0,2000}?(?:OutOfMemoryError|CUDA out of memory)"),
        unless=(r"profile_run", r"determine_available_memory", r"_initialize_kv_caches", r"llm = LLM\(",
                r"EngineCore failed to start"),
        cause="a large image/video reached the vision encoder at request time and its attention peak did not "
              "fit: vLLM 0.26's V2 model runner does not reserve the encoder's peak during the start-up "
              "profile, so the KV cache took that memory.",
        fix="leave room for the encoder: lower --gpu-memory-utilization or set --kv-cache-memory; cap "
            "max_pixels, frames and videos per request (--limit-mm-per-prompt); or use the V1 model runner "
            "(VLLM_USE_V2_MODEL_RUNNER=0), which reserves the encoder peak at start-up.",
        sources=("measured by vlmctl: H100 80GB, vLLM 0.26.0, GPU calibration run A1 (docs/validation.md)", "vllm-project/vllm-ascend#3965"),
        plan_change=_encoder_oom_change,
        supersedes=("oom-startup", "oom-runtime"),
    ),
    Signature(
        id="oom-runtime",
        plan_change_doc="`gpu_memory_utilization` − 0.05, `max_num_seqs` halved",
        title="CUDA OOM while serving (outside the vision encoder)",
        patterns=(r"\bexecute_model\b.{0,3000}?(?:OutOfMemoryError|CUDA out of memory)",),
        unless=(r"profile_run", r"determine_available_memory", r"_initialize_kv_caches"),
        cause="a batch at request time needed more than the memory left beside the KV cache (sampler, "
              "logits of a large batch, CUDA-graph pools).",
        fix="lower --gpu-memory-utilization (leave headroom), --max-num-seqs or --max-num-batched-tokens.",
        plan_change=_runtime_oom_change,
        supersedes=("oom-startup",),
    ),
    Signature(
        id="oom-startup",
        plan_change_doc="`max_model_len` halved, video limit ← 0",
        title="CUDA OOM while the engine starts (load or memory profile)",
        patterns=(r"(?:OutOfMemoryError|CUDA out of memory)",),
        cause="weights plus the start-up profile's dummy batch (for Qwen2.5-VL: the largest image/video at "
              "max_pixels x mm limits) exceed the GPU.",
        fix="lower --max-model-len, --limit-mm-per-prompt (video 0 if unused) and max_pixels, raise TP/PP, or "
            "lower --gpu-memory-utilization if another process shares the GPU; `vlmctl plan` predicts it.",
        sources=("vllm-project/vllm#22173", "vllm-project/vllm#16570"),
        plan_change=_startup_oom_change,
    ),
)

BY_ID = {s.id: s for s in CATALOG}


def values_of(match: re.Match) -> Values:
    """Named groups of a match, numbers converted, unnamed-duplicate suffixes (``cc2``) folded."""
    out: Values = {}
    for key, raw in match.groupdict().items():
        if raw is None:
            continue
        name = key.rstrip("0123456789") or key
        try:
            value: Any = float(raw) if "." in raw or name.endswith("_gib") or name == "util" else _int(raw)
        except ValueError:
            value = raw
        out.setdefault(name, value)
    return out
