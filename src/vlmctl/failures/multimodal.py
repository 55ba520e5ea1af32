"""Multimodal input failures: per-request media limits, placeholder mismatches, the profile's worst case."""
from __future__ import annotations

from vlmctl.failures import plan_changes as pc
from vlmctl.failures.signature import Signature

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        id="mm-limit-exceeded",
        title="More images/videos in one request than --limit-mm-per-prompt allows",
        subsystem="multimodal",
        patterns=(r"At most (?P<limit>\d+) (?P<modality>image|video|audio)\(s\) may be provided in one "
                  r"(?:request|prompt)",
                  # vLLM 0.6 … 0.7 (multimodal/processing.py, inputs/registry.py): "input items" or "image items"
                  r"You set (?:'?)(?P<modality2>image|video)(?:'?)=(?P<limit2>\d+) \(or defaulted to 1\) in "
                  r"[`']--limit-mm-per-prompt[`'], but passed (?P<passed>\d+) (?:input|image|video) items?",
                  r"(?P<modality3>image|video) count per prompt .{0,20}exceeds the limit \((?P<limit3>\d+)\)",
                  r"You set or defaulted to (?P<modality4>image|video)=(?P<limit4>\d+) in --limit-mm-per-prompt, but "
                  r"passed (?P<passed2>\d+) (?:image|video) items",
                  r"(?:image|video)\(s\) may be provided in one (?:request|prompt)"),
        cause="the server admits at most N images/videos per request (--limit-mm-per-prompt; 1 by default in "
              "older vLLM) and the request, counting every turn of the conversation, carried more.",
        fix="raise --limit-mm-per-prompt (e.g. '{\"image\":4}') on the server, within what memory allows "
            "(`vlmctl plan --limit-mm-per-prompt ...` shows the cost), or send fewer images per request (drop "
            "old turns' images).",
        sources=("Visual-Agent/DeepEyes#109", "anomalyco/opencode#47930"),
        plan_change=pc.mm_limit,
        plan_change_doc="`limit_mm_per_prompt.<modality>` ← the count the request carried (and the planner's "
                        "`max_model_len` for it when the model and GPUs are in the log)",
        specificity=3,
    ),
    Signature(
        id="prompt-too-long",
        title="A request is longer than max_model_len (text plus image/video tokens)",
        subsystem="multimodal",
        patterns=(r"The decoder prompt \(length (?P<prompt_tokens>\d+)\) is longer than the maximum model length of "
                  r"(?P<max_model_len>\d+)",
                  r"This model's maximum context length is (?P<max_model_len2>\d+) tokens\. However, you requested "
                  r"(?P<prompt_tokens2>\d+) tokens",
                  r"Input prompt \((?P<prompt_tokens3>\d+) tokens\) is too long and exceeds limit of "
                  r"(?P<max_model_len3>\d+)",
                  # vLLM V0's input check (0.6-0.7)
                  r"The prompt \(total length (?P<prompt_tokens4>\d+)\) is too long to fit into the model "
                  r"\(context length (?P<max_model_len4>\d+)\)",
                  # vllm/v1/engine/processor.py: the encoder variant; the OpenAI server's newer wording
                  r"The encoder prompt \(length (?P<prompt_tokens5>\d+)\) is longer than the maximum model length "
                  r"of (?P<max_model_len5>\d+)",
                  r"maximum context length is (?P<max_model_len6>\d+) tokens\. However, you requested \d+ output "
                  r"tokens and your prompt contains at least (?P<prompt_tokens6>\d+) input tokens",
                  # the sentence without its numbers (an issue title, a message cut by the excerpt)
                  r"(?:prompt|input)(?: \(length \d+\))? is longer than the maximum model length",
                  # vllm/v1/engine/processor.py:_validate_model_input (0.7-0.10)
                  r"Prompt length of (?P<prompt_tokens7>\d+) is longer than the maximum model length"),
        cause="the request's text plus its images' tokens exceed max_model_len; each image costs up to "
              "max_pixels / 784 tokens (Qwen2.5-VL), so a few large images fill a short context.",
        fix="raise --max-model-len if memory allows (`vlmctl plan` shows what fits), lower max_pixels "
            "(--mm-processor-kwargs) so images cost fewer tokens, or send fewer images / shorter history.",
        sources=("Guanzhou-Ke/Knowledge-Bridger#4",),
        plan_change=pc.prompt_fit,
        plan_change_doc="`max_model_len` ← the request's length (rounded up to 16) when the planner says it fits the "
                        "model and GPUs in the log",
        specificity=3,
    ),
    Signature(
        id="mm-placeholder-mismatch",
        title="Image placeholders in the prompt do not match the image tokens",
        subsystem="multimodal",
        patterns=(r"Attempted to assign (?P<expr>[\d +x=]+?) = (?P<tokens>\d+) multimodal tokens to "
                  r"(?P<placeholders>\d+) placeholders",
                  r"Attempted to assign (?P<tokens2>\d+) = \d+ multimodal tokens to (?P<placeholders2>\d+) "
                  r"placeholders",
                  r"multimodal tokens to \d+ placeholders",
                  # transformers' Qwen2-VL / Qwen2.5-VL forward (modeling_qwen2_vl.py get_placeholder_mask)
                  r"(?:Image|Video) features and (?:image|video) tokens do not match: tokens: (?P<tokens3>\d+), "
                  r"features:? (?P<features>\d+)"),
        cause="the prompt's image placeholder tokens do not match what the processor produced for the images: a "
              "hand-built prompt (extra/missing <|image_pad|>), a prompt truncated through an image, or a "
              "transformers processor version that counts tokens differently from vLLM's.",
        fix="build prompts with the model's chat template (the OpenAI chat API does), do not truncate through "
            "images, and keep transformers at the version vLLM pins.",
        sources=("studio-dots-ai/dots.ocr#126", "studio-dots-ai/dots.ocr#210", "vllm-project/vllm#7996"),
        specificity=3,
    ),
    Signature(
        id="mm-profile-too-short",
        title="Profiling sequence too short for the worst-case image/video",
        subsystem="multimodal",
        severity="warning",
        patterns=(r"(?:The sequence length used for profiling \(max_num_batched_tokens / max_num_seqs = "
                  r"(?P<profile_len>\d+)\)|The context length \((?P<context_len>\d+)\) of the model) is too "
                  r"short to hold the multi-modal embeddings in the worst case \((?P<mm_worst_case_tokens>\d+) "
                  r"tokens in total",
                  r"Computed max_num_seqs \(min\(\d+, (?P<batched>\d+) // (?P<mm_worst_case_tokens2>\d+)\)\) to be "
                  r"less than 1"),
        cause="the largest admitted image/video needs more tokens than one profiling sequence holds, so the "
              "start-up profile under-reserves memory and a large request can fail (or OOM) later.",
        fix="cap the media: --limit-mm-per-prompt '{\"image\":1,\"video\":0}' and mm_processor_kwargs "
            "max_pixels; or raise --max-num-batched-tokens / lower --max-num-seqs.",
        sources=("vllm-project/vllm#15802", "QwenLM/Qwen3-VL#738", "vllm-project/vllm#20123"),
        plan_change=pc.mm_profile,
        plan_change_doc="`max_num_batched_tokens` ← worst-case multimodal tokens",
        specificity=3,
    ),
)
