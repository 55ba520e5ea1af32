"""`cluster verify --plan`: each node's vLLM is reported, and a node whose release differs from the plan's is flagged."""
from __future__ import annotations

from tests.cluster.test_verify_analyse import SPEC, VERSIONS, _probe
from vlmctl.cluster.verify import analyse
from vlmctl.plan import make_plan


def _plan(version: str):
    return make_plan("Qwen/Qwen2.5-VL-3B-Instruct", gpus="titan-rtx:1", vllm_version=version).plan


def test_nodes_on_the_plans_release_are_reported_not_flagged():
    findings = analyse([_probe("a"), _probe("b", versions=dict(VERSIONS, vllm="0.26.1"))], SPEC, plan=_plan("0.26.0"))
    info = next(f for f in findings if f.id == "vllm-per-node")
    assert "a 0.26.0" in info.message and "b 0.26.1" in info.message and "plan is for vLLM 0.26.0" in info.message
    assert "vllm-plan-mismatch" not in [f.id for f in findings]


def test_a_node_on_another_release_is_an_error_naming_it():
    findings = analyse([_probe("a"), _probe("b")], SPEC, plan=_plan("0.33.0"))
    bad = [f for f in findings if f.id == "vllm-plan-mismatch"]
    assert [f.severity for f in bad] == ["error", "error"]
    assert "node 'a' runs vLLM 0.26.0" in bad[0].message and "0.33.0" in bad[0].message
    assert "--vllm-version 0.26.0" in bad[0].fix


def test_without_a_plan_nothing_changes():
    assert analyse([_probe("a"), _probe("b")], SPEC, {"a": "10.0.0.1", "b": "10.0.0.2"}) == []
