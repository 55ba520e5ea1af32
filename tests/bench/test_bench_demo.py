"""vlmctl bench against the embedded demo server (the real serve path, tiny random-weight Qwen2.5-VL on CPU).

Checks that bench's counts equal the server's own Prometheus counters.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time

import httpx
import pytest

pytest.importorskip("vlmctl.serve.demo.app", reason="the embedded demo server (vlmctl.serve.demo) is not in this tree")


def _metric(text: str, name: str, labels: str = "") -> float:
    pattern = "^" + re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else r"(?:\{[^}]*\})?") + r"\s+([\d.e+]+)"
    m = re.search(pattern, text, re.M)
    assert m, f"{name}{labels} not in /metrics"
    return float(m.group(1))


@pytest.fixture
def demo_api(tmp_path):
    """Start `python -m vlmctl.serve.demo` on a free port; yield its /v1 base; always stop it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "VLMCTL_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "vlmctl.serve.demo", "--port", str(port), "--no-ui"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"demo server exited: {proc.stdout.read().decode()[-2000:]}")
            try:
                if httpx.get(base + "/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.25)
        else:
            pytest.fail("demo server did not answer /v1/models within 180 s")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.mark.integration
def test_bench_counts_match_the_demo_servers_metrics(demo_api, tmp_path):
    before = httpx.get(demo_api + "/metrics", timeout=10).text
    out = tmp_path / "demo.json"
    proc = subprocess.run([sys.executable, "-m", "vlmctl.cli.main", "bench", "--api-base", demo_api + "/v1",
                           "--mix", "text=1", "--mix", "image@320x240=1", "--mix", "video@160x120x4=1",
                           "--concurrency", "1,3", "--requests", "6", "--warmup", "0", "--max-tokens", "12",
                           "--out", str(out), "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    after = httpx.get(demo_api + "/metrics", timeout=10).text
    levels = json.loads(out.read_text())["levels"]
    completed = sum(lv["summary"]["completed"] for lv in levels)
    assert completed == 12 and all(lv["summary"]["failed"] == 0 for lv in levels)

    def delta(name: str, labels: str = "") -> float:
        return _metric(after, name, labels) - _metric(before, name, labels)

    assert delta("vlmctl_requests_total", 'outcome="ok"') == completed
    assert delta("vllm:generation_tokens_total") == sum(lv["summary"]["total_output_tokens"] for lv in levels)
    assert delta("vllm:prompt_tokens_total") == sum(lv["summary"]["total_input_tokens"] for lv in levels)
    for lv in levels:
        assert lv["summary"]["usage_missing"] == 0
        assert lv["summary"]["ttft_s"]["p50"] > 0
