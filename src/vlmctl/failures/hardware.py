"""GPU architecture (dtype, kernels, attention backends), quantization and tensor-parallel shape failures."""
from __future__ import annotations

from vlmctl.failures import plan_changes as pc
from vlmctl.failures.signature import Signature

_TP_FIX = ("use a tensor-parallel size that divides the shape and put the other GPUs in pipeline parallel "
           "(--pipeline-parallel-size); `vlmctl plan MODEL --gpus TYPE:N` picks a TP that passes every check "
           "(attention, KV and vision-encoder heads)")

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        id="bf16-unsupported",
        title="bfloat16 on a GPU below compute capability 8.0",
        subsystem="gpu-arch",
        patterns=(r"Bfloat16 is only supported on GPUs with compute capability of at least 8\.0\. Your "
                  r"(?P<gpu>.+?) GPU has compute capability (?P<cc>[\d.]+)",
                  r"Bfloat16 is only supported on GPUs with compute capability of at least 8\.0",
                  r"_check_if_gpu_supports_dtype.{0,400}?raise ValueError"),
        # the message cut off: the engine's config says bfloat16 and the log names a GPU without it; vLLM checks the
        # dtype when each worker initialises its device, before anything else can fail
        when=((r"dtype=torch\.bfloat16|dtype=.?bfloat16|--dtype[= ]bfloat16",
               r"V100|Tesla T4|\bT4\b|RTX 20[78]0|2080 ?Ti|TITAN RTX|Quadro RTX|\bP40\b|\bP100\b|GTX 10[6-8]0",
               r"out of memory|OutOfMemoryError|no kernel image|Cannot re-initialize|FlashAttention|NCCL error|"
               r"(?-i:Killed)|Casting torch\.bfloat16 to torch\.float16"),),
        cause="Turing, Volta and Pascal GPUs (RTX 2080 Ti, Titan RTX, T4, V100, P40) have no native bfloat16, "
              "and the checkpoint's dtype is bfloat16.",
        fix="--dtype half (float16) on these nodes; with a mixed fleet use float16 everywhere.",
        sources=("vllm-project/vllm#1157", "vllm-project/vllm#946", "xorbitsai/inference#1804"),
        plan_change=pc.dtype_half,
        plan_change_doc="`dtype` ← float16",
        specificity=3,
    ),
    Signature(
        id="gpu-cc-unsupported",
        title="GPU below vLLM's minimum compute capability",
        subsystem="gpu-arch",
        patterns=(r"GPUs with compute capability below (?P<min_cc>[\d.]+) are not supported",
                  r"compute capability (?P<cc>[\d.]+) is not supported"),
        cause="vLLM's CUDA kernels need compute capability 7.0 or newer (Pascal P100/P40 are 6.x).",
        fix="use GPUs with CC >= 7.0 (fp16) or >= 8.0 (bf16, FlashAttention); `vlmctl gpus` lists them.",
        sources=("vllm-project/vllm#1284",),
        supersedes=("bf16-unsupported",),
        specificity=3,
    ),
    Signature(
        id="no-kernel-image",
        title="The installed build has no kernels for this GPU",
        subsystem="gpu-arch",
        patterns=(r"no kernel image is available for execution on the device",
                  r"CUDA error 209", r"sm_(?P<sm>\d+) is not compatible with the current PyTorch installation",
                  # vLLM's CUTLASS W8A8 dispatch on a GPU it has kernels for in source but the wheel was not built
                  # with (csrc/quantization/cutlass_w8a8/scaled_mm_entry.cu; vllm-project/vllm#9419 on 7.5)
                  r"No compiled cutlass_scaled_mm for a compute capability less than CUDA device capability: "
                  r"(?P<cc>7[5-9]|[89]\d|\d{3})\b"),
        cause="torch/vLLM (or flash-attn, llama.cpp) was compiled for other SM architectures than this GPU's "
              "(TORCH_CUDA_ARCH_LIST); common with brand-new (sm_120) or old (sm_75) cards.",
        fix="install a build that includes this GPU's sm_XY (`vlmctl doctor` compares the torch arch list "
            "with the GPU's compute capability) or rebuild with TORCH_CUDA_ARCH_LIST set.",
        sources=("vllm-project/vllm#14452", "vllm-project/vllm#18835", "gpustack/gpustack#1382"),
        specificity=3,
    ),
    Signature(
        id="flash-attn-ampere",
        title="FlashAttention selected on a GPU older than Ampere",
        subsystem="gpu-arch",
        patterns=(r"FlashAttention only supports? Ampere GPUs or newer",
                  r"assert is_fa_version_supported\(",
                  r"FlashAttention (?:is )?not supported on (?:this|your) (?:GPU|device)"),
        # a traceback ending in a FlashAttention kernel (message cut) on a GPU the log names as pre-Ampere
        when=((r"flash_attn_varlen_func|flash_attn_func|varlen_fwd|vllm_flash_attn|flash_attn_interface",
               r"V100|Tesla T4|\bT4\b|2080|TITAN RTX|Quadro RTX|\bP40\b|\bP100\b|compute capability 7\.[05]|"
               r"\bsm_7[05]\b|Turing|Volta",
               r"out of memory|OutOfMemoryError"),
              # no GPU named, but the log ends in FlashAttention's kernel op with nothing after it: the checks that
              # op raises before running are the GPU's (CC >= 8.0) and its dtype's (flash-attn csrc mha_fwd)
              (r"(?:varlen_fwd|fwd_kvcache|flash_attn_cuda\.\w+)\(\s*\Z", r".",
               r"out of memory|OutOfMemoryError|A100|H100|H800|H20|A800|L40|RTX [34]0\d0|compute capability (?:8|9)")),
        cause="FlashAttention 2 needs compute capability 8.0; on Turing/Volta (T4, RTX 2080 Ti, V100) a backend or "
              "the vision encoder chose it anyway (forced VLLM_ATTENTION_BACKEND, a flash-attn install picked up "
              "by the ViT, or an old vLLM without a fallback).",
        fix="do not force FLASH_ATTN on these GPUs: unset VLLM_ATTENTION_BACKEND (or set XFORMERS / TRITON_ATTN / "
            "FLASHINFER as the vLLM version supports), uninstall flash-attn for the vision encoder, or use "
            "Ampere+ GPUs; `vlmctl doctor` prints the backends vLLM picks at this CC.",
        sources=("Dao-AILab/flash-attention README: Ampere or newer",),
        specificity=3,
    ),
    Signature(
        id="xformers-unsupported",
        title="xformers has no kernel for this GPU / dtype",
        subsystem="gpu-arch",
        patterns=(r"No operator found for `memory_efficient_attention_\w+` with inputs",),
        cause="the installed xformers build has no memory-efficient attention kernel for this compute capability "
              "(e.g. CC 7.0 V100 in recent xformers) or for the dtype/head size in use.",
        fix="use an attention backend the GPU supports (VLLM_ATTENTION_BACKEND=TORCH_SDPA / TRITON_ATTN as the "
            "version offers), an xformers build with this GPU's kernels, or a newer GPU; `vlmctl doctor` prints "
            "the backends for the CC.",
        sources=("vllm-project/vllm#10662",),
        specificity=3,
    ),
    Signature(
        id="triton-shared-memory",
        title="A Triton kernel needs more shared memory than this GPU has",
        subsystem="gpu-arch",
        patterns=(r"OutOfResources: out of resource: shared memory, Required: (?P<required>\d+), Hardware limit: "
                  r"(?P<limit>\d+)",
                  r"out of resource: shared memory"),
        cause="a Triton kernel's tile configuration (tuned for datacenter GPUs) exceeds this GPU's shared memory "
              "per block (consumer and older cards have less).",
        fix="use a backend/kernel that fits the GPU (another attention backend or quantization kernel), lower "
            "the block size where the kernel exposes it, or a vLLM release with configs for this GPU.",
        sources=("vllm-project/vllm#12498",),
        specificity=3,
    ),
    Signature(
        id="quant-capability",
        title="Quantization method needs a newer GPU",
        subsystem="quantization",
        patterns=(r"The quantization method (?P<method>\S+) is not supported for the current GPU\. Minimum "
                  r"capability: (?P<min_cc>\d+)\. Current capability: (?P<cc>\d+)",
                  r"Quantization scheme is not supported for ',? *'the current GPU\. Min capability: "
                  r"(?P<min_cc2>\d+)\. ',? *'Current capability: (?P<cc2>\d+)",
                  # Triton compiling an FP8 (e4m3) kernel on a GPU without FP8 (compute capability < 8.9)
                  r"type fp8e4nv not supported in this architecture",
                  # front ends that check first (ComfyUI-QwenVL), torchao's Float8 check
                  r"FP8 models require a GPU with Compute Capability (?P<min_cc3>[\d.]+) or higher",
                  r"Float8 \w+ (?:\w+ )?quantization is only supported on CUDA>=8\.9",
                  r"quantization method \S+ is not supported for the current GPU",
                  r"Quantization scheme is not supported for .{0,6}the current GPU",
                  # torch's FP8 GEMM (ATen Blas.cpp, _scaled_mm_out_cuda), which vLLM's fp8 layers call
                  r"torch\._scaled_mm is only supported on CUDA devices with compute capability >= 9\.0 or 8\.9",
                  # vLLM's CUTLASS W8A8 dispatch (csrc/quantization/cutlass_w8a8/scaled_mm_entry.cu) on a GPU below
                  # its lowest kernel (7.5); at 7.5 and above the build lacks the kernel (no-kernel-image)
                  r"No compiled cutlass_scaled_mm for a compute capability less than CUDA device capability: "
                  r"(?P<cc3>[1-6]\d|7[0-4])\b"),
        cause="the quantization kernel was not built for this compute capability (e.g. fp8 W8A8 needs 8.9; "
              "Marlin kernels needed 8.0 before vLLM PR #29901).",
        fix="use a quantization this GPU supports (awq at CC 7.5, or bf16/fp16 weights), or a newer vLLM.",
        sources=("vllm-project/vllm#4327", "vllm-project/vllm#14040", "vllm-project/vllm#4202",
                 "vllm-project/vllm#17581", "sgl-project/sglang#5871", "1038lab/ComfyUI-QwenVL#28",
                 "vllm-project/vllm#37033"),
        specificity=3,
    ),
    Signature(
        id="quant-dtype",
        title="The quantization method does not run in the dtype the launch uses",
        subsystem="quantization",
        patterns=(r"torch\.(?P<dtype>\w+) is not supported for quantization method (?P<method>\w+)\. Supported dtypes: "
                  r"\[torch\.(?P<supported>\w+)",
                  r"torch\.(?P<dtype2>\w+) is not supported for quantization method (?P<method2>\w+)"),
        cause="each quantization method lists the activation dtypes its kernels take (AWQ and GPTQ: float16; "
              "MXFP4: bfloat16); `--dtype auto` takes the checkpoint's torch_dtype, which is often the other one.",
        fix="pass --dtype with the supported dtype the message lists (float16 for AWQ / GPTQ); on a GPU without "
            "bfloat16 pick a checkpoint whose method runs in float16.",
        sources=("vllm: model_executor/model_loader _get_quantization_config (QuantizationConfig."
                 "get_supported_act_dtypes)",),
        plan_change=pc.dtype_supported,
        plan_change_doc="`dtype` ← the first dtype the message lists (float16 when it lists none)",
        specificity=3,
    ),
    Signature(
        id="quant-unknown-method",
        title="This vLLM does not know the checkpoint's quantization method",
        subsystem="quantization",
        patterns=(r"Unknown quantization method: (?P<method>\S+)", r"Quantization method specified in the model "
                  r"config \((?P<method2>\S+)\) does not match the quantization method specified in the "
                  r"`quantization` argument"),
        cause="the --quantization flag disagrees with the checkpoint's quantization_config, or the method is "
              "newer than this vLLM.",
        fix="drop --quantization (vLLM reads it from config.json) or pass the checkpoint's method; upgrade vLLM for "
            "new methods.",
        sources=("vllm-project/vllm docs: quantization",),
        specificity=3,
    ),
    Signature(
        id="quant-shape-tp",
        title="Quantized weight shape not aligned with tensor-parallel size",
        subsystem="quantization",
        patterns=(r"The (?:input|output) size is not aligned with the quantized weight shape",),
        # the message cut off: a quantized checkpoint at TP > 1 failing while a sharded linear layer is built
        when=((r"(?:Row|Column|MergedColumn|QKV)Para\w*|\w+ParallelLinear\(",
               r"\A(?=.*?(?:\bawq\b|gptq|quantization=(?!None)|-Int[48]\b))"
               r"(?=.*?(?:tensor.parallel.size\W{1,4}(?:is\W{1,3})?[2-9]|\s-tp\s*[2-9]|\btp[= ][2-9]))",
               r"out of memory|Killed|undefined symbol"),),
        cause="with AWQ/GPTQ, intermediate_size / TP must be a multiple of the group size (128); "
              "Qwen2.5-VL-72B-AWQ's original 29568 = 128 x 231 fails at TP 2, 4, 8.",
        fix="read intermediate_size from the checkpoint's config.json (re-downloaded AWQ checkpoints are "
            "padded to 29696), lower TP and use pipeline parallel, or use a padded re-quantized checkpoint.",
        sources=("QwenLM/Qwen3-VL#831", "vllm-project/vllm#5675", "vllm-project/vllm#11671"),
        plan_change=pc.tp_halve,
        plan_change_doc="the planner's TP/PP for the model and GPUs in the log (reads intermediate_size), else TP "
                        "halved and PP doubled",
        specificity=3,
    ),
    Signature(
        id="marlin-shape-tp",
        title="Marlin kernel: partition not divisible by min_thread_k / min_thread_n",
        subsystem="quantization",
        patterns=(r"Weight (?:input_size_per_partition|output_size_per_partition) = (?P<partition>\d+) is not "
                  r"divisible by min_thread_[kn] = (?P<thread>\d+)",
                  r"(?:input|output)_size_per_partition = \d+ is not divisible by min_thread_[kn]"),
        cause="the Marlin kernel needs K % 128 == 0 and N % 64 == 0 per TP shard; the quantized layer split "
              "by this TP size does not satisfy it.",
        fix="lower --tensor-parallel-size (use pipeline parallel for the rest) or run with "
            "--quantization awq / gptq (non-Marlin kernel).",
        sources=("vllm-project/vllm#13640", "vllm-project/vllm#9913", "vllm-project/llm-compressor#54"),
        plan_change=pc.tp_halve,
        plan_change_doc="the planner's TP/PP for the model and GPUs in the log, else TP halved and PP doubled",
        specificity=3,
    ),
    Signature(
        id="tp-heads",
        title="Attention heads not divisible by tensor-parallel size",
        subsystem="parallelism",
        patterns=(r"Total number of attention heads \((?P<heads>\d+)\) must be divisible by tensor parallel "
                  r"size \((?P<tp>\d+)\)",
                  r"number of attention heads.{0,12}must be divisible by tensor parallel size"),
        cause="tensor parallelism splits attention heads evenly across ranks (Qwen2.5-VL-7B has 28 heads, "
              "its vision tower 16: TP must divide both).",
        fix=_TP_FIX,
        sources=("vllm-project/vllm#2652", "vllm-project/vllm#414", "MIV-XJTU/FSDrive#21"),
        plan_change=pc.tp_from_heads,
        plan_change_doc="the planner's TP/PP for the model and GPUs in the log; else the largest power of two "
                        "<= TP dividing the heads, the rest as PP",
        specificity=3,
    ),
    Signature(
        id="tp-shape-divisible",
        title="A layer shape is not divisible by tensor-parallel size",
        subsystem="parallelism",
        patterns=(r"AssertionError: (?P<dim>\d+) is not divisible by (?P<tp>\d+)",
                  r"assert numerator % denominator == 0"),
        cause="a sharded dimension (e.g. the Qwen2.5-VL vision MLP width 3420, or vision heads) does not "
              "divide by the TP size.",
        fix="use a TP size that divides it, or --mm-encoder-tp-mode data for the vision tower; " + _TP_FIX,
        sources=("vllm-project/vllm#24004", "vllm-project/vllm#8097"),
        plan_change=pc.tp_halve,
        plan_change_doc="the planner's TP/PP for the model and GPUs in the log, else TP halved and PP doubled",
        specificity=2,
    ),
    Signature(
        id="tp-gpus-per-node",
        title="GPUs per node not divisible by the tensor-parallel size (old vLLM)",
        subsystem="parallelism",
        patterns=(r"The number of GPUs per node is not divisible by the number of tensor parallelism",),
        cause="old vLLM (Ray executor) required every node's GPU count to be a multiple of TP.",
        fix="use a TP that divides the GPUs per node (and the heads), or CUDA_VISIBLE_DEVICES to expose a "
            "multiple of TP; " + _TP_FIX,
        sources=("vllm-project/vllm#596",),
        versions=(None, "0.2"),
        plan_change=pc.tp_halve,
        plan_change_doc="the planner's TP/PP for the model and GPUs in the log, else TP halved and PP doubled",
        specificity=3,
    ),
    Signature(
        id="world-size-gpus",
        title="More GPUs requested than this node has, without a multi-node backend",
        subsystem="parallelism",
        patterns=(r"world_size \((?P<world>\d+)\) is less than than max local gpu count \((?P<local>\d+)\)",
                  r"World size \((?P<world2>\d+)\) is larger than the number of available GPUs \((?P<local2>\d+)\)",
                  r"Tensor parallel size \((?P<tp>\d+)\) (?:exceeds available GPUs|cannot be larger than the "
                  r"number of available GPUs) \((?P<local3>\d+)\)(?!\. This may result in Ray placement group)",
                  # a rank's local device index beyond the GPUs CUDA_VISIBLE_DEVICES leaves it
                  r"CUDA error: invalid device ordinal"),
        unless=(r"ray_utils|placement group|Connected to Ray cluster|RAY_ADDRESS|distributed-executor-backend[= ]ray",),
        cause="TP x PP exceeds the GPUs on this node and vLLM was not told to span nodes.",
        fix="add --distributed-executor-backend ray (with a Ray cluster up: `vlmctl cluster up`) or "
            "--nnodes/--node-rank for the mp backend; or lower TP x PP.",
        sources=("vllm-project/vllm#15217", "gpustack/gpustack#4280", "vllm-project/vllm PR #30140"),
    ),
)
