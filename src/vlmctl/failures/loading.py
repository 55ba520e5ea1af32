"""Model and config loading failures, and versions (vLLM / transformers too old or too new for the model)."""
from __future__ import annotations

from typing import Any

from vlmctl.failures import plan_changes as pc
from vlmctl.failures.signature import Signature, Values

_CAUSE_OF = {"vllm-too-old": "vllm-arch-unsupported", "vllm-too-old-for-transformers": "vllm-arch-unsupported",
             "transformers-too-old": "transformers-too-old", "supported": "stale-checkpoint"}


def _named(values: Values, ctx: Any) -> str | None:
    name = next((values[k] for k in ("arch", "model_type", "cls") if values.get(k)), None) or ctx.architecture
    return str(name).split("'")[1] if name and "'" in str(name) else name


def _loading_cause(values: Values, ctx: Any, *, inspected: bool) -> tuple[str, Values] | None:
    """Which loading cause the releases in the log point to (engines/vllm/architectures.py), or None.

    ``inspected``: vLLM knew the architecture but importing its model file failed ('failed to be inspected'); then
    both releases supporting the model leaves the checkpoint.
    """
    from vlmctl.engines.vllm.architectures import check

    verdict = check(_named(values, ctx), ctx.vllm_version, ctx.transformers_version)
    if verdict is None or (verdict.cause == "supported" and not inspected):
        return None
    extra = {} if verdict.cause == "supported" else {"needs": verdict.needs, "source": verdict.source}
    return _CAUSE_OF[verdict.cause], extra


def _minimum(values: Values, ctx: Any, *, side: str) -> Values:
    """The first releases the table names for the model ({} when it does not know the model)."""
    from vlmctl.engines.vllm.architectures import support

    row = support(_named(values, ctx))
    if row is None:
        return {}
    if side == "transformers":
        if row.transformers is None:
            return {}
        return {"needs": f"transformers >= {row.transformers} for model type {row.model_type}",
                "source": row.sources[-1]}
    with_transformers = f" with transformers >= {row.transformers}" if row.transformers else ""
    return {"needs": f"vLLM >= {row.vllm}{with_transformers} for {row.architectures[0]}", "source": row.sources[0]}


def _inspection(values: Values, ctx: Any) -> tuple[str, Values] | None:
    """vLLM's registry messages: the cause the installed releases point to, with the release the model needs."""
    inspected = bool(values.get("inspect") or values.get("inspect2"))
    found = _loading_cause(values, ctx, inspected=inspected)
    # 'are not supported for now': vLLM's registry lacks the architecture, whatever transformers is installed
    if found is not None and (inspected or found[0] == "vllm-arch-unsupported"):
        return found
    # 'failed to be inspected': the registry has the architecture, so this vLLM is not too old for it; importing
    # its model file failed, which a transformers release vLLM was not built for explains (registry.py,
    # _raise_for_unsupported; vLLM's troubleshooting guide)
    if inspected:
        from vlmctl.engines.vllm.architectures import known_break

        brk = None if ctx.transformers_evidence else known_break(_named(values, ctx), ctx.vllm_version)
        if brk is not None:
            return "vllm-arch-unsupported", {"needs": f"vLLM >= {brk.vllm} with transformers >= {brk.transformers} "
                                                      f"({brk.what})", "source": brk.sources[0]}
        return "transformers-too-old", _minimum(values, ctx, side="transformers")
    extra = _minimum(values, ctx, side="vllm")
    return ("vllm-arch-unsupported", extra) if extra else None


def _transformers_side(values: Values, ctx: Any) -> tuple[str, Values] | None:
    """transformers' messages: vLLM too old for the installed transformers, else the transformers the model needs."""
    found = _loading_cause(values, ctx, inspected=False)
    if found is not None and found[0] != "transformers-too-old":
        return found
    extra = _minimum(values, ctx, side="transformers")
    return ("transformers-too-old", extra) if extra else None


