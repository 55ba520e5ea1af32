"""Matching on logs as they arrive: docker logs / compose / kubectl timestamps, colour codes, Ray prefixes."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vlmctl.failures import explain, normalise_line

BF16 = ("ValueError: Bfloat16 is only supported on GPUs with compute capability of at least 8.0. Your Tesla T4 GPU "
        "has compute capability 7.5.")


def test_docker_kubectl_and_colour_prefixes_are_stripped():
    assert normalise_line("2025-03-01T10:00:00.123456789Z ERROR 03-01 10:00:00 [core.py:1] x") == "x"
    assert normalise_line("\x1b[36m(RayWorkerWrapper pid=5085)\x1b[0m [E ProcessGroupNCCL.cpp:475] y") == "y"
    assert normalise_line(" [36m(RayWorkerVllm pid=5085) [0m z") == "z"
    assert normalise_line("2025-07-17 11:38:23.67774  >> ERROR 07-17 03:38:23 [core.py:398] w") == "w"
    assert normalise_line("vllm-head-1  | (EngineCore_DP0 pid=2) ERROR 11-20 14:02:11 [core.py:1] v") == "v"


def test_docker_logs_with_timestamps_still_match_and_point_at_the_line():
    text = "2025-03-01T10:00:00.000000001Z INFO starting\n2025-03-01T10:00:01.000000001Z " + BF16 + "\n"
    result = explain(text)
    assert result.primary == "bf16-unsupported" and result.matches[0].line == 2
    assert result.plan_change["dtype"]["to"] == "float16"


def test_a_generic_symptom_gives_way_to_the_specific_cause():
    text = ("NCCL error in: ../torch/csrc/distributed/c10d/NCCLUtils.hpp:317, unhandled system error (run with "
            "NCCL_DEBUG=INFO for details), NCCL version 2.21.5\nLast error:\n"
            "Error while creating shared memory segment /dev/shm/nccl-abc (size 9637888)\n")
    result = explain(text)
    assert result.primary == "nccl-shm-too-small"
    assert [m.id for m in result.matches] == ["nccl-shm-too-small"]


def test_a_wording_outside_the_logs_vllm_version_yields_to_one_inside_it():
    text = ("vLLM API server version 0.26.0\nThe model's max seq len (4096) is larger than the maximum number of "
            "tokens that can be stored in KV cache (3664).\n")
    # the V0 wording cannot come from 0.26; with nothing else matched it is still reported
    assert explain(text).primary == "kv-max-seq-len-v0"


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=400))
def test_any_text_gets_an_answer_and_never_raises(text):
    result = explain(text)
    assert result.known == bool(result.matches)
    assert (result.primary is None) == (not result.matches)
