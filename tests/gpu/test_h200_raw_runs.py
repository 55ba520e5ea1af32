"""The raw H200 runs in docs/validation/families and docs/validation/speed agree with their own logs (CPU-only)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAMILIES = ROOT / "docs" / "validation" / "families"
SPEED = ROOT / "docs" / "validation" / "speed"
sys.path.insert(0, str(ROOT / "benchmarks" / "gpu"))
from family_folders import FAMILIES as CONFIGS  # noqa: E402
from parse_vllm_log import parse_log  # noqa: E402

RUNS = json.loads((FAMILIES / "results.json").read_text())["runs"]
READY = [r for r in RUNS if r["verdict"] == "ready"]


@pytest.mark.parametrize("run", READY, ids=[r["name"] for r in READY])
def test_family_row_matches_its_log_excerpt(run):
    parsed = parse_log((FAMILIES / "logs" / f"{run['name']}.log").read_text())
    for key in ("kv_tokens", "weights_gib", "torch_peak_gib", "available_kv_gib", "max_model_len"):
        assert parsed[key] == run[key], key


DENSE = [r for r in READY if "layer_types" not in CONFIGS[r["folder"]][1]["text_config"]]
HYBRID = [r for r in READY if r not in DENSE and "kv_layout" in r]


@pytest.mark.parametrize("run", DENSE, ids=[r["name"] for r in DENSE])
def test_family_kv_page_is_the_configs_attention_bytes(run):
    """One full-attention group per dense/MoE Qwen3-VL: page = block × one layer's K+V bytes per token (bf16)."""
    text = CONFIGS[run["folder"]][1]["text_config"]
    (group,) = run["kv_layout"]["groups"]
    assert group["layers"] == text["num_hidden_layers"]
    assert group["page_size_bytes"] == group["block_size"] * 2 * text["num_key_value_heads"] * text["head_dim"] * 2
    assert run["kv_tokens"] == run["kv_layout"]["num_blocks"] * group["block_size"]


@pytest.mark.parametrize("run", HYBRID, ids=[r["name"] for r in HYBRID])
def test_hybrid_pages_states_and_kv_tokens_follow_the_config(run):
    """Qwen3.5: the attention page is the logged block × K+V bytes per token; each linear layer's state is the
    config's conv window (bf16) + recurrent state (fp32), padded to that page; KV tokens = blocks over the blocks a
    request takes (⌈L/block⌉ + one per state group) × L, vLLM's get_kv_cache_capacity."""
    text = CONFIGS[run["folder"]][1]["text_config"]
    groups = run["kv_layout"]["groups"]
    attn = [g for g in groups if g["spec"] == "FullAttentionSpec"]
    state = [g for g in groups if g["spec"] == "MambaSpec"]
    assert len(attn) == 1 and len(state) == text["layer_types"].count("linear_attention") // attn[0]["layers"]
    block = attn[0]["block_size"]
    assert block == run["attention_block_size_logged"]
    assert attn[0]["page_size_bytes"] == block * 2 * text["num_key_value_heads"] * text["head_dim"] * 2
    conv = (2 * text["linear_num_key_heads"] * text["linear_key_head_dim"]
            + text["linear_num_value_heads"] * text["linear_value_head_dim"]) * (text["linear_conv_kernel_dim"] - 1) * 2
    ssm = text["linear_num_value_heads"] * text["linear_value_head_dim"] * text["linear_key_head_dim"] * 4
    assert all(g["state_bytes_unpadded"] == conv + ssm and g["page_size_bytes"] == attn[0]["page_size_bytes"]
               for g in state)
    length = run["max_model_len"]
    per_request = -(-length // block) + len(state)
    assert run["kv_tokens"] == int(run["kv_layout"]["num_blocks"] / per_request * length)


def test_qwen35_starts_failed_on_the_missing_package():
    failed = [r for r in RUNS if r["folder"] == "27B" and r["verdict"] == "start_failed"]
    assert failed and all("compressed_tensors" in r["cause"] for r in failed)
    assert all(r["name"].startswith("F") for r in failed)  # the Q batch carried the package and started


def test_speed_rows_all_succeeded_and_match_their_bench_files():
    rows = json.loads((SPEED / "results.json").read_text())["rows"]
    assert {r["size"] for r in rows} == {"3B", "7B", "32B"}
    for r in rows:
        assert r["failed"] == 0 and r["completed"] == r["requests"] > 0
        bench = json.loads((SPEED / r["bench_file"]).read_text())
        level = next(lv for lv in bench["levels"] if lv["concurrency"] == r["concurrency"])
        assert level["summary"]["output_throughput"] == r["output_throughput"]
        assert sum(q["completion_tokens"] for q in level["requests_detail"]) == level["summary"]["total_output_tokens"]
