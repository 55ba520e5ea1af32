"""Triage for logs no signature pins down: the subsystem from the strongest evidence lines, its checklist and the
command that gathers the missing evidence."""
from __future__ import annotations

import re

from pydantic import BaseModel, Field

from vlmctl.failures.match import normalise_line

#: subsystem -> (weight, regex) pairs scored on each log line.
_KEYWORDS: dict[str, tuple[tuple[float, str], ...]] = {
    "network": ((3, r"\bNCCL\b|nccl|\bGloo\b|gloo"), (2, r"socket|Connection refused|No route to host|"
                r"timed out.{0,40}connect|TCPStore|DistNetworkError|DistBackendError|rendezvous|bootstrap|"
                r"NCCL_SOCKET_IFNAME|ProcessGroup|all_reduce|allreduce|c10d|connection.{0,40}time.?out|"
                r"multi.?node|between (?:the )?(?:two )?(?:nodes|machines|hosts|computers)|跨主机|两台|"
                r"NET/IB|ibv_\w+|InfiniBand|\bRoCE\b|NCCL_IB_\w+|remote process exiting|"
                # the same in Chinese threads: multi-machine, multi-node, firewall, NIC, communication
                r"多机|多节点|防火墙|网卡|通信失败|通讯失败"),
                (1, r"/distributed/")),
    "ray": ((3, r"placement group|raylet|\bGCS\b|RayTaskError|ActorDiedError|ray start|ray status|autoscaler|"
                r"RayActorError|RaySystemError|No available node types|Ray does not allocate|missed too many heartbeats"),
            (1, r"\bray\b|Ray\b|RayWorker|actor")),
    "cuda-memory": ((4, r"out of memory|OutOfMemoryError|Not enough memory|显存不足|爆显存|显存溢出|显存不够|"
                        r"\bOOMs?\b"),
                    (3, r"KV cache|cache blocks|gpu_memory_utilization|mem.fraction|"
                    r"memory profiling|Tried to allocate"), (1, r"profile_run|determine_available_memory|GiB")),
    "host-memory": ((4, r"(?-i:Killed)\b|oom-kill|Cannot allocate memory|bad_alloc|mmap|low on memory|SIGKILL|"
                     r"memory pressure|内存不足|内存溢出|内存不够|内存泄漏"),
                    (4, r"(?:CPU|host|system) memory"), (2, r"\bRAM\b|swap|object store|/dev/shm")),
    "quantization": ((3, r"量化|quantiz|\bAWQ\b|awq|GPTQ|gptq|[Mm]arlin|\bfp8\b|compressed.tensors|bitsandbytes|"
                         r"\bW\d+A\d+|\bInt[48]\b|_Int[48]\b|-Int[48]\b|\bnf4\b|\bbnb\b|scaled_mm|\bmxfp4\b|\bnvfp4\b"),),
    "model-loading": ((3, r"config\.json|safetensors|HFValidationError|repo_id|Repo id|huggingface|from_pretrained|"
                      r"snapshot_download|tokenizer|No such file or directory"), (1, r"model_loader|load_weights")),
    "versions": ((3, r"ImportError|ModuleNotFoundError|undefined symbol|not supported for now|does not recognize|"
                  r"Version mismatch|version conflict|incompatible versions?|versions? (?:are |is )?incompatible"),
                 (2, r"AttributeError|transformers|upgrade|升级"), (1, r"version|版本")),
    "multimodal": ((3, r"multi.?modal|limit.mm.per.prompt|placeholder|pixel_values|mm_processor|image_grid_thw"),
                   (1, r"\bimage|\bvideo|vision|visual|processor|图片|图像|视频")),
    "gpu-arch": ((4, r"compute capability|kernel image|\bsm_\d+|FlashAttention|flash_attn|illegal memory access|"
                  r"CUBLAS_STATUS_(?!ALLOC_FAILED)|Triton|triton"), (2, r"xformers|attention backend|CUDA error|cuBLAS")),
    "parallelism": ((3, r"tensor.parallel|pipeline.parallel|divisible|world_size|World size|张量并行|流水线并行"),),
    "process": ((3, r"forked|\bspawn\b|start method|CUDA_VISIBLE_DEVICES|Address already in use|Segmentation fault|"
                 r"core dumped|SIGSEGV|SIGABRT"), (1, r"signal|exit code|exited")),
}
_COMPILED = {k: tuple((w, re.compile(p, re.I)) for w, p in v) for k, v in _KEYWORDS.items()}

