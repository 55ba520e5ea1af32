"""The vLLM profile index: lookup, nearest profile, and what every profile must carry."""
from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vlmctl.engines.vllm import NEWEST, PROFILES, parse_version, profile, resolve
from vlmctl.engines.vllm.profile import CONSTANTS
from vlmctl.errors import ConfigError


def test_newest_is_the_default():
    assert resolve(None).profile.version == NEWEST
    assert resolve("").exact


@pytest.mark.parametrize("text,expected", [("0.26.0", (0, 26, 0)), ("v0.26", (0, 26, 0)),
                                           ("0.26.0+cu130", (0, 26, 0)), ("0.27.0rc1", (0, 27, 0)),
                                           ("latest", None), ("0", None), ("", None)])
def test_parse_version(text, expected):
    assert parse_version(text) == expected


def test_patch_release_shares_its_minor_profile():
    r = resolve("0.26.3")
    assert r.profile.version == "0.26.0" and r.exact


def test_unknown_version_gets_the_nearest_older_profile_and_is_not_exact():
    r = resolve("0.99.0")
    assert r.profile.version == NEWEST and not r.exact
    oldest = list(PROFILES)[0]
    assert resolve("0.1.0").profile.version == oldest and not resolve("0.1.0").exact


def test_a_non_version_is_a_one_line_error_naming_it_and_the_fix():
    with pytest.raises(ConfigError) as err:
        resolve("newest")
    assert "'newest'" in str(err.value) and NEWEST in err.value.fix


@given(st.text(alphabet=string.printable, max_size=20))
def test_resolve_never_crashes(text):
    try:
        r = resolve(text)
    except ConfigError as exc:
        assert "\n" not in str(exc)
    else:
        assert r.profile.version in PROFILES


def test_unknown_runner_is_a_config_error():
    with pytest.raises(ConfigError, match="no model runner 'v9'"):
        profile().calibration("v9")


@pytest.mark.parametrize("version", list(PROFILES))
def test_every_profile_is_complete(version):
    p = PROFILES[version]
    assert p.default_runner in p.runners and set(p.runners) == set(p.calibrations)
    for name, cal in p.calibrations.items():
        assert cal.vllm_version == p.version and cal.model_runner == name and cal.source
        assert set(cal.unmeasured) <= set(CONSTANTS)
        assert cal.encoder_in_profile == p.runners[name].profiles_encoder
        assert (cal.sampler_bytes_per_logit > 0) == p.runners[name].profiles_sampler
    assert [n for n, _ in p.log_phases] == ["loading", "profiling", "graph capture", "ready"]
    for _, rx in p.log_phases:
        re.compile(rx)
    for key in ("free-memory", "kv-no-memory", "kv-max-model-len", "kv-max-model-len-estimate",
                "max-model-len-derived"):
        assert key in p.wordings
    assert 0 < p.default_utilization < 1 and p.flags.source and p.env.source


def test_batch_defaults_follow_the_gpu():
    rules = PROFILES["0.26.0"].batch_defaults
    assert rules.for_gpu("h100-80gb", 79.2) == (8192, 1024)
    assert rules.for_gpu("b200", 178.4, (10, 0)) == (8192, 1024)
    assert rules.for_gpu("a100-80gb", 79.2) == (2048, 256)
    assert rules.for_gpu("rtx-2080-ti", 10.7) == (2048, 256)


def test_kv_tokens_line_takes_the_smallest_worker():
    p = profile("0.26.0")
    log = "(Worker pid=1) INFO GPU KV cache size: 1,234,560 tokens\n(Worker pid=2) INFO GPU KV cache size: 99,984 tokens"
    assert p.kv_tokens_in(log) == 99984
    assert p.kv_tokens_in("nothing here") is None


def test_033_graph_capture_phase_waits_for_the_kv_budget():
    from vlmctl.serve.supervise import phase_patterns, phases_in

    profiling = ("INFO [v1/worker/gpu/model_runner.py:429] Model loading took 15.67 GiB memory and 0.7 seconds\n"
                 "INFO [v1/worker/gpu/model_runner.py:1164] Graph capturing finished in 9 secs, took 0.91 GiB\n")
    after = "INFO [v1/worker/gpu_worker.py:773] Available KV cache memory: 42.00 GiB\nCapturing CUDA graphs: 100%\n"
    new, old = phase_patterns("0.33.0"), phase_patterns("0.26.0")
    assert "graph capture" not in phases_in(profiling, new) and "graph capture" in phases_in(profiling, old)
    assert phases_in(profiling + after, new) == ["loading", "profiling", "graph capture"]


def test_033_differs_from_026_where_the_source_says():
    old, new = PROFILES["0.26.0"], PROFILES["0.33.0"]
    assert not old.runners["v2"].profiles_encoder and new.runners["v2"].profiles_encoder
    assert new.runners["v2"].estimates_cudagraphs and not old.runners["v2"].estimates_cudagraphs
    assert new.batch_defaults.for_gpu("b200", 178.4, (10, 0)) == (16384, 1024)
    assert new.batch_defaults.for_gpu("gb10", 119.7, (12, 1)) == (2048, 256)
    assert old.runner_choice.for_model(is_hybrid=True) == "v1" and new.runner_choice.for_model(is_hybrid=True) == "v2"
    assert old.runner_choice.for_model(is_moe=True, architectures=("Qwen2MoeForCausalLM",)) == "v2"
    assert "non_torch_gib" in old.memory_lines.patterns and "total_consumed_gib" in new.memory_lines.patterns
    assert old.wordings == new.wordings  # vLLM kept its error texts
    assert not new.measured_any and old.measured_any
