"""Which vLLM and transformers releases support which model architectures (Qwen family), with sources.

The failure catalogue reads this table to tell apart the causes that share vLLM's "failed to be inspected" /
"are not supported for now" messages: a vLLM too old for the architecture, a transformers too old for the model
type, a vLLM too old for the installed transformers, or (both releases fine) a checkpoint the release cannot read.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ArchSupport:
    """The first releases that support one architecture."""

    architectures: tuple[str, ...]
    """config.json ``architectures`` names (vLLM's registry keys)."""
    model_type: str
    """config.json ``model_type`` (transformers' CONFIG_MAPPING key)."""
    vllm: str
    """First vLLM release whose registry implements the architecture."""
    transformers: str | None
    """First transformers release that knows the model type (vLLM's model file imports its config/processor);
    None when the vLLM releases that support the model carry the config themselves."""
    sources: tuple[str, ...]


@dataclass(frozen=True)
class TransformersBreak:
    """A transformers release that removed something older vLLM releases import for an architecture."""

    model_type: str
    transformers: str
    """transformers releases from this one on (final releases, not .dev) break vLLM below ``vllm``."""
    vllm: str
    """First vLLM release that works with them."""
    what: str
    sources: tuple[str, ...]


ARCHITECTURES: tuple[ArchSupport, ...] = (
    ArchSupport(("Qwen2ForCausalLM",), "qwen2", "0.3.0", "4.37.0",
                ("vllm-project/vllm#3463 (maintainer: Qwen2 is supported in v0.3.0 and higher)",
                 "QwenLM/Qwen3#30 (transformers >= 4.37.0 for model type qwen2)")),
    ArchSupport(("Qwen2VLForConditionalGeneration",), "qwen2_vl", "0.6.1", "4.45.0",
                ("vllm-project/vllm PR #7905 (Qwen2-VL, merged 2024-09-10, first released in v0.6.1)",
                 "vllm-project/vllm#8139 (maintainer: qwen2_vl is not in transformers v4.44.2)")),
    ArchSupport(("Qwen2_5_VLForConditionalGeneration",), "qwen2_5_vl", "0.7.2", "4.49.0",
                ("vllm-project/vllm PR #12604 (Qwen2.5-VL)", "xorbitsai/inference PR #2788 (vLLM >= 0.7.2)",
                 "tenstorrent/tt-forge-onnx#2280 (Qwen2.5-VL needs transformers >= 4.49.0)")),
    ArchSupport(("Qwen3ForCausalLM", "Qwen3MoeForCausalLM"), "qwen3", "0.8.4", "4.51.0",
                ("vllm-project/vllm#17327 (vLLM v0.8.4 and higher natively supports Qwen3 and Qwen3MoE)",
                 "tenstorrent/tt-forge-onnx#2280 (Qwen3 needs transformers >= 4.51.0)")),
    ArchSupport(("Qwen3VLForConditionalGeneration", "Qwen3VLMoeForConditionalGeneration"), "qwen3_vl", "0.11.0",
                "4.57.0",
                ("xorbitsai/inference#4426 (Qwen3-VL needs vLLM >= 0.11.0)",
                 "OpenSenseNova/SenseNova-SI#25 (Qwen3-VL requires transformers >= 4.57.0)")),
    # vLLM 0.17 serves Qwen3.5 with transformers 4.x (its thread pins transformers < 5), so no transformers minimum
    ArchSupport(("Qwen3_5ForConditionalGeneration", "Qwen3_5MoeForConditionalGeneration"), "qwen3_5", "0.17.0",
                None,
                ("runpod-workers/worker-vllm#279 (vLLM 0.16.0: Qwen3_5MoeForConditionalGeneration not supported; "
                 "full Qwen 3.5 support in v0.17.0)",)),
)

BREAKS: tuple[TransformersBreak, ...] = (
    TransformersBreak("qwen2_5_vl", "4.49.0", "0.7.3",
                      "transformers 4.49.0 removed Qwen2_5_VLImageProcessor, which vLLM 0.7.2 imports",
                      ("vllm-project/vllm#12932 (maintainer: with transformers v4.49 you have to use vLLM 0.7.3 or "
                       "above)",)),
)

_CLASS_PREFIX = {"Qwen2_5_VL": "qwen2_5_vl", "Qwen2VL": "qwen2_vl", "Qwen3VL": "qwen3_vl", "Qwen3_5": "qwen3_5",
                 "Qwen3": "qwen3"}


def _version(text: str | None) -> tuple[tuple[int, ...], bool] | None:
    """'4.49.0.dev0' -> ((4, 49, 0), True); None when not a version."""
    m = re.match(r"\s*v?(\d+)\.(\d+)(?:\.(\d+))?(\.?(?:dev|rc)\d*)?", text or "")
    if not m:
        return None
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)), bool(m.group(4))


