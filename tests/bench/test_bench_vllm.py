"""bench with `vllm bench serve`'s flag names and result JSON, against real servers on 127.0.0.1."""
from __future__ import annotations

import json
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.bench.bench_helpers import server_stats
from tests.bench.test_bench import vlmctl

from vlmctl.bench.vllm_format import parse_goodput
from vlmctl.errors import ConfigError

#: The keys `vllm bench serve --save-result` writes for a generation run without --save-detailed
#: (vllm/benchmarks/serve.py at 009e6d4a: main_async's setup keys + benchmark()'s result dict +
#: process_one_metric's mean_/median_/std_/p{P}_ fields for ttft, tpot, itl and e2el).
VLLM_KEYS = {
    "date", "endpoint_type", "backend", "label", "model_id", "tokenizer_id", "num_prompts", "request_rate",
    "burstiness", "max_concurrency", "duration", "completed", "failed", "total_input_tokens",
    "total_output_tokens", "request_throughput", "request_goodput", "output_throughput", "total_token_throughput",
    "max_output_tokens_per_s", "max_concurrent_requests",
} | {f"{stat}_{m}_ms" for stat in ("mean", "median", "std", "p50", "p99") for m in ("ttft", "tpot", "itl", "e2el")}


@pytest.mark.integration
def test_vllm_flag_names_and_vllm_result_format(tiny_server, tmp_path):
    root = tiny_server.removesuffix("/v1")  # vLLM's --base-url is the server root
    out = tmp_path / "vllm.json"
    proc = vlmctl("bench", "--base-url", root, "--max-concurrency", "1,3", "--num-prompts", "6", "--num-warmups",
                  "1", "--random-output-len", "5", "--random-input-len", "12", "--result-format", "vllm",
                  "--goodput", "ttft:60000", "--goodput", "tpot:60000", "--metric-percentiles", "50,99", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 2  # one object per level, as vLLM's --append-result writes
    objs = [json.loads(line) for line in lines]
    stats = server_stats(tiny_server)
    assert stats["ok"] == 12 + 2  # measured + one warm-up per level
    for obj, conc in zip(objs, (1, 3)):
        assert VLLM_KEYS <= set(obj), VLLM_KEYS - set(obj)
        assert obj["max_concurrency"] == conc and obj["request_rate"] == "inf" and obj["model_id"] == "tiny-vlm"
        assert obj["completed"] == 6 and obj["failed"] == 0 and obj["total_output_tokens"] == 30
        assert obj["request_throughput"] == pytest.approx(6 / obj["duration"], rel=1e-3)
        assert obj["request_goodput"] == pytest.approx(obj["request_throughput"], rel=1e-3)  # every request in SLO
        assert 0 < obj["median_ttft_ms"] <= obj["p99_ttft_ms"] <= obj["p99_e2el_ms"]
        assert obj["p50_ttft_ms"] == obj["median_ttft_ms"] and obj["std_itl_ms"] >= 0
        assert 1 <= obj["max_concurrent_requests"] <= conc
        assert obj["max_output_tokens_per_s"] >= 1
    # no tokenizer for the tiny server: 12 words per prompt, and the tiny server counts words as tokens
    assert sum(o["total_input_tokens"] for o in objs) == 12 * 12 and stats["prompt_tokens"] == 14 * 12


@pytest.mark.integration
def test_compare_reads_vlmctl_and_vllm_results(tiny_server, tmp_path):
    ours, theirs = tmp_path / "ours.json", tmp_path / "theirs.json"
    for path, fmt in ((ours, "vlmctl"), (theirs, "vllm")):
        proc = vlmctl("bench", "--api-base", tiny_server, "--concurrency", "2", "--requests", "4", "--warmup", "0",
                      "--max-tokens", "4", "--result-format", fmt, "--out", str(path), "--json")
        assert proc.returncode == 0, proc.stderr
    proc = vlmctl("bench", "compare", str(ours), str(theirs), "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["metric"]: r for r in json.loads(proc.stdout)["rows"]}
    assert rows["failed"]["a"] == rows["failed"]["b"] == 0
    vllm_obj = json.loads(theirs.read_text())
    assert rows["TTFT p99"]["b"] == pytest.approx(vllm_obj["p99_ttft_ms"] / 1000)
    assert rows["req/s"]["b"] == vllm_obj["request_throughput"]
    assert rows["E2E p50"]["level"] == "c=2"


def test_compare_reads_a_file_vllm_wrote(tmp_path):
    """Objects with only vLLM's own keys (no vlmctl extras), one per line; request_rate a number."""
    base = {"date": "20261129-101500", "backend": "openai-chat", "model_id": "Qwen/Qwen2.5-VL-7B-Instruct",
            "num_prompts": 100, "burstiness": 1.0, "max_concurrency": None, "duration": 50.0, "completed": 100,
            "failed": 0, "total_input_tokens": 51200, "total_output_tokens": 12800, "request_throughput": 2.0,
            "request_goodput": None, "output_throughput": 256.0, "total_token_throughput": 1280.0,
            "mean_ttft_ms": 120.0, "median_ttft_ms": 100.0, "std_ttft_ms": 30.0, "p99_ttft_ms": 300.0,
            "mean_e2el_ms": 5000.0, "median_e2el_ms": 4800.0, "std_e2el_ms": 500.0, "p99_e2el_ms": 7000.0}
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({**base, "request_rate": 2.0}) + "\n" + json.dumps({**base, "request_rate": "inf"}))
    b.write_text(json.dumps({**base, "request_rate": 2.0, "p99_ttft_ms": 600.0}))
    proc = vlmctl("bench", "compare", str(a), str(b), "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["metric"]: r for r in json.loads(proc.stdout)["rows"]}
    assert rows["TTFT p99"] == {"level": "rate=2/s", "metric": "TTFT p99", "a": 0.3, "b": 0.6, "ratio": 2.0,
                                "better": "A"}
    assert "TPOT p50" not in rows  # neither file has it


@pytest.mark.integration
def test_openai_env_fallbacks(tiny_server_with_key, tmp_path):
    env = {**os.environ, "OPENAI_BASE_URL": tiny_server_with_key, "OPENAI_API_KEY": "sekret"}
    proc = vlmctl("bench", "--max-concurrency", "1", "--num-prompts", "2", "--num-warmups", "0",
                  "--out", str(tmp_path / "env.json"), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["levels"][0]["summary"]["completed"] == 2


def test_vllm_style_flag_errors_are_one_line():
    proc = vlmctl("bench", "--goodput", "latency:5")
    assert proc.returncode == 2 and "--goodput 'latency:5'" in proc.stderr and "fix:" in proc.stderr
    proc = vlmctl("bench", "--request-rate", "0")
    assert proc.returncode == 2 and "--request-rate '0'" in proc.stderr
    proc = vlmctl("bench", "--request-rate", "inf")
    assert proc.returncode == 2 and "--max-concurrency" in proc.stderr
    proc = vlmctl("bench", "--base-url", "localhost:8000")
    assert proc.returncode == 2 and "--base-url 'localhost:8000' is not an http(s) URL" in proc.stderr


@given(st.text(max_size=30))
def test_goodput_parser_accepts_only_metric_ms_pairs(text):
    try:
        slos = parse_goodput([text])
    except ConfigError as exc:
        assert "--goodput" in exc.message and exc.fix
        return
    assert set(slos) <= {"ttft", "tpot", "e2el"} and all(v >= 0 for v in slos.values())


@pytest.mark.integration
def test_host_and_port_and_the_older_prompt_words(tiny_server, tmp_path):
    """vLLM's --host/--port name the server when no --base-url is given; --prompt-words (older scripts) still
    sizes prompts in words, which the tiny server counts as its prompt tokens."""
    port = tiny_server.rsplit(":", 1)[1].split("/")[0]
    out = tmp_path / "hp.json"
    proc = vlmctl("bench", "--host", "127.0.0.1", "--port", port, "--max-concurrency", "1", "--num-prompts", "2",
                  "--num-warmups", "0", "--prompt-words", "7", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["meta"]["api_base"] == tiny_server and data["meta"]["prompt_sizing"] == "words"
    assert {r["prompt_tokens"] for r in data["levels"][0]["requests_detail"]} == {7}