SIGNATURES: tuple[Signature, ...] = (
    Signature(
        id="model-path-missing",
        title="Model path missing on a node (treated as a Hub repo id)",
        subsystem="model-loading",
        patterns=(r"Repo id must be in the form 'repo_name' or 'namespace/repo_name': '(?P<path>[/.~][^']*)'",
                  r"Incorrect path_or_model_id: '(?P<path2>[^']*)'\. Please provide either the path to a local "
                  r"folder or the repo_id of a model on the Hub",
                  r"(?P<path3>/\S+) does not appear to have a file named config\.json",
                  r"Invalid repository ID or local directory specified: '(?P<path4>[^']*)'",
                  # huggingface_hub >= 0.2x validator wording, and transformers' OSError for a missing local folder
                  r"Repo id must use alphanumeric chars.{0,160}?: '(?P<path5>[/.~][^']*)'",
                  r"'?(?P<path6>/[^' ]+)'? is not a local folder and is not a valid model identifier",
                  r"Can't load (?:the )?(?:configuration|config|tokenizer) (?:of|for) '(?P<path7>[/.~][^']*)'",
                  r"No such file or directory: '(?P<path8>/[^']*)/config\.json'",
                  # huggingface_hub's validator on an absolute path, whatever the message's wording
                  r"HFValidationError\b.{0,200}?: '(?P<path9>/[^']+)'"),
        # huggingface_hub's validate_repo_id raising for a model given as an absolute local path
        when=((r"validate_repo_id", r"(?:--model(?:-path)?|model=|model_path=|vllm serve)[= '\"]+/", r"$^"),),
        unless=(r"Error retrieving file list: .{0,300}retrying \d+ of \d+",),
        cause="the local model folder does not exist (or is empty) on the node that raised this: vLLM / "
              "transformers then took the path for a Hugging Face repo id (huggingface_hub's HFValidationError, "
              "or 'Incorrect path_or_model_id' in older transformers).",
        fix="put the model at the SAME path on every node (or a shared filesystem) and mount it into every "
            "container; `vlmctl cluster verify` checks path and fingerprint on each node.",
        sources=("gpustack/gpustack#1268", "vllm-project/vllm#13707", "runpod-workers/worker-vllm#75"),
        specificity=3,
    ),
    Signature(
        id="hf-gated",
        title="The Hub refused the download (gated repo or missing token)",
        subsystem="model-loading",
        patterns=(r"Cannot access gated repo", r"401 Client Error", r"GatedRepoError",
                  r"Access to model \S+ is restricted", r"You are trying to access a gated repo",
                  r"is restricted and you are not in the authorized list",
                  r"403 Client Error.{0,120}huggingface\.co",
                  # the failure in words (issue titles, wrappers that swallow the Hub's message)
                  r"(?:access|accessing|load|loading|download|downloading) (?:a |the )?gated (?:huggingface |hugging "
                  r"face |HF )?(?:repo|model)s?\b",
                  r"missing (?:HuggingFace|Hugging Face|HF) (?:permissions?|access)"),
        cause="the model is gated on the Hugging Face Hub and the node has no (or an unauthorised) token.",
        fix="accept the licence on the model page and provide HF_TOKEN through the environment (never on the "
            "command line), or download once and serve from a local path on every node.",
        sources=("huggingface/huggingface_hub docs: gated repos",),
        specificity=3,
    ),
    Signature(
        id="hf-offline",
        title="The node cannot reach the Hub and the model is not cached",
        subsystem="model-loading",
        patterns=(r"We couldn't connect to 'https://huggingface\.co'", r"LocalEntryNotFoundError",
                  r"Cannot find the requested files in the disk cache and outgoing traffic has been disabled",
                  r"(?:Max retries exceeded|ConnectTimeout|Connection reset).{0,200}huggingface\.co",
                  # urllib3 names the host first: HTTPSConnectionPool(host='huggingface.co', …): Max retries …
                  r"host='huggingface\.co'.{0,300}?(?:Max retries exceeded|NameResolutionError|Temporary failure in "
                  r"name resolution|Network is unreachable|ConnectTimeout)",
                  r"OfflineModeIsEnabled",
                  # a proxy or TLS interception between the node and the Hub
                  r"(?:SSLError|ProxyError)\b.{0,300}?huggingface\.co|huggingface\.co.{0,300}?(?:SSLError|ProxyError|"
                  r"CERTIFICATE_VERIFY_FAILED)"),
        cause="the node has no route to huggingface.co (air-gapped or proxy) and the files are not in its cache.",
        fix="download the model once and serve it from a local path present on every node (HF_HUB_OFFLINE=1), "
            "or set the proxy / HF_ENDPOINT mirror.",
        sources=("huggingface/huggingface_hub docs: offline mode",),
        specificity=3,
    ),
    Signature(
        id="vllm-arch-unsupported",
        title="This vLLM does not implement the model's architecture (vLLM too old, or too new for a removed one)",
        subsystem="versions",
        patterns=(r"Model architectures \[(?P<arch>[^\]]*)\] are not supported",
                  r"Model architectures \[(?P<arch2>[^\]]*)\] (?P<inspect>failed to be inspected)",
                  # the registry's own log of the failed inspection subprocess (vLLM >= 0.7)
                  r"(?P<inspect2>Error in inspecting model architecture) '(?P<arch5>\w+)'",
                  # newer releases name an architecture they dropped
                  r"Model architecture (?P<arch6>\w+) was supported in vLLM until v(?P<removed_after>[\d.]+)",
                  r"(?P<arch3>\w+) has no vLLM implementation and the Transformers implementation is not "
                  r"compatible with vLLM",
                  r"Cannot find model module '(?P<arch4>\w+)'"),
        cause="'are not supported for now': the installed vLLM's registry lacks the architecture (older than the "
              "model: Qwen2 needs 0.3.0, Qwen2-VL 0.6.1, Qwen2.5-VL 0.7.2, Qwen3 0.8.4, Qwen3-VL 0.11.0, Qwen3.5 0.17.0; or newer "
              "than a dropped architecture). 'failed to be inspected': vLLM has it but importing its model file "
              "failed, usually against a transformers release it was not built for (vLLM 0.7.2 with the "
              "transformers 4.49.0 release: Qwen2.5-VL needs vLLM 0.7.3).",
        fix="install a vLLM release that supports the model with the transformers and torch it pins (the table in "
            "vlmctl.engines.vllm.architectures), the same on every node; `vlmctl doctor` prints the installed "
            "versions.",
        sources=("vllm-project/vllm#3463", "vllm-project/vllm#12502", "vllm-project/vllm#12932",
                 "vllm-project/vllm docs: troubleshooting, 'Model failed to be inspected'",
                 "vllm/model_executor/models/registry.py:_raise_for_unsupported"),
        refine=_inspection,
        specificity=3,
    ),
    Signature(
        id="transformers-too-old",
        title="transformers is too old for the model type",
        subsystem="versions",
        patterns=(r"model type [`'\"]?(?P<model_type>\w+)[`'\"]? but Transformers does not recognize this "
                  r"architecture",
                  # transformers' CONFIG_MAPPING lookup of a model_type it does not know yet
                  r"KeyError: '(?P<model_type2>qwen\d\w*|gemma\d\w*|mllama|llava\w*|llama4\w*|mistral3|"
                  r"deepseek_v\d\w*|glm4\w*|phi\d\w*|idefics\d|paligemma|smolvlm|internvl\w*)'",
                  # a model class, config or processor the installed transformers does not have (yet)
                  r"cannot import name '(?P<cls>\w*(?:VL\w*|Config|Processor|ForConditionalGeneration|ForCausalLM))' "
                  r"from 'transformers[\w.]*'",
                  r"Unrecognized configuration class .{0,80}(?:Qwen\w*VL|qwen\w*_vl)",
                  # the rest of transformers' AutoConfig message when the model type line was cut
                  r"You can update Transformers with the command `pip install --upgrade transformers`\. If this "
                  r"does not work, and the checkpoint is very new"),
        # transformers' AutoConfig: the model_type lookup fails before the message (configuration_auto.py)
        when=((r"CONFIG_MAPPING\[config_dict\[.model_type.\]\]", r"KeyError|__getitem__",
               r"ModuleNotFoundError|No module named|trust_remote_code"),),
        cause="the installed transformers release predates this model type (qwen2: 4.37, qwen2_vl: 4.45, "
              "qwen2_5_vl: 4.49, qwen3_vl: 4.57), so its config cannot be parsed.",
        fix="upgrade transformers to a release that knows the model type (the version vLLM pins for it), on every "
            "node; `vlmctl doctor` prints the installed version.",
        sources=("xorbitsai/inference#2833", "hiyouga/LlamaFactory#5495", "QwenLM/Qwen3-VL#62", "QwenLM/Qwen3#434",
                 "huggingface/transformers: models/auto/configuration_auto.py AutoConfig.from_pretrained"),
        # a class transformers 4.49.0 removed, imported by vLLM 0.7.2: the vLLM is too old, not transformers
        refine=_transformers_side,
        specificity=3,
    ),
    Signature(
        id="max-len-exceeds-derived",
        title="max_model_len above what the model's config allows",
        subsystem="model-loading",
        patterns=(r"User-specified max_model_len \((?P<requested>\d+)\) is greater than (?:the derived "
                  r"max_model_len|max_model_len derived from the model's config) \((?:\w+=)?(?P<derived>\d+)",
                  r"User-specified max_model_len.{0,30}is greater than (?:the derived max_model_len|max_model_len "
                  r"derived)"),
        cause="--max-model-len exceeds max_position_embeddings (or the rope-scaled length) in config.json.",
        fix="use --max-model-len <= the derived value, or enable the model's documented rope scaling "
            "(--hf-overrides) rather than VLLM_ALLOW_LONG_MAX_MODEL_LEN.",
        sources=("vllm-project/vllm#3676", "vllm-project/vllm#7080"),
        plan_change=pc.max_len_derived,
        plan_change_doc="`max_model_len` ← the derived maximum",
        specificity=3,
    ),
    Signature(
        id="batched-tokens-below-max-len",
        title="max_num_batched_tokens below max_model_len without chunked prefill",
        subsystem="model-loading",
        # vllm/config.py:SchedulerConfig._verify_args (V0, and V1 with chunked prefill off); verl's own check
        patterns=(r"max_num_batched_tokens \((?P<batched>\d+)\) is smaller than max_model_len "
                  r"\((?P<max_model_len>\d+)\)",
                  r"max_num_batched_tokens is smaller than max_model_len"),
        cause="without chunked prefill one scheduler step must hold a whole prompt, so max_num_batched_tokens "
              "below max_model_len would reject every longer request; vLLM refuses the configuration at start-up.",
        fix="raise --max-num-batched-tokens to at least --max-model-len, lower --max-model-len, or enable "
            "chunked prefill (--enable-chunked-prefill).",
        sources=("vllm/config.py:SchedulerConfig._verify_args", "verl-project/verl vllm_rollout"),
        plan_change=pc.batched_tokens_to_max_len,
        plan_change_doc="`max_num_batched_tokens` ← max_model_len",
        specificity=3,
    ),
    Signature(
        id="pp-unsupported",
        title="Pipeline parallelism not supported for this architecture (old vLLM)",
        subsystem="versions",
        patterns=(r"Pipeline parallelism is (?:only supported for the following\s+architectures|not supported "
                  r"for this model)",),
        cause="this vLLM release does not implement SupportsPP for the model (Qwen2-VL era).",
        fix="upgrade vLLM (Qwen2.5-VL supports PP in current releases) or use TP only on one node.",
        sources=("QwenLM/Qwen3-VL#261", "vllm-project/vllm#7684", "vllm-project/vllm#9015"),
        versions=(None, "0.7"),
        specificity=3,
    ),
    Signature(
        id="torch-abi-mismatch",
        title="vLLM's compiled extension does not match the installed torch",
        subsystem="versions",
        # a CUDA driver API symbol (cuTensorMapEncodeTiled, cuGetProcAddress…) missing is the driver's libcuda
        patterns=(r"_C\S*\.so: undefined symbol(?!: cu[A-Z])", r"undefined symbol: _ZN\w*c10\w*",
                  r"vllm\._C.{0,80}(?:ImportError|undefined symbol(?!: cu[A-Z]))",
                  # any compiled extension (flash_attn, xformers, vllm_flash_attn) missing a torch C++ symbol
                  r"\.so: undefined symbol: _Z\w*?(?:3c10|2at|5torch)\w*",
                  # a CUDA 12 build next to CUDA 11 libraries (or the reverse)
                  r"libcudart\.so\.\d+: cannot open shared object file",
                  # torchvision built for another torch (its C++ ops did not register)
                  r"operator torchvision::nms does not exist"),
        cause="vLLM wheels (and flash-attn, xformers, torchvision) are built against one torch and CUDA version; a "
              "different torch (pip upgraded it, or a source build against another) leaves unresolved symbols, "
              "and a CUDA 12 build cannot load next to CUDA 11 libraries.",
        fix="reinstall vLLM with the torch it pins (a fresh venv or the official image), identical on every node.",
        sources=("vllm-project/vllm docs: installation",),
        specificity=3,
    ),
    Signature(
        id="cuda-driver-too-old",
        title="The NVIDIA driver is too old for this CUDA build",
        subsystem="versions",
        patterns=(r"The NVIDIA driver on your system is too old", r"CUDA driver version is insufficient for CUDA "
                  r"runtime version", r"forward compatibility was attempted on non supported HW",
                  r"unsatisfied condition: cuda>=[\d.]+, please update your driver",
                  # PTX JIT-compiled (Triton, flashinfer) by a CUDA toolkit newer than the driver
                  r"the provided PTX was compiled with an unsupported toolchain", r"cudaErrorInsufficientDriver",
                  # CUDA runtime error 803 (cudaErrorSystemDriverMismatch), as torch's cudaGetDeviceCount reports it
                  r"Error 803: system has unsupported display driver",
                  # a driver API entry point (CUDA >= 12.0: cuTensorMapEncodeTiled) the installed libcuda lacks
                  r"undefined symbol: (?P<driver_symbol>cu[A-Z]\w+)"),
        cause="torch/vLLM were built for a newer CUDA than the installed driver supports.",
        fix="upgrade the driver (or use wheels / an image built for the driver's CUDA version); `vlmctl doctor` "
            "prints the driver.",
        sources=("pytorch/pytorch docs: CUDA compatibility",),
        specificity=3,
    ),
    Signature(
        id="python-module-missing",
        title="A Python package the model or kernel needs is not installed",
        subsystem="versions",
        patterns=(r"ModuleNotFoundError: No module named '(?P<module>[\w.]+)'",
                  r"ImportError: (?P<module2>[\w.]+) is not installed",
                  # transformers' checks of a model's imports (remote code, requires_backends)
                  r"This modeling file requires the following packages that were not found in your environment: "
                  r"(?P<module3>[\w.-]+)",
                  r"requires the (?P<module4>[\w.-]+) library but it was not found in your environment"),
        unless=(r"No module named 'vllm\._C'", r"No module named 'vllm\.vllm_flash_attn"),
        cause="an optional dependency is missing from this environment (compressed_tensors for compressed-tensors "
              "/ AWQ checkpoints, flash_attn, xformers, qwen_vl_utils, decord for video): a trimmed image or a "
              "pip install that skipped extras.",
        fix="install the package named in the error with the version vLLM pins (or use the official image), the "
            "same on every node; `vlmctl doctor` prints the installed versions.",
        sources=("measured by vlmctl: H100 80GB, vLLM 0.26.0 bundle without compressed-tensors (calibration run B9)",),
        supersedes=("vllm-arch-unsupported",),
        specificity=2,
    ),
    Signature(
        id="trust-remote-code",
        title="The model needs --trust-remote-code",
        subsystem="model-loading",
        patterns=(r"requires you to execute the (?:configuration|modeling) file in that repo on your local machine",
                  r"Please pass the argument `trust_remote_code=True`",
                  # transformers' dynamic_module_utils raising before its message was captured
                  r"resolve_trust_remote_code\b.{0,600}?raise ValueError"),
        cause="the checkpoint ships custom Python (auto_map) that transformers only runs when allowed.",
        fix="add --trust-remote-code after checking the repository's code.",
        sources=("huggingface/transformers docs: trust_remote_code",),
        specificity=3,
    ),
    Signature(
        id="stale-checkpoint",
        title="The checkpoint files are incomplete or older than this release reads (re-download them)",
        subsystem="model-loading",
        patterns=(
            # safetensors' header errors: a truncated or partial download
            r"Error while deserializing header: (?P<error>HeaderTooLarge|HeaderTooSmall|MetadataIncompleteBuffer|"
            r"InvalidHeader\w*|incomplete metadata)",
            r"PytorchStreamReader failed reading zip archive: failed finding central directory",
            # transformers' AutoProcessor on a preprocessor_config.json written before the processor was renamed
            r"Unrecognized (?:image processor|processing class|feature extractor|video processor) in "
            r"(?P<path>\S+?)\.? Should have a",
        ),
        cause="the model folder holds files that are truncated (an interrupted download or copy) or come from an "
              "older revision of the repository than the transformers / vLLM release expects (Qwen2.5-VL "
              "checkpoints from before transformers 4.49 carry the old processor name).",
        fix="re-download the model (huggingface-cli download REPO --local-dir DIR, or delete the cached snapshot) "
            "and copy the same revision to every node; `vlmctl cluster verify` compares the folders' "
            "fingerprints across nodes.",
        sources=("TideDra/lmm-r1#48", "huggingface/safetensors: safetensors/src/tensor.rs SafeTensorError",
                 "huggingface/transformers: models/auto/image_processing_auto.py"),
        supersedes=("vllm-arch-unsupported",),
        specificity=3,
    ),
)