#: Phrases that name one subsystem whatever else the line says (a kernel OOM-kill line also says "out of memory";
#: "Pipeline parallelism is only supported for ... architectures" is a version limit, not a layout one). A line with
#: one counts for that subsystem only, at twice the top keyword weight.
_DECISIVE: tuple[tuple[str, str], ...] = (
    ("host-memory", r"Killed process|oom-kill|oom_reaper|OOM killer|Memory cgroup out of memory|memory pressure|"
                    r"running low on memory|DefaultCPUAllocator|(?:system|host|CPU)\W{0,3}(?:memory|RAM)\W{0,4}"
                    r"(?:OOM|out of memory)|\bCPU OOM\b|\bRAM\W{0,3}OOM|killed due to (?:high )?memory usage|"
                    r"CPU\W{0,3}memory\W.{0,30}(?:more and more|grow|increas|leak)"),
    ("versions", r"are not supported for now|failed to be inspected|only supported for the following\s+architectures|"
                 r"driver on your system is too old|driver version is insufficient|undefined symbol|"
                 r"Version mismatch|does not recognize this architecture|has no vLLM implementation|"
                 r"Error in inspecting model architecture|cannot import name '\w+' from 'transformers|"
                 r"was supported in vLLM until|"
                 # the rest of transformers' AutoConfig message (models/auto/configuration_auto.py)
                 r"your version of Transformers is out of date|pip install --upgrade transformers|"
                 # vLLM's registry raising for an architecture it lacks, its message cut: the raising frames and
                 # the tail of 'Supported architectures: [...]' (registry.py:_raise_for_unsupported)
                 r"_raise_for_unsupported|Supported architectures: \[|(?:'\w+For(?:CausalLM|ConditionalGeneration)'"
                 r",\s*){4}|"
                 # a version conflict / mismatch / incompatibility in Chinese threads
                 r"版本(?:冲突|不匹配|不一致|不兼容)"),
    ("model-loading", r"requires you to execute the configuration file|argument `?trust_remote_code=True|gated repo|"
                      r"401 Client Error|is restricted\. You must|is not a local folder|Repo id must|"
                      r"gated (?:huggingface |HF )?(?:repo|model)"),
    ("quantization", r"quantization method \S+ is not supported|Quantization scheme is not supported|"
                     r"is not supported for quantization method|_scaled_mm is only supported on CUDA devices|"
                     r"FP8 models require|not aligned with the quantized weight shape|min_thread_[kn]"),
    ("gpu-arch", r"Bfloat16 is only supported|only supports? Ampere|no kernel image|compute capability .{0,30}"
                 r"(?:not supported|at least)"),
    ("parallelism", r"must be divisible by tensor parallel size|is not divisible by \d+"),
    ("multimodal", r"is longer than the maximum model length|too long to fit into the model|"
                   r"may be provided in one (?:request|prompt)|multimodal tokens to \d+ placeholders"),
    # cuBLAS's ALLOC_FAILED is a cudaMalloc failure inside cuBLAS (cuBLAS docs: cublasStatus_t), NCCL's
    # "Cuda failure 'out of memory'" a cudaMalloc failure inside NCCL: GPU memory, not the transport
    ("cuda-memory", r"CUDA out of memory|OutOfMemoryError|less than desired GPU memory utilization|"
                    r"CUBLAS_STATUS_ALLOC_FAILED|cudaErrorMemoryAllocation|Cuda failure \d* ?'out of memory'|"
                    r"CUDA error: out of memory|"
                    r"memory for the cache blocks|KV cache is needed|can be stored in KV cache|"
                    r"check_enough_kv_cache_memory"),
    ("network", r"NCCL WARN|unhandled system error|Gloo connectFullMesh|shared memory segment|ncclSystemError"),
    ("ray", r"Cannot provide a placement group|Waiting for creating a placement group|Failed to connect to GCS"),
    # torch's c10d socket.cpp: "The server socket has failed to listen on any local network address ... EADDRINUSE"
    ("process", r"Cannot re-initialize CUDA in forked subprocess|Address already in use|EADDRINUSE|"
                r"failed to listen on any local network address"),
)
_DECISIVE_COMPILED = tuple((s, re.compile(p, re.I)) for s, p in _DECISIVE)

