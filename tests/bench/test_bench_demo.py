"""vlmctl bench against `vlmctl serve` with no model (the embedded tiny random-weight Qwen2.5-VL on CPU).

Uses the shared ``demo_server`` fixture (tests/conftest.py) and checks that bench's counts equal the
server's own Prometheus counters (deltas around the run, since the server is shared by the session).
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest

from tests._servers import metric


@pytest.mark.integration
def test_bench_counts_match_the_demo_servers_metrics(demo_server, tmp_path):
    demo_api = str(demo_server)
    before = httpx.get(demo_api + "/metrics", timeout=10).text
    out = tmp_path / "demo.json"
    proc = subprocess.run([sys.executable, "-m", "vlmctl.cli.main", "bench", "--api-base", demo_api + "/v1",
                           "--mix", "text=1", "--mix", "image@320x240=1", "--mix", "video@160x120x4=1",
                           "--concurrency", "1,3", "--requests", "6", "--warmup", "0", "--max-tokens", "12",
                           "--out", str(out), "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    levels = json.loads(out.read_text())["levels"]
    completed = sum(lv["summary"]["completed"] for lv in levels)
    deadline = time.monotonic() + 10  # the server may count a request just after its last byte left
    while True:
        after = httpx.get(demo_api + "/metrics", timeout=10).text
        ok = metric(after, "vlmctl_requests_total", 'outcome="ok"') - metric(before, "vlmctl_requests_total",
                                                                             'outcome="ok"')
        if ok >= completed or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert completed == 12 and all(lv["summary"]["failed"] == 0 for lv in levels)

    def delta(name: str, labels: str = "") -> float:
        return metric(after, name, labels) - metric(before, name, labels)

    assert delta("vlmctl_requests_total", 'outcome="ok"') == completed
    assert delta("vllm:generation_tokens_total") == sum(lv["summary"]["total_output_tokens"] for lv in levels)
    assert delta("vllm:prompt_tokens_total") == sum(lv["summary"]["total_input_tokens"] for lv in levels)
    for lv in levels:
        assert lv["summary"]["usage_missing"] == 0
        assert lv["summary"]["ttft_s"]["p50"] > 0


@pytest.mark.integration
def test_prompts_are_sized_in_tokens_with_the_models_tokenizer(demo_server, tmp_path):
    """The demo reports its model folder as ``root``; bench finds its tokenizer there and sizes prompts in tokens:
    the server's prompt_tokens grow by exactly the difference of --random-input-len."""
    per_request = {}
    for n in (16, 56):
        out = tmp_path / f"in{n}.json"
        proc = subprocess.run([sys.executable, "-m", "vlmctl.cli.main", "bench", "--base-url", str(demo_server),
                               "--mix", "text", "--max-concurrency", "2", "--num-prompts", "3", "--num-warmups", "0",
                               "--random-input-len", str(n), "--random-output-len", "2", "--out", str(out)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        data = json.loads(out.read_text())
        assert data["meta"]["prompt_sizing"] == "tokenizer" and data["meta"]["tokenizer"]
        per_request[n] = {r["prompt_tokens"] for r in data["levels"][0]["requests_detail"]}
    assert len(per_request[16]) == 1 and len(per_request[56]) == 1  # every prompt the same length in tokens
    assert per_request[56].pop() - per_request[16].pop() == 40


@pytest.mark.integration
def test_vllm_flags_and_vllm_json_against_the_demo(demo_server, tmp_path):
    """vLLM's flag names and result format against `vlmctl serve`; its counts equal the server's vLLM-named series."""
    from tests.bench.test_bench_vllm import VLLM_KEYS

    base = str(demo_server)
    before = httpx.get(base + "/metrics", timeout=10).text
    out = tmp_path / "vllm.json"
    proc = subprocess.run([sys.executable, "-m", "vlmctl.cli.main", "bench", "--base-url", base, "--mix", "text",
                           "--mix", "image@160x120", "--max-concurrency", "2", "--num-prompts", "4", "--num-warmups",
                           "0", "--random-input-len", "24", "--random-output-len", "8", "--result-format", "vllm",
                           "--metric-percentiles", "50,99", "--out", str(out)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    (obj,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert VLLM_KEYS <= set(obj) and obj["completed"] == 4 and obj["tokenizer_id"]
    deadline = time.monotonic() + 10
    while True:
        after = httpx.get(base + "/metrics", timeout=10).text
        done = metric(after, "vllm:e2e_request_latency_seconds_count") - metric(
            before, "vllm:e2e_request_latency_seconds_count")
        if done >= 4 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert done == 4
    generated = metric(after, "vllm:generation_tokens_total") - metric(before, "vllm:generation_tokens_total")
    assert generated == obj["total_output_tokens"]
    assert metric(after, "vllm:prompt_tokens_total") - metric(before, "vllm:prompt_tokens_total") == \
        obj["total_input_tokens"]
