"""vlmctl bench against a real OpenAI-compatible streaming server on 127.0.0.1 (tiny_openai_server.py)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from tests._servers import stop
from tests.bench.bench_helpers import server_stats, start_server

from vlmctl.bench.metrics import RequestRecord, summarize
from vlmctl.bench.workload import parse_mix
from vlmctl.errors import ConfigError

MIX = ["--mix", "text=2", "--mix", "image@320x240=1", "--mix", "video@160x128x4=1"]


def vlmctl(*args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vlmctl.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, **kw)


@pytest.mark.integration
def test_sweep_counts_match_the_servers_own_counts(tiny_server, tmp_path):
    out, png = tmp_path / "run.json", tmp_path / "run.png"
    proc = vlmctl("bench", "--api-base", tiny_server, *MIX, "--concurrency", "1,4", "--requests", "12",
                  "--warmup", "0", "--max-tokens", "9", "--out", str(out), "--plot", str(png), "--json")
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    saved = json.loads(out.read_text())
    stats = server_stats(tiny_server)
    levels = saved["levels"]
    assert [lv["concurrency"] for lv in levels] == [1, 4]
    assert sum(lv["summary"]["completed"] for lv in levels) == stats["ok"] == 24
    assert sum(lv["summary"]["total_output_tokens"] for lv in levels) == stats["completion_tokens"] == 24 * 9
    assert sum(lv["summary"]["total_input_tokens"] for lv in levels) == stats["prompt_tokens"]
    kinds = {}
    for lv in levels:
        for kind, n in lv["summary"]["completed_by_kind"].items():
            kinds[kind] = kinds.get(kind, 0) + n
    assert kinds.get("image@320x240", 0) == stats["images"]
    assert kinds.get("video@160x128x4", 0) == stats["videos"]
    assert stats["video_frames"] == 4 * stats["videos"]
    for lv in levels:
        s = lv["summary"]
        assert s["failed"] == 0 and s["usage_missing"] == 0
        assert 0 < s["ttft_s"]["p50"] <= s["ttft_s"]["p99"] <= s["e2e_s"]["p99"]
        assert s["tpot_s"]["p50"] > 0 and s["itl_s"]["p50"] > 0
        assert len(lv["requests_detail"]) == 12
    assert printed["levels"][0]["summary"] == levels[0]["summary"]
    from PIL import Image

    with Image.open(png) as image:
        assert image.format == "PNG" and image.width > 800


@pytest.mark.integration
def test_warmup_is_sent_but_not_measured_and_rate_mode_works(tiny_server, tmp_path):
    out = tmp_path / "rate.json"
    proc = vlmctl("bench", "--api-base", tiny_server, "--rate", "40", "--requests", "10", "--warmup", "3",
                  "--max-tokens", "4", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    (level,) = json.loads(out.read_text())["levels"]
    assert level["rate"] == 40 and level["concurrency"] is None
    assert level["summary"]["completed"] == 10
    assert server_stats(tiny_server)["ok"] == 13


@pytest.mark.integration
def test_duration_mode_runs_for_the_duration(tiny_server, tmp_path):
    out = tmp_path / "dur.json"
    proc = vlmctl("bench", "--api-base", tiny_server, "--concurrency", "2", "--duration", "1.5", "--warmup", "0",
                  "--max-tokens", "8", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    s = json.loads(out.read_text())["levels"][0]["summary"]
    assert s["duration_s"] >= 1.5 and s["completed"] >= 4
    assert s["completed"] == server_stats(tiny_server)["ok"]


@pytest.mark.integration
def test_api_key_is_sent_and_refusals_are_counted_by_kind(tiny_server_with_key, tmp_path):
    bad = vlmctl("bench", "--api-base", tiny_server_with_key, "--concurrency", "1", "--requests", "2")
    assert bad.returncode == 2 and "API key" in bad.stderr
    out = tmp_path / "401.json"
    refused = vlmctl("bench", "--api-base", tiny_server_with_key, "--model", "tiny-vlm", "--api-key", "wrong",
                     "--concurrency", "2", "--requests", "4", "--warmup", "0", "--out", str(out), "--json")
    assert refused.returncode == 7, refused.stderr  # a level with no success fails the run ...
    assert "http_401: {\"error\":{\"message\":\"bad key\"}}" in refused.stderr  # ... and shows the server's body
    assert "VLMCTL_API_KEY" in refused.stderr.split("fix:")[1]
    s = json.loads(out.read_text())["levels"][0]["summary"]  # results are still written
    assert s["errors"] == {"http_401": 4} and s["completed"] == 0
    assert s["first_error"] == {"kind": "http_401", "body": '{"error":{"message":"bad key"}}'}
    good = vlmctl("bench", "--api-base", tiny_server_with_key, "--concurrency", "1", "--requests", "2",
                  "--warmup", "0", "--json", "--out", str(tmp_path / "ok.json"), env={**os.environ,
                                                                                      "VLMCTL_API_KEY": "sekret"})
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["levels"][0]["summary"]["completed"] == 2


@pytest.mark.integration
def test_ctrl_c_writes_what_was_measured(tmp_path):
    proc_server, base = start_server("--token-delay", "0.05")
    out = tmp_path / "partial.json"
    try:
        bench = subprocess.Popen([sys.executable, "-m", "vlmctl.cli.main", "bench", "--api-base", base,
                                  "--concurrency", "2", "--duration", "60", "--warmup", "0", "--max-tokens", "10",
                                  "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 # as from a terminal: a suite started in the background passes SIGINT on ignored
                                 preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.monotonic() + 90  # generous: on a loaded 2-core machine the client's start-up alone is slow
        # at concurrency 2 the client starts request k only once it has finished k - 2: six answered by the server
        # means at least four recorded by bench
        while server_stats(base)["ok"] < 6 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server_stats(base)["ok"] >= 6, "bench did not get six answers within 90 s"
        bench.send_signal(signal.SIGINT)
        try:
            stdout, stderr = bench.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            bench.kill()
            stdout, stderr = bench.communicate()
            pytest.fail(f"bench still running 60 s after Ctrl-C; stderr: {stderr[-2000:]}")
    finally:
        stop(proc_server)
    assert bench.returncode == 130, stderr
    data = json.loads(out.read_text())
    assert data["meta"]["interrupted"] and data["levels"][0]["interrupted"]
    s = data["levels"][0]["summary"]
    assert s["completed"] >= 4
    assert "INTERRUPTED" in stdout


@pytest.mark.integration
def test_compare_shows_ratios_side_by_side(tmp_path):
    proc_server, base = start_server("--token-delay", "0.02")  # slow tokens: E2E ratio well above timing noise
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    try:
        _two_runs(base, a, b)
    finally:
        stop(proc_server)
    proc = vlmctl("bench", "compare", str(a), str(b), "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["metric"]: r for r in json.loads(proc.stdout)["rows"]}
    e2e = rows["E2E p50"]
    assert e2e["level"] == "c=2" and e2e["ratio"] == pytest.approx(e2e["b"] / e2e["a"], rel=1e-3)
    assert e2e["better"] == ("A" if e2e["b"] > e2e["a"] else "B")  # latency: lower is better
    req = rows["req/s"]
    assert req["better"] == ("B" if req["b"] > req["a"] else "A")  # throughput: higher is better
    assert rows["failed"]["a"] == rows["failed"]["b"] == 0 and rows["failed"]["better"] is None
    table = vlmctl("bench", "compare", str(a), str(b))
    assert table.returncode == 0 and "B/A" in table.stdout


def _two_runs(base, a, b):
    for path, tokens in ((a, "4"), (b, "16")):
        proc = vlmctl("bench", "--api-base", base, "--concurrency", "2", "--requests", "6", "--warmup", "0",
                      "--max-tokens", tokens, "--out", str(path), "--json")
        assert proc.returncode == 0, proc.stderr


def test_compare_rejects_a_file_that_is_not_a_result(tmp_path):
    bogus = tmp_path / "x.json"
    bogus.write_text("{}")
    proc = vlmctl("bench", "compare", str(bogus), str(bogus))
    assert proc.returncode == 2 and "not a vlmctl bench result" in proc.stderr


def test_bad_mix_and_flags_are_one_line_errors():
    with pytest.raises(ConfigError, match="image@WxH"):
        parse_mix(["image"])
    assert [e.label for e in parse_mix(["text=2,image@64x48", "video@32x32x4=3"])] == [
        "text", "image@64x48", "video@32x32x4"]
    proc = vlmctl("bench", "--concurrency", "0")
    assert proc.returncode == 2 and "--max-concurrency '0'" in proc.stderr  # the vLLM name of --concurrency
    proc = vlmctl("bench", "--requests", "3", "--duration", "2")
    assert proc.returncode == 2


def test_summary_uses_vllm_bench_definitions():
    rng = np.random.default_rng(0)
    records = []
    for i in range(50):
        ttft, n = float(rng.uniform(0.05, 0.5)), int(rng.integers(2, 40))
        itl = [float(x) for x in rng.uniform(0.01, 0.03, n - 1)]
        records.append(RequestRecord(kind="text", start=0, ok=True, ttft=ttft, e2e=ttft + sum(itl), itl=itl,
                                     prompt_tokens=100 + i, completion_tokens=n))
    records.append(RequestRecord(kind="text", start=0, error="http_500"))
    s = summarize(records, duration_s=10.0)
    ok = records[:-1]
    tpot = [(r.e2e - r.ttft) / (r.completion_tokens - 1) for r in ok]
    assert s["tpot_s"]["p99"] == pytest.approx(np.percentile(tpot, 99), abs=1e-6)
    assert s["ttft_s"]["p90"] == pytest.approx(np.percentile([r.ttft for r in ok], 90), abs=1e-6)
    assert s["itl_s"]["median"] == pytest.approx(np.median([x for r in ok for x in r.itl]), abs=1e-6)
    assert s["request_throughput"] == pytest.approx(5.0)
    assert s["output_throughput"] == pytest.approx(sum(r.completion_tokens for r in ok) / 10, abs=1e-3)
    assert s["total_token_throughput"] == pytest.approx(
        sum(r.completion_tokens + r.prompt_tokens for r in ok) / 10, abs=1e-3)
    assert s["errors"] == {"http_500": 1} and s["failed"] == 1


def test_plan_gives_model_mix_inside_the_limits_and_the_sweep(tmp_path):
    from vlmctl.bench.from_plan import concurrency_from_plan, load_plan, mix_from_plan
    from vlmctl.plan.schema import GpuMemory, MediaLimits, NodePlacement, Plan, PlanResult

    plan = Plan(model="Qwen/Qwen2.5-VL-7B-Instruct", served_model_name="qwen-7b", tensor_parallel_size=1,
                pipeline_parallel_size=1, dtype="float16", max_model_len=8192, gpu_memory_utilization=0.9,
                max_num_seqs=16, max_num_batched_tokens=8192, limit_mm_per_prompt={"image": 2, "video": 1},
                nodes=[NodePlacement(name="a", gpu_type="rtx-2080-ti", gpu_ids=[0], stages=[0])],
                per_gpu=[GpuMemory(node="a", gpu_index=0, gpu_type="rtx-2080-ti", stage=0, tp_rank=0, layers=28,
                                   total_gib=10.6, requested_gib=9.6, weights_gib=6.5, activation_gib=1.0,
                                   non_torch_gib=0.1, cudagraph_gib=0.0, encoder_runtime_gib=0.0, kv_cache_gib=2.0,
                                   kv_blocks=100)],
                kv_cache_tokens=36000, max_concurrency=4.4,
                media_limits=MediaLimits(max_pixels=401408, max_images=2, max_videos=1, max_video_frames=4,
                                         encoder_tokens=1024),
                decode_tokens_per_s_bound=30.0)
    path = tmp_path / "plan.json"
    path.write_text(PlanResult(ok=True, plan=plan, findings=[]).model_dump_json())
    loaded = load_plan(str(path))
    assert loaded.served_model_name == "qwen-7b"
    mix = {e.kind: e for e in mix_from_plan(loaded)}
    assert mix["image"].width * mix["image"].height <= 401408 and mix["image"].width % 28 == 0
    assert mix["video"].frames == 4
    assert concurrency_from_plan(loaded) == [1, 2, 4, 8]
    bad = tmp_path / "bad.json"
    bad.write_text('{"ok": true}')
    with pytest.raises(ConfigError, match="not a vlmctl plan"):
        load_plan(str(bad))
