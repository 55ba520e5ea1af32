"""The failure catalogue: complete entries, valid cross-references, version ranges, and serve reads it directly."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from vlmctl.engines.vllm import PROFILES, parse_version
from vlmctl.failures import BY_ID, CATALOG, SUBSYSTEMS

ROOT = Path(__file__).resolve().parents[2]


def test_at_least_60_signatures_with_every_field():
    assert len(CATALOG) >= 60
    assert len(BY_ID) == len(CATALOG)
    for s in CATALOG:
        assert re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", s.id), s.id
        assert s.subsystem in SUBSYSTEMS, s.id
        assert s.title and s.cause and s.fix and s.patterns and s.sources, s.id
        assert (s.plan_change is None) == (not s.plan_change_doc), s.id
        for other in s.supersedes:
            assert other in BY_ID and other != s.id, (s.id, other)
        for bound in s.versions:
            assert bound is None or parse_version(bound), (s.id, bound)
        assert s.specificity in (1, 2, 3)


def test_every_subsystem_the_triage_knows_has_signatures():
    assert {s.subsystem for s in CATALOG} == set(SUBSYSTEMS)


def test_version_ranges_select_profiles():
    old_only = BY_ID["kv-max-seq-len-v0"]
    assert old_only.applies_to("0.6.3") and not old_only.applies_to("0.26.0")
    assert BY_ID["kv-max-seq-len-v1"].applies_to("0.26.0")
    assert BY_ID["gloo-loopback"].applies_to(None) and BY_ID["gloo-loopback"].applies_to("not a version")
    assert BY_ID["kv-max-seq-len-v1"].profiles() == [v for v in PROFILES]
    assert BY_ID["pp-unsupported"].profiles() == []


@pytest.mark.parametrize("signature", CATALOG, ids=lambda s: s.id)
def test_no_pattern_matches_a_healthy_startup(signature):
    healthy = (ROOT / "tests" / "doctor" / "fixtures" / "healthy_startup_h100.log").read_text()
    from vlmctl.failures.match import normalise

    assert signature.search(normalise(healthy)[0]) is None


def test_serve_reads_the_catalogue_not_doctor():
    for path in (ROOT / "src" / "vlmctl" / "serve").glob("*.py"):
        assert "vlmctl.doctor" not in path.read_text(), path.name
    for path in (ROOT / "src" / "vlmctl" / "failures").glob("*.py"):
        text = path.read_text()
        assert "vlmctl.doctor" not in text and "vlmctl.cli" not in text and "vlmctl.serve" not in text, path.name


def test_the_wordings_of_every_vllm_profile_are_recognised():
    from vlmctl.failures import explain

    expected = {"free-memory": "free-memory-startup", "kv-no-memory": "kv-no-blocks",
                "kv-max-model-len": "kv-max-seq-len-v1", "max-model-len-derived": "max-len-exceeds-derived"}
    samples = dict(free=10.5, total=79.2, utilization=0.9, wanted=71.3, max_model_len=128000, needed_gib=7.03,
                   available_gib=2.1, estimate=" Based on the available memory, the estimated maximum model length "
                   "is 38208.", max_position_embeddings=128000, device="cuda:0", max_len_key="max_position_embeddings",
                   derived=128000, model_max_length=131072)
    for version, profile in PROFILES.items():
        for key, signature_id in expected.items():
            text = profile.wording(key, **samples)
            result = explain(f"vLLM API server version {version}\nValueError: {text}\n")
            assert result.primary == signature_id, (version, key, text)
            assert BY_ID[signature_id].applies_to(version)
    derived = explain(profile.wording("max-model-len-derived", **samples))
    assert derived.plan_change["max_model_len"]["to"] == 128000


def test_an_oom_after_the_server_started_is_a_request_time_oom():
    from vlmctl.failures import explain

    text = ("INFO:     Application startup complete.\n"
            "INFO 10-15 12:00:00 [loggers.py:1] Engine 000: Avg prompt throughput: 0.0 tokens/s, Running: 1 reqs\n"
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 232.00 MiB.\n")
    assert explain(text).primary == "oom-runtime"
    assert explain(text.split("\n", 2)[2]).primary == "oom-startup"


@pytest.mark.parametrize(("line", "expected"), [
    # Triton on an Ampere GPU asked for an FP8 (e4m3) kernel (vllm-project/vllm#17581, sgl-project/sglang#5871)
    ("ValueError(\"type fp8e4nv not supported in this architecture. The supported fp8 dtypes are "
     "('fp8e4b15', 'fp8e5')\")", "quant-capability"),
    # transformers' CONFIG_MAPPING lookup of a model type it predates (QwenLM/Qwen3#434)
    ("    raise KeyError(key)\nKeyError: 'qwen2'", "transformers-too-old"),
    ("KeyError: 'qwen3_moe'", "transformers-too-old"),
    # vLLM V0's input-length check (vllm-project/vllm#12165)
    ("ValueError: The prompt (total length 25938) is too long to fit into the model (context length 4096).",
     "prompt-too-long"),
    # round 5: Ray's autoscaler and `ray status` while a placement group waits (rllm-org/rllm#35)
    ("(autoscaler +34s) Error: No available node types can fulfill resource request defaultdict(<class 'float'>, "
     "{'CPU': 8.0, 'GPU': 8.0}).", "ray-placement-group"),
    ("Demands:\n {'GPU': 1.0, 'CPU': 1.0} * 8 (STRICT_PACK): 1+ pending placement groups", "ray-placement-group"),
    # ... unless the request names a node IP Ray does not have
    ("Error: No available node types can fulfill resource request {'node:172.16.10.33': 0.001, 'GPU': 1.0}.",
     "ray-node-ip-mismatch"),
])
def test_wordings_added_from_fresh_logs(line, expected):
    from vlmctl.failures import explain

    assert explain(line).primary == expected


def test_a_keyerror_that_is_not_a_model_type_is_not_a_transformers_version():
    from vlmctl.failures import explain

    assert explain("KeyError: 'qwen_api_key'").primary != "transformers-too-old"
    assert explain("KeyError: 'model.layers.0.mlp.gate_proj.weight'").primary != "transformers-too-old"