#: (phrase, required anywhere in the log, subsystem): a phrase decisive only in a context. torch's "invalid device
#: ordinal" means a process addressed a GPU index outside its CUDA_VISIBLE_DEVICES; under Ray, which sets that
#: variable per actor, it is Ray's GPU assignment (vllm-project/vllm#25113, ray-project/ray#58449), else the
#: process's environment.
_IN_CONTEXT: tuple[tuple[str, str, str], ...] = (
    (r"invalid device ordinal", r"\bRay\b|RayWorker|ray start|ray cluster|RAY_ADDRESS|placement group", "ray"),
    (r"invalid device ordinal", r"", "process"),
)
_IN_CONTEXT_COMPILED = tuple((re.compile(p, re.I), re.compile(r, re.I) if r else None, s) for p, r, s in _IN_CONTEXT)
#: vLLM's and Ray's own INFO/DEBUG lines (the level is part of the prefix normalising strips).
_QUIET = re.compile(r"(?:^|[\s)\]|])(?:INFO|DEBUG)\s+(?:\d\d-\d\d \d\d:|[\w./]+:\d+\b|\[)")

#: subsystem -> (what to check, commands that gather the missing evidence).
PLAYBOOK: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "network": (
        ("/dev/shm in every container: --ipc=host or --shm-size (Docker gives 64 MB)",
         "NCCL_SOCKET_IFNAME and GLOO_SOCKET_IFNAME on every node = the NIC that routes to the other nodes",
         "firewall / security group open between the nodes (NCCL picks random ports)",
         "the same NCCL, torch and vLLM on every node",
         "isolate the transport: --disable-custom-all-reduce, NCCL_P2P_DISABLE=1, NCCL_IB_DISABLE=1"),
        ("NCCL_DEBUG=INFO NCCL_DEBUG_SUBSYS=INIT,NET <the same launch command>   # the WARN lines name the call",
         "vlmctl cluster verify --cluster cluster.yaml", "vlmctl doctor --head HEAD_IP   # on each node"),
    ),
    "ray": (
        ("`ray status` lists every node and all their GPUs before vLLM starts",
         "RAY_ADDRESS set for the driver (vLLM otherwise starts its own one-node Ray)",
         "each node's Ray IP (--node-ip-address) equals its VLLM_HOST_IP",
         "the same Ray and Python on every node"),
        ("ray status", "vlmctl cluster status --cluster cluster.yaml",
         "ray logs raylet.out --node-id NODE_ID | vlmctl doctor explain -"),
    ),
    "cuda-memory": (
        ("other processes on the GPU (`nvidia-smi`): gpu_memory_utilization is a share of TOTAL memory",
         "start-up (profile) or request time? Start-up: max_model_len, limit_mm_per_prompt, max_pixels; "
         "request time: headroom below gpu_memory_utilization, max_num_seqs",
         "the planner's per-GPU weights / activation / KV for the same model and GPUs"),
        ("nvidia-smi", "vlmctl plan MODEL --gpus TYPE:N   # memory per GPU and the settings that fit"),
    ),
    "host-memory": (
        ("the kernel's OOM killer (`dmesg`) on the node whose process died",
         "the container's / WSL's / Docker Desktop's memory limit and swap", "--swap-space and ranks per node"),
        ("dmesg -T | grep -i -E 'oom|killed process'   # on that node", "vlmctl doctor   # RAM and /dev/shm"),
    ),
    "quantization": (
        ("the checkpoint's quantization_config (method, bits, group size) and intermediate_size",
         "the GPU's compute capability against the kernel's minimum", "TP divides the quantized shapes"),
        ("vlmctl plan ./model-folder --gpus TYPE:N   # reads config.json: alignment and kernel",),
    ),
    "model-loading": (
        ("the model path exists with the same content on every node (and is mounted into every container)",
         "config.json / tokenizer files present", "Hub access: token for gated repos, or offline with a local path"),
        ("vlmctl cluster verify --cluster cluster.yaml   # path and fingerprint per node", "ls -l MODEL_PATH"),
    ),
    "versions": (
        ("vLLM supports the model's architecture; transformers knows its model type (first releases per "
         "architecture: vlmctl.engines.vllm.architectures)",
         "vLLM, torch, transformers, Ray and Python identical on every node"),
        ("vlmctl doctor   # on each node: installed versions", "vlmctl cluster verify --cluster cluster.yaml"),
    ),
    "multimodal": (
        ("images/videos per request (all turns) against --limit-mm-per-prompt",
         "image size and frames against max_pixels / num_frames", "prompts built by the model's chat template"),
        ("vlmctl plan MODEL --gpus TYPE:N --limit-mm-per-prompt '{\"image\":2}'   # what the limits cost",),
    ),
    "gpu-arch": (
        ("compute capability against dtype (bf16 needs 8.0) and attention backend (FlashAttention needs 8.0)",
         "the installed torch/vLLM arch list includes this GPU's sm_XY"),
        ("vlmctl doctor   # CC, torch arch list and the backends vLLM picks",),
    ),
    "parallelism": (
        ("TP divides the attention, KV and vision-encoder heads", "TP x PP equals the GPUs the cluster offers"),
        ("vlmctl plan MODEL --gpus TYPE:N   # the TP/PP layouts that pass every check",),
    ),
    "process": (
        ("VLLM_WORKER_MULTIPROC_METHOD=spawn", "containers started with --gpus; CUDA_VISIBLE_DEVICES",
         "ports 8000 / 6379 free"),
        ("vlmctl doctor",),
    ),
    "unknown": (
        ("the first error in the log (later ones are often consequences)", "every node's log, not only the head's"),
        ("vlmctl doctor   # on each node", "ray logs --follow | vlmctl doctor explain -"),
    ),
}


