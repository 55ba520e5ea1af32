"""The architecture-support table: first vLLM / transformers releases per architecture and the verdicts it gives."""
from __future__ import annotations

import re

import pytest

from vlmctl.engines.vllm import parse_version
from vlmctl.engines.vllm.architectures import ARCHITECTURES, BREAKS, check, support


def test_every_row_names_parseable_releases_and_its_sources():
    names = [a for row in ARCHITECTURES for a in row.architectures]
    assert len(names) == len(set(names))
    for row in ARCHITECTURES:
        assert parse_version(row.vllm) and (row.transformers is None or re.fullmatch(r"\d+\.\d+\.\d+",
                                                                                       row.transformers)), row
        assert row.sources and all(re.search(r"\w/\w|#\d", s) for s in row.sources), row
    for brk in BREAKS:
        assert support(brk.model_type) is not None and brk.sources


@pytest.mark.parametrize(("name", "expected"), [
    ("Qwen2_5_VLForConditionalGeneration", "qwen2_5_vl"), ("qwen2_vl", "qwen2_vl"),
    ("Qwen2_5_VLImageProcessor", "qwen2_5_vl"), ("Qwen3MoeForCausalLM", "qwen3"),
    ("Qwen3VLMoeForConditionalGeneration", "qwen3_vl"), ("LlamaForCausalLM", None), (None, None),
])
def test_support_finds_a_row_by_architecture_model_type_or_class(name, expected):
    row = support(name)
    assert (row.model_type if row else None) == expected


@pytest.mark.parametrize(("name", "vllm", "transformers", "cause", "needs"), [
    ("Qwen3ForCausalLM", "0.6.3", None, "vllm-too-old", "vLLM >= 0.8.4"),
    ("Qwen2VLForConditionalGeneration", "0.6.0", "4.45.0", "vllm-too-old", "vLLM >= 0.6.1"),
    ("Qwen2_5_VLForConditionalGeneration", "0.7.3", "4.48.2", "transformers-too-old", "transformers >= 4.49.0"),
    ("Qwen2_5_VLForConditionalGeneration", "0.7.2", "4.49.0", "vllm-too-old-for-transformers", "vLLM >= 0.7.3"),
    ("Qwen2_5_VLForConditionalGeneration", "0.7.3", "4.49.0", "supported", ""),
    # the .dev build of the first release (installed from source before it shipped) is that release
    ("Qwen2_5_VLForConditionalGeneration", "0.7.2", "4.49.0.dev0", "supported", ""),
    ("Qwen3VLForConditionalGeneration", "0.11.0", "4.56.2", "transformers-too-old", "transformers >= 4.57.0"),
    ("Qwen3_5MoeForConditionalGeneration", "0.16.0", "4.57.6", "vllm-too-old", "vLLM >= 0.17.0"),
    # vLLM carries Qwen3.5's config: no transformers minimum to miss
    ("Qwen3_5ForConditionalGeneration", "0.17.1", "4.57.6", "supported", ""),
])
def test_check_names_the_release_to_install(name, vllm, transformers, cause, needs):
    verdict = check(name, vllm, transformers)
    assert verdict.cause == cause and verdict.needs.startswith(needs)


def test_check_says_nothing_without_a_known_model_or_a_version():
    assert check("LlamaForCausalLM", "0.2.0", "4.30.0") is None
    assert check("Qwen3ForCausalLM", None, None) is None
    assert check("Qwen3ForCausalLM", "0.9.0", None) is None


def test_an_unlisted_architecture_is_not_read_by_its_prefix():
    # a checkpoint whose config names Qwen2_5_VLModel is not the Qwen2.5-VL row (vLLM has no such architecture)
    assert support("Qwen2_5_VLModel") is None and support("Qwen3ForTokenClassification") is None
