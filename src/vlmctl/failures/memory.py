"""GPU memory failures (KV cache budget, start-up and request-time OOM) and host memory failures."""
from __future__ import annotations

import re

from vlmctl.failures import plan_changes as pc
from vlmctl.failures.signature import Signature
from vlmctl.models.families import FAMILIES

#: vLLM model files of every supported family (a vision-encoder frame in a traceback names one of them).
_VISION_MODEL_FILES = "(?:" + "|".join(sorted({re.escape(f.removesuffix(".py")) for fam in FAMILIES
                                               for f in fam.vllm_model_files})) + r")\.py"

_OOM = r"(?:OutOfMemoryError|CUDA out of memory|CUDA error: out of memory|Cuda failure 'out of memory'|(?<![A-Za-z])OOM(?![A-Za-z]))"
#: Lines only a server that finished starting prints: an OOM after one of them happened at request time.
_SERVING = (r"(?:Application startup complete|Uvicorn running on|Avg prompt throughput|\"POST /v1/\S+ HTTP|"
            r"Running: \d+ reqs|Received request)")
_STARTUP = (r"profile_run", r"determine_available_memory", r"determine_num_available_blocks", r"_initialize_kv_caches",
            r"EngineCore failed to start", r"llm = LLM\(", r"Engine process failed to start", r"_dummy_run",
            r"load_model", r"capture_model")

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        id="kv-max-seq-len-v1",
        title="max_model_len does not fit the KV cache (V1 engine)",
        subsystem="cuda-memory",
        # vLLM 0.8 … 0.26: "models's" / "model's", the needed GiB with or without its parenthesis, the estimate
        # after "Based on the available memory, the" or as its own sentence, or missing (0.9's cut message)
        patterns=(r"To serve at least one request with the models?'?s max seq len \((?P<max_seq_len>\d+)\),? "
                  r"\(?(?P<needed_gib>[\d.]+) GiB KV cache is needed, which is larger than the available "
                  r"(?:KV cache memory )?\((?P<available_gib>-?[\d.]+) GiB(?: per rank)?\)\.?(?:.{0,60}?estimated "
                  r"maximum model length (?:is )?(?P<estimated_max_model_len>\d+))?",
                  # the sentence without its numbers (an issue title, a message cut by the excerpt)
                  r"KV cache is needed, which is larger than the available KV cache memory",
                  r"To serve at least one request with the models?'?s max seq len"),
        # V1's check raising, the message itself cut by the excerpt (v1/core/kv_cache_utils.py)
        when=((r"\bcheck_enough_kv_cache_memory\(", r".", r"No available memory for the cache blocks"),),
        cause="after weights and the start-up profile's activation peak (for a VLM: the largest dummy image/"
              "video), the KV budget cannot hold one request of max_model_len tokens. Qwen2.5-VL defaults to "
              "max_model_len 128000.",
        fix="set --max-model-len to the estimated maximum (or less), or free KV memory: raise "
            "--gpu-memory-utilization, lower --limit-mm-per-prompt / max_pixels, add GPUs; `vlmctl plan` "
            "sizes this before launch.",
        sources=("vllm-project/vllm#16118", "vllm-project/vllm#25350"),
        versions=("0.8", None),
        plan_change=pc.max_len_from_kv,
        plan_change_doc="`max_model_len` ← the estimate vLLM printed (or scaled from the GiB figures), multiple of "
                        "16; "
                        "without numbers the planner's for the model and GPUs in the log",
        specificity=3,
    ),
    Signature(
        id="kv-max-seq-len-v0",
        title="max_model_len does not fit the KV cache (V0 engine)",
        subsystem="cuda-memory",
        patterns=(r"The model's max seq len \((?P<max_seq_len>\d+)\) is larger than the maximum number of "
                  r"tokens that can be stored in KV cache \((?P<kv_cache_tokens>\d+)\)",
                  r"is larger than the maximum number of tokens that can be stored in KV cache"),
        cause="the KV cache holds fewer tokens than one max_model_len request; what is left after weights and "
              "the profiling peak is too small (and depends non-monotonically on max_model_len).",
        fix="set --max-model-len to the KV capacity printed (or less), or raise --gpu-memory-utilization "
            "(at the risk of OOM).",
        sources=("vllm-project/vllm#10517", "QwenLM/Qwen3#295", "vllm-project/vllm#2418", "QwenLM/Qwen3#16"),
        versions=(None, "0.11"),
        plan_change=pc.max_len_from_kv,
        plan_change_doc="`max_model_len` ← the KV capacity vLLM printed, multiple of 16; without numbers the "
                        "planner's for the model and GPUs in the log",
        specificity=3,
    ),
    Signature(
        id="kv-no-blocks",
        title="No memory left for any KV block",
        subsystem="cuda-memory",
        patterns=(r"No available memory for the cache blocks",
                  r"the rest of the memory reserved for KV Cache is -[\d.]+ ?GiB",
                  r"Available KV cache memory: -[\d.]+ ?GiB",
                  r"Not enough memory\. Please try to increase --mem-fraction-static"),
        when=((r"raise_if_cache_size_invalid\(\s*num_gpu_blocks", r".", r"max seq len"),),
        cause="weights + activation peak (+ non-torch, + CUDA graphs) already exceed "
              "gpu_memory_utilization x total; for Qwen2.5-VL the video/image profiling peak is often >10 GiB.",
        fix="raise --gpu-memory-utilization, lower --max-model-len, --limit-mm-per-prompt and max_pixels "
            "(mm_processor_kwargs), or use more/larger GPUs; `vlmctl plan` shows each term per GPU.",
        sources=("vllm-project/vllm#10439", "vllm-project/vllm#13882"),
        plan_change=pc.kv_room,
        plan_change_doc="the planner's max_model_len / utilization / max_num_seqs for the model and GPUs in the log "
                        "(its TP/PP too when the launch's cannot fit), else `max_model_len` halved",
        context=(r"Available KV cache memory: (?P<available_kv_gib>-?[\d.]+) ?GiB",
                 r"torch peak memory increase: (?P<torch_peak_gib>[\d.]+) ?GiB",
                 r"weights memory: (?P<weights_gib>[\d.]+) ?GiB",
                 r"reserved for KV Cache is (?P<available_kv_gib>-?[\d.]+) ?GiB"),
        supersedes=("oom-startup",),
        specificity=3,
    ),
    Signature(
        id="free-memory-startup",
        title="Less free GPU memory than gpu_memory_utilization asks for",
        subsystem="cuda-memory",
        patterns=(r"Free memory on device (?:cuda:\d+ )?\((?P<free_gib>[\d.]+)/(?P<total_gib>[\d.]+) GiB\) on "
                  r"startup is less than desired GPU memory utilization \((?P<util>[\d.]+), "
                  r"(?P<requested_gib>[\d.]+) GiB\)",
                  r"Free memory on device.{0,60}?on startup is less than desired GPU memory utilization"),
        cause="gpu_memory_utilization is a fraction of TOTAL memory; another process (or a previous engine "
              "that did not exit) holds memory, so the requested share is not free.",
        fix="free the GPU (`nvidia-smi` shows who holds it) or lower --gpu-memory-utilization below "
            "free/total.",
        sources=("pytorch/pytorch#175666", "vllm-project/vllm#20305"),
        versions=("0.8", None),
        plan_change=pc.utilization_from_free,
        plan_change_doc="`gpu_memory_utilization` ← free/total − 0.01",
        specificity=3,
    ),
    Signature(
        id="gpu-memory-in-use",
        title="Other processes hold this GPU's memory",
        subsystem="cuda-memory",
        patterns=(r"Process \d+ has [\d.]+ [GM]iB memory in use\. Process \d+ has [\d.]+ [GM]iB memory in use",
                  # torch's OOM message names every other process on the GPU before "this process"
                  # (c10/cuda/CUDACachingAllocator.cpp): one other process holding a GiB or more
                  r"Process \d+ has (?:[1-9]\d*(?:\.\d+)?) GiB memory in use\. Including non-PyTorch memory, this "
                  r"process has",
                  r"out of memory at \S*cumem_allocator\.cpp",
                  # vLLM's profiler: the GPU's used/free memory moved under it (Worker.determine_available_memory)
                  r"Error in memory profiling"),
        cause="another process holds memory vLLM counted on (gpu_memory_utilization is a share of TOTAL): torch's "
              "OOM message lists other processes (an earlier engine, another job), or vLLM's sleep-mode allocator "
              "(cumem_allocator, used when vLLM shares GPUs with training) ran out.",
        fix="free the GPU (`nvidia-smi`; stop the old engine) or choose idle GPUs with CUDA_VISIBLE_DEVICES; "
            "`vlmctl doctor` flags GPUs already in use.",
        sources=("QwenLM/Qwen3-VL#1224",),
        supersedes=("oom-startup", "oom-runtime", "oom-startup-dummy-seqs"),
        specificity=3,
    ),
    Signature(
        id="oom-vision-encoder-runtime",
        title="CUDA OOM in the vision encoder while serving a request",
        subsystem="cuda-memory",
        patterns=(_VISION_MODEL_FILES + r".{0,2000}?(?:OutOfMemoryError|CUDA out of memory)",
                  r"_execute_mm_encoder.{0,2000}?(?:OutOfMemoryError|CUDA out of memory)"),
        unless=(r"profile_run", r"determine_available_memory", r"_initialize_kv_caches", r"llm = LLM\(",
                r"EngineCore failed to start"),
        cause="a large image/video reached the vision encoder at request time and its attention peak did not "
              "fit: vLLM 0.26's V2 model runner does not reserve the encoder's peak during the start-up "
              "profile, so the KV cache took that memory.",
        fix="leave room for the encoder: lower --gpu-memory-utilization or set --kv-cache-memory-bytes; cap "
            "max_pixels, frames and videos per request (--limit-mm-per-prompt); or use the V1 model runner "
            "(VLLM_USE_V2_MODEL_RUNNER=0), which reserves the encoder peak at start-up.",
        sources=("measured by vlmctl: H100 80GB, vLLM 0.26.0, GPU calibration run A1 (docs/validation.md)",
                 "vllm-project/vllm-ascend#3965"),
        plan_change=pc.encoder_oom,
        plan_change_doc="`env.VLLM_USE_V2_MODEL_RUNNER` ← 0, `gpu_memory_utilization` − the plan's encoder peak / "
                        "total (else the planner's, or − 0.05), `max_pixels` halved",
        supersedes=("oom-startup", "oom-runtime"),
        specificity=3,
    ),
    Signature(
        id="oom-cudagraph",
        title="CUDA OOM while capturing CUDA graphs at start-up",
        subsystem="cuda-memory",
        patterns=(r"(?:capture_end|capture_model|cuda/graphs\.py|CUDAGraph|cudagraph|Capture cuda graph)"
                  r".{0,1500}?" + _OOM,
                  _OOM + r".{0,600}?(?:capture_end|capture_model|cuda/graphs\.py)",
                  # V1's capture progress bar (gpu_model_runner.capture_model), while capture has not finished
                  r"Capturing CUDA graphs \((?:(?!Graph capturing finished|Application startup complete).){0,1500}?"
                  + _OOM),
        cause="CUDA graphs are captured after the KV cache took its share; the capture pool did not fit in what "
              "was left (V1 captures more sizes than V0).",
        fix="lower --gpu-memory-utilization a little, or serve with --enforce-eager (no CUDA graphs; slower "
            "decode).",
        sources=("vllm-project/vllm#15228", "vllm/v1/worker/gpu_model_runner.py:capture_model"),
        plan_change=pc.eager,
        plan_change_doc="`enforce_eager` ← true (and the planner's utilization without graphs)",
        supersedes=("oom-startup",),
        specificity=3,
    ),
    Signature(
        id="oom-startup-dummy-seqs",
        title="Start-up OOM: the profile's max_num_seqs dummy multimodal sequences do not fit (V0)",
        subsystem="cuda-memory",
        patterns=(r"_dummy_run\(max_num_batched_tokens, max_num_seqs\).{0,3000}?" + _OOM,
                  _OOM + r".{0,3000}?_dummy_run\(max_num_batched_tokens, max_num_seqs\)"),
        when=((_OOM,
               r"\A(?=.*?(?:_initialize_kv_caches|determine_num_available_blocks|profile_run))"
               r"(?=.*?(?:MiniCPM[\w.-]*?V\b|-VL\b|\bVL-|llava|InternVL|Qwen2?-?VL|vision|Pixtral|Idefics|"
               r"Phi-3-vision))",
               r"EngineCore|vllm/v1/|gpu_model_runner|V1 LLM engine"),
              # no phase shown, but a V0 release (< 0.8, before V1 became the default) serving a VLM: V0 sizes its
              # activations by the max_num_seqs dummy multimodal profile, so an OOM there is that profile's
              (_OOM,
               r"\A(?=.*?(?:\bvllm(?:\s*(?:==|:)|\s+(?:API server )?version:?)?\s*v?0\.[2-7]\.\d|V0 LLM engine|"
               r"LLM engine \(v0\.[2-7]\.))"
               r"(?=.*?(?:MiniCPM[\w.-]*?V\b|-VL\b|\bVL-|llava|InternVL|Qwen2?-?VL|vision|Pixtral|Idefics))",
               r"EngineCore|vllm/v1/|gpu_model_runner|V1 LLM engine|execute_model|load_model\b|when load(?:ing)?\b|"
               + _SERVING),),
        cause="vLLM's V0 start-up profile runs max_num_seqs sequences (default 256), each with dummy images: for "
              "models with few tokens per image (MiniCPM-V, small max_pixels) that is hundreds of images through "
              "the vision tower at once.",
        fix="lower --max-num-seqs (and --max-model-len / --limit-mm-per-prompt) so the dummy batch fits; V1 "
            "profiles one encoder budget instead.",
        sources=("vllm-project/vllm#7721", "vllm-project/vllm#4087", "OpenBMB/MiniCPM-V#369"),
        versions=(None, "0.11"),
        plan_change=pc.dummy_seqs_oom,
        plan_change_doc="`max_num_seqs` (and `max_model_len`) ← the planner's for the model and GPUs in the log, "
                        "else a quarter of the plan's",
        supersedes=("oom-startup",),
        specificity=3,
    ),
    Signature(
        id="oom-runtime",
        title="CUDA OOM while serving (outside the vision encoder)",
        subsystem="cuda-memory",
        patterns=(r"\bexecute_model\b.{0,3000}?" + _OOM,
                  # V1 logs "EngineCore encountered a fatal error" for a core that had started (v1/engine/core.py)
                  r"(?:Engine background task failed|AsyncEngineDeadError|EngineDeadError|Model actor is out of "
                  r"memory|EngineCore encountered a fatal error).{0,3000}?" + _OOM,
                  _SERVING + r".*?" + _OOM),
        unless=_STARTUP,
        when=((_OOM, r"gpu[-_]memory[-_]utilization[=:'\" ]+0?\.9[5-9]",
               r"capture|cudagraph|CUDA graph|Loading model"),),
        cause="a batch at request time needed more than the memory left beside the KV cache (sampler, "
              "logits of a large batch, images, CUDA-graph pools): gpu_memory_utilization leaves too little "
              "headroom.",
        fix="lower --gpu-memory-utilization (leave headroom), --max-num-seqs or --max-num-batched-tokens; cap "
            "image size (max_pixels).",
        sources=("vllm-project/vllm#26863", "vllm-project/vllm#5173"),
        plan_change=pc.runtime_oom,
        plan_change_doc="`gpu_memory_utilization` and `max_num_seqs` ← the planner's, else − 0.05 and halved (the "
                        "utilization the log launched with − 0.05 without a plan)",
        supersedes=("oom-startup",),
    ),
    Signature(
        id="oom-startup",
        title="CUDA OOM (start-up load or memory profile)",
        subsystem="cuda-memory",
        patterns=(_OOM,
                  # NCCL allocating its buffers on a GPU that is already full
                  r"NCCL WARN Cuda failure (?:\d+ )?'out of memory'", r"NCCL WARN Failed to CUDA (?:calloc|malloc)"),
        cause="weights plus the start-up profile's dummy batch (for Qwen2.5-VL: the largest image/video at "
              "max_pixels x mm limits) exceed the GPU, or a request overflowed what the KV cache left.",
        fix="lower --max-model-len, --limit-mm-per-prompt (video 0 if unused) and max_pixels, raise TP/PP, or "
            "lower --gpu-memory-utilization if another process shares the GPU; `vlmctl plan` predicts it.",
        sources=("vllm-project/vllm#22173", "vllm-project/vllm#17631"),
        plan_change=pc.startup_oom,
        plan_change_doc="the planner's max_model_len / utilization / max_num_seqs / mm limits for the model and GPUs "
                        "in the log, else `max_model_len` halved and video ← 0",
        # the rank that ran out of memory is why the collectives and the rendezvous around it failed
        supersedes=("nccl-cuda-error", "nccl-watchdog-timeout", "torch-store-timeout"),
        # the weights alone exceed the GPUs the launch used: whatever else the OOM message shows (other
        # processes, a request in flight), the model cannot load there
        # (or leave under a fifth of it: the start-up profile's dummy batch is not what to shrink then)
        prefer_when=lambda ctx: ctx.weights_exceed_gpus(0.8),
        specificity=1,
    ),
    Signature(
        id="host-oom-killed",
        title="A process was killed by the host's OOM killer (RAM, not GPU memory)",
        subsystem="host-memory",
        patterns=(r"(?:^| )(?-i:Killed)(?: |$)",
                  r"Out of memory: Kill(?:ed)? process \d+", r"oom-kill", r"invoked oom-killer",
                  r"Memory cgroup out of memory", r"\bOOMKilled\b", r"(?:exitcode|exit code|exit status):? -?9\b|"
                  r"(?:exitcode|exit code|exit status):? 137\b", r"Task was killed due to the node running low "
                  r"on memory", r"The process is killed by SIGKILL by OOM killer", r"exited with code 137",
                  r"died with <Signals\.SIGKILL: 9>", r"(?:gets?|got|was|were|is|be) killed by (?:the )?(?:system|kernel|OOM)", r"Memory on the node .{0,80} was \d+\.\d+GB / \d+\.\d+GB",
                  # Ray's memory monitor (docs: ray-core/scheduling/ray-oom-prevention; raylet node_manager.cc)
                  r"Workers? \(tasks ?/ ?actors\) killed due to memory pressure \(OOM\)",
                  r"ray\.exceptions\.OutOfMemoryError",
                  # an OOM the reporter names as host memory (issue titles: "System Memory OOM", "CPU OOM")
                  r"\b(?:system|host|CPU)\W{0,3}(?:memory|RAM)\W{0,4}(?:OOM|out of memory)\b",
                  r"\bCPU OOM\b", r"\bRAM\W{0,3}OOM\b", r"killed due to (?:high )?memory usage"),
        unless=(r"Killed by signal 2",
                r"Got fatal signal from worker processes, shutting down.{0,300}(?-i:Killed)"),
        cause="the host ran out of RAM (or the container's memory limit): each rank loads its checkpoint shards "
              "through CPU memory, Ray's object store and pinned swap space take more, and the kernel's OOM "
              "killer SIGKILLs a process without a Python traceback.",
        fix="check `dmesg | grep -i oom` on that node; give the container/VM more memory (Docker Desktop / WSL "
            "limits), load fewer ranks per node at once, or use a smaller/quantized "
            "checkpoint; `vlmctl doctor` on the node shows RAM and shm.",
        sources=("vllm-project/vllm#586", "vllm-project/vllm#1765", "TIBHannover/GeoEstimation#16"),
        supersedes=("ray-node-dead", "nccl-watchdog-timeout", "torch-store-timeout"),
        specificity=2,
    ),
    Signature(
        id="host-memory-mmap",
        title="Not enough host memory to map or allocate the checkpoint",
        subsystem="host-memory",
        patterns=(r"unable to mmap \d+ bytes", r"Cannot allocate memory \(12\)", r"std::bad_alloc",
                  r"DefaultCPUAllocator: (?:can't|not enough memory)"),
        cause="safetensors memory-maps each shard; with less RAM + swap than a shard (or a tight container "
              "memory limit) the mapping or allocation fails.",
        fix="add swap or RAM (raise the container's memory limit), or use a checkpoint with smaller shards.",
        sources=("vllm-project/vllm#759", "turboderp/exllama#245"),
        specificity=3,
    ),
    Signature(
        id="ray-object-store-shm",
        title="Ray's object store fell back to /tmp (/dev/shm too small)",
        subsystem="host-memory",
        severity="warning",
        patterns=(r"The object store is using /tmp instead of /dev/shm because /dev/shm has only (?P<shm_bytes>\d+) "
                  r"bytes available",),
        cause="the container's /dev/shm is tiny (Docker's 64 MB default); Ray's object store and NCCL both want "
              "it.",
        fix="run the container with --shm-size (at least 30 % of RAM for Ray) or --ipc=host; `vlmctl compose` "
            "sets shm_size.",
        sources=("vllm-project/vllm#1111",),
        specificity=2,
    ),
)
