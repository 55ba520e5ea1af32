"""`vlmctl bench --distinct-media`: every request its own image or video, checked by the server's content hashes."""
from __future__ import annotations

import asyncio
import json

import pytest
from tests.bench.bench_helpers import server_stats
from tests.bench.test_bench import vlmctl

from vlmctl.bench import vllm_format
from vlmctl.bench.workload import MixEntry, Workload

MIX = ["--mix", "image@64x48=3", "--mix", "video@32x32x2=1", "--mix", "text=1"]


def _media_sent(levels: list[dict]) -> int:
    return sum(1 for lv in levels for r in lv["requests_detail"] if r["kind"] != "text")


@pytest.mark.integration
def test_distinct_media_reach_the_server_as_distinct_contents_a_pool_does_not(tiny_server, tmp_path):
    common = ["--api-base", tiny_server, *MIX, "--concurrency", "1,4", "--requests", "12", "--warmup", "2",
              "--max-tokens", "3", "--plot", str(tmp_path / "p.png"), "--json"]
    pooled = vlmctl("bench", *common, "--out", str(tmp_path / "pool.json"))
    assert pooled.returncode == 0, pooled.stderr
    meta = json.loads((tmp_path / "pool.json").read_text())["meta"]
    assert meta["media_reuse"] == "pool of 4" and meta["media_generation"] is None
    before = server_stats(tiny_server)
    assert before["images"] + before["videos"] > 8
    assert before["distinct_media"] <= 8  # four per size: one image size, one video size

    distinct = vlmctl("bench", *common, "--distinct-media", "--out", str(tmp_path / "distinct.json"))
    assert distinct.returncode == 0, distinct.stderr
    result = json.loads((tmp_path / "distinct.json").read_text())
    after = server_stats(tiny_server)
    sent = after["images"] + after["videos"] - before["images"] - before["videos"]
    measured = _media_sent(result["levels"])
    assert measured <= sent <= measured + 2 * 2  # plus the warm-ups that drew media (2 per level)
    assert after["distinct_media"] - before["distinct_media"] == sent  # every one new, none a pool item
    assert result["meta"]["media_reuse"] == "distinct"
    gen = result["meta"]["media_generation"]
    assert set(gen) == {"image@64x48", "video@32x32x2"}
    assert sum(g["items"] for g in gen.values()) == sent  # warm-ups included
    assert all(g["ms_per_item"] > 0 for g in gen.values())
    assert json.loads(distinct.stdout)["meta"]["media_reuse"] == "distinct"
    level = result["levels"][0]
    flat = vllm_format.level_result(level, result["meta"], [50.0])
    assert flat["media_reuse"] == "distinct"  # the vLLM-format result says it too, and reads back
    assert vllm_format.to_result([flat])["meta"]["media_reuse"] == "distinct"


def test_distinct_items_are_deterministic_per_seed_and_request_index():
    entry = MixEntry("image", 40, 30)

    def urls(seed: int, n: int) -> list[str]:
        work = Workload([entry], "m", 4, seed=seed, distinct=True)
        try:
            return [asyncio.run(work.next_request_async())[1]["messages"][0]["content"][0]["image_url"]["url"]
                    for _ in range(n)]
        finally:
            work.close()

    first = urls(0, 6)
    assert len(set(first)) == 6
    assert urls(0, 6) == first
    assert not set(urls(1, 6)) & set(first)
    pool = Workload([entry], "m", 4, seed=0)
    assert not {pool.next_request()[1]["messages"][0]["content"][0]["image_url"]["url"] for _ in range(12)} & set(first)


def test_help_names_the_default_reuse_and_the_option():
    proc = vlmctl("bench", "--help")
    text = " ".join(proc.stdout.split())
    assert "--distinct-media" in text and "--media-pool N" in text
    assert "pool of --media-pool items" in text and "[default: 4]" in text


@pytest.mark.parametrize(("args", "needle"), [
    (["--mix", "image@64x48", "--distinct-media", "--media-pool", "8"], "--distinct-media and --media-pool both given"),
    (["--mix", "text", "--distinct-media"], "has no image or video"),
    (["--distinct-media"], "has no image or video"),
    (["--mix", "image@64x48", "--media-pool", "0"], "--media-pool 0 must be between 1 and 256"),
])
def test_bad_combinations_are_one_line_errors(args, needle):
    proc = vlmctl("bench", "--api-base", "http://127.0.0.1:9/v1", *args, "--requests", "1")
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert needle in lines[0] and "Traceback" not in proc.stderr, proc.stderr