class Triage(BaseModel):
    """The subsystem a log most likely failed in, and what to do next."""

    subsystem: str
    scores: dict[str, float] = Field(default_factory=dict)
    evidence: list[str] = Field(default_factory=list)
    """The log lines that weighed most for the subsystem."""
    checklist: list[str] = Field(default_factory=list)
    commands: list[str] = Field(default_factory=list)
    """Commands that gather the evidence still missing."""


def _line_weight(line: str) -> float:
    if line.startswith('File "') or line.startswith("File \\"):
        return 0.3
    if re.match(r"^[\w.]+(?:Error|Exception)\b|\bNCCL WARN\b|^(?:RuntimeError|ValueError|AssertionError)", line):
        return 3.0
    if re.search(r"error|failed|fatal|killed|refused|timed out|cannot|unable", line, re.I):
        return 2.0
    if re.match(r"^(?:INFO|DEBUG)\b", line) or re.search(r"\bNCCL INFO\b", line):
        return 0.3
    # progress that went well (its INFO prefix is gone after normalising): loading finished, not failed
    if re.search(r"\d+% Completed|Loading weights took|Using model weights format|Init COMPLETE", line):
        return 0.3
    return 1.0


_FAILING = re.compile(r"error|fail|fatal|killed|refused|timed out|cannot|unable|exceed|not supported|insufficient",
                      re.I)


def triage(text: str) -> Triage:
    """Classify ``text`` by subsystem from its strongest evidence lines."""
    scores = {k: 0.0 for k in _COMPILED}
    per_line: dict[str, list[tuple[float, int, str]]] = {k: [] for k in _COMPILED}
    after_frame = False
    for index, raw in enumerate(text.splitlines()):
        line = normalise_line(raw).strip()
        if not line or line.startswith("# source:") or line.startswith("# expect:"):
            continue
        weight = _line_weight(line)
        # the source line Python prints under each traceback frame is code, not a message
        if after_frame and weight >= 1.0 and not re.match(r"^[\w.]+(?:Error|Exception|Warning)\b", line):
            weight = 0.3
        after_frame = line.startswith('File "') or line.startswith("File \\")
        decisive = next((s for s, p in _DECISIVE_COMPILED if p.search(line)), None)
        if decisive is None:
            decisive = next((s for p, r, s in _IN_CONTEXT_COMPILED if p.search(line) and (r is None or r.search(text))),
                            None)
        if decisive is None and weight > 0.3 and _QUIET.search(raw) and not _FAILING.search(line):
            weight = 0.3
        if decisive is not None:
            scores[decisive] += 8 * weight
            per_line[decisive].append((8 * weight, index, line[:300]))
            continue
        for subsystem, patterns in _COMPILED.items():
            hit = sum(w for w, p in patterns if p.search(line))
            if hit:
                scores[subsystem] += hit * weight
                per_line[subsystem].append((hit * weight, index, line[:300]))
    best = max(scores, key=lambda k: scores[k])
    subsystem = best if scores[best] > 0 else "unknown"
    evidence = [line for _, _, line in sorted(per_line.get(subsystem, []), key=lambda t: (-t[0], t[1]))[:3]]
    checklist, commands = PLAYBOOK[subsystem]
    return Triage(subsystem=subsystem, scores={k: round(v, 1) for k, v in scores.items() if v},
                  evidence=evidence, checklist=list(checklist), commands=list(commands))