def support(name: str | None) -> ArchSupport | None:
    """The row for an architecture, a model type or a transformers class name (e.g. Qwen2_5_VLImageProcessor)."""
    if not name:
        return None
    for row in ARCHITECTURES:
        if name in row.architectures or name == row.model_type:
            return row
    # transformers' model type of a row's MoE architecture: qwen3_moe, qwen3_vl_moe, qwen3_5_moe (each
    # models/<type>/configuration_<type>.py) ship with the dense model type in the same releases
    if name.endswith("_moe"):
        base = support(name[:-4])
        return base if base is not None and any("Moe" in arch for arch in base.architectures) else None
    if re.search(r"(?:For[A-Z]\w*|Model)$", name):
        return None  # an architecture name the table does not list (e.g. a checkpoint's wrong Qwen2_5_VLModel)
    for prefix, model_type in sorted(_CLASS_PREFIX.items(), key=lambda t: -len(t[0])):
        if name.startswith(prefix):
            return support(model_type)
    return None


def known_break(name: str | None, vllm: str | None = None) -> TransformersBreak | None:
    """The transformers release documented to break vLLM releases for this model (below ``vllm`` when it is known).

    With no release on a log's page, that break is the one inspection failure recorded for the model."""
    row = support(name)
    v = _version(vllm)
    for brk in BREAKS:
        if row is not None and brk.model_type == row.model_type and (v is None or v[0] < _version(brk.vllm)[0]):
            return brk
    return None


@dataclass(frozen=True)
class Verdict:
    """What the versions in a log say about a model that vLLM could not load."""

    cause: str
    """'vllm-too-old' | 'transformers-too-old' | 'vllm-too-old-for-transformers' | 'supported'."""
    needs: str
    """The release to install, in words (e.g. 'vLLM >= 0.8.4 for Qwen3ForCausalLM')."""
    source: str


def check(name: str | None, vllm: str | None, transformers: str | None) -> Verdict | None:
    """The verdict for architecture / model type ``name`` under the releases a log shows (None: cannot tell)."""
    row = support(name)
    if row is None:
        return None
    arch = row.architectures[0]
    v = _version(vllm)
    t = _version(transformers)
    if v and v[0] < _version(row.vllm)[0]:
        return Verdict("vllm-too-old", f"vLLM >= {row.vllm} for {arch}", row.sources[0])
    if t and row.transformers:
        t_min = _version(row.transformers)[0]
        # a .dev build of the first release (installed from source before it shipped) counts as that release
        if t[0] < t_min and not (t[1] and t[0][:2] == t_min[:2]):
            return Verdict("transformers-too-old", f"transformers >= {row.transformers} for model type "
                           f"{row.model_type}", row.sources[-1])
    for brk in BREAKS:
        if brk.model_type != row.model_type or not v or not t or t[1]:
            continue
        if t[0] >= _version(brk.transformers)[0] and v[0] < _version(brk.vllm)[0]:
            return Verdict("vllm-too-old-for-transformers", f"vLLM >= {brk.vllm} with transformers "
                           f"{transformers} ({brk.what})", brk.sources[0])
    if v and t:
        return Verdict("supported", f"vLLM {vllm} and transformers {transformers} both support {arch}",
                       row.sources[0])
    return None
