"""Bad invocations of `plan` and `bench`: each is one `error:` line plus its fix, exit 2, no traceback,
no hang, and nothing is run before the input is known to be good."""
from __future__ import annotations

import json
import math
import os

import pytest

from vlmctl.cli.main import main

hypothesis = pytest.importorskip("hypothesis", reason="needs the test extra")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

MODEL = "Qwen/Qwen2.5-VL-3B-Instruct"
NOWHERE = ("--base-url", "http://127.0.0.1:9/v1", "--model", "x", "--prompt-words", "5")  # never contacted


def _bad(capsys, *argv: str, words: str = "") -> str:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 2, f"{argv}: exit {code}\n{out}\n{err}"
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    if err.startswith("Usage:"):  # click's own usage error: usage line, hint, one Error line
        assert lines[-1].startswith("Error: "), err
    else:
        assert err.startswith("error: ") and len(lines) <= 3 and lines[-1].strip().startswith("fix:"), err
    assert words.lower() in err.lower(), err
    return err


@pytest.fixture
def model_dir(tmp_path):
    assert main(["models", "materialize", MODEL, str(tmp_path / "m")]) == 0
    return tmp_path / "m"


@pytest.mark.parametrize("change, words", [
    ({"num_attention_heads": 0}, "num_attention_heads is 0"),
    ({"hidden_size": "abc"}, 'hidden_size is "abc"'),
    ({"hidden_size": -5}, "hidden_size is -5"),
    ({"num_hidden_layers": 2.5}, "num_hidden_layers is 2.5"),
    ({"vision_config": {"depth": 32, "patch_size": None, "hidden_size": 1e999}}, "vision_config.hidden_size"),
])
def test_plan_refuses_a_broken_config_json(capsys, model_dir, change, words):
    path = model_dir / "config.json"
    config = json.loads(path.read_text())
    for key, value in change.items():
        target = config["text_config"] if key in config.get("text_config", {}) else config
        if isinstance(value, dict):
            target[key].update(value)
        else:
            target[key] = value
    path.write_text(json.dumps(config).replace("Infinity", "1e999"))
    capsys.readouterr()
    _bad(capsys, "plan", str(model_dir), "--gpus", "h100-80gb:1", words=words)


@pytest.mark.parametrize("argv, words", [
    (("-q", "bogus"), "--quantization 'bogus'"),
    (("-q", "awq_marlni"), "did you mean 'awq_marlin'"),
    (("--gpu-memory-utilization", "nan"), "finite"),
    (("--max-model-len", "99999999999999999999"), "max_model_len"),
    (("-tp", "0"), "tensor_parallel_size"),
    (("--limit-mm-per-prompt", '{"image": 100000}'), "between 0 and 1024"),
    (("-o", "/nonexistent-vlmctl/dir/plan.json"), "does not exist"),
])
def test_plan_bad_flags(capsys, argv, words):
    _bad(capsys, "plan", MODEL, "--gpus", "h100-80gb:1", *argv, words=words)


def test_plan_output_checked_before_planning(capsys, tmp_path):
    _bad(capsys, "plan", MODEL, "--gpus", "h100-80gb:1", "-o", str(tmp_path), words="is a directory")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("argv, words", [
    (("--duration", "nan"), "--duration nan"),
    (("--duration", "inf"), "--duration inf"),
    (("--timeout", "0"), "--timeout 0"),
    (("--timeout", "nan"), "--timeout nan"),
    (("--request-rate", "nan"), "--request-rate"),
    (("--mix", "video@64x64x100000"), "between 1 and 1024 frames"),
    (("--mix", "image@0x0"), "between 1 and"),
    (("--mix", "image@100000x100000"), "between 1 and"),
    (("--max-concurrency", "100000000000"), "1 to 100000"),
    (("--num-prompts", "0"), "--num-prompts 0"),
    (("--out", "/nonexistent-vlmctl/dir/run.json"), "does not exist"),
])
def test_bench_bad_flags_fail_before_the_run(capsys, argv, words):
    _bad(capsys, "bench", *NOWHERE, *argv, words=words)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into a read-only folder")
def test_bench_out_unwritable_is_checked_before_the_run(capsys, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    _bad(capsys, "bench", *NOWHERE, "--out", str(folder / "run.json"), words="not writable")


@pytest.mark.parametrize("content, words", [
    ("[1, 2]", "not a vlmctl bench result"),
    ('{"a":', "not JSON"),
    ('{"schema": "vlmctl-bench/1"}', "no list of levels"),
    ('{"schema": "vlmctl-bench/1", "levels": [{"summary": {"ttft_s": "fast"}}]}', "share no load level"),
    (b"\xff\xfe\x00", "not UTF-8"),
])
def test_bench_compare_on_bad_files(capsys, tmp_path, content, words):
    path = tmp_path / "a.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    err = _bad(capsys, "bench", "compare", str(path), str(path), words="")
    assert words.lower() in err.lower() or "not a bench level" in err, err


def test_bench_compare_on_a_folder(capsys, tmp_path):
    _bad(capsys, "bench", "compare", str(tmp_path), str(tmp_path), words="not a regular file")


# -- properties --------------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="textimagevideo@x=0123456789,", max_size=30))
def test_mix_is_parsed_within_bounds_or_refused(text):
    from vlmctl.bench.workload import MAX_FRAMES, MAX_PIXELS, parse_mix
    from vlmctl.errors import ConfigError

    try:
        entries = parse_mix([text])
    except ConfigError as exc:
        assert exc.message and exc.fix and "\n" not in exc.message
        return
    for e in entries:
        assert e.kind == "text" or (e.width >= 1 and e.height >= 1 and e.width * e.height <= MAX_PIXELS)
        assert e.kind != "video" or 1 <= e.frames <= MAX_FRAMES


@settings(max_examples=200, deadline=None)
@given(u=st.floats(allow_nan=True, allow_infinity=True), length=st.integers(-(2**70), 2**70),
       q=st.one_of(st.none(), st.text(max_size=12)))
def test_plan_request_numbers_are_finite_and_bounded(u, length, q):
    from pydantic import ValidationError

    from vlmctl.plan.request import QUANTIZATIONS, PlanRequest

    try:
        req = PlanRequest(gpu_memory_utilization=u, max_model_len=length, quantization=q)
    except ValidationError:
        return
    assert math.isfinite(req.gpu_memory_utilization) and 0 < req.gpu_memory_utilization <= 1
    assert 16 <= req.max_model_len <= 2**24
    assert q is None or q in QUANTIZATIONS


@pytest.mark.parametrize("argv, env", [
    (("--api-key", "ключ"), {}),
    ((), {"VLMCTL_API_KEY": "tab\there"}),
    ((), {"OPENAI_API_KEY": "naïve"}),
])
def test_bench_key_that_cannot_be_a_header_is_one_line(capsys, monkeypatch, argv, env):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    _bad(capsys, "bench", *NOWHERE, *argv, words="the API key from")
