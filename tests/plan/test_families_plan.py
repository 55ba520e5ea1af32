"""Planning the Qwen3-VL and Qwen3.5 families end to end: runner, expert parallelism, hybrid sequences."""
import pytest

from vlmctl.plan import make_plan


@pytest.mark.parametrize("model_id,runner", [("Qwen/Qwen3-VL-8B-Instruct", "v2"),
                                             ("Qwen/Qwen3-VL-30B-A3B-Instruct", "v1"),
                                             ("Qwen/Qwen3.5-27B", "v1"), ("Qwen/Qwen3.5-35B-A3B", "v1")])
def test_runner_is_the_one_vllm_picks(model_id, runner):
    # vLLM 0.26: V1 for MoE and hybrid models (config/vllm.py _is_default_v2_model_runner_model); 0.33: V2 for all
    r = make_plan(model_id, gpus="h200:1", max_model_len=32768, enforce_eager=True, vllm_version="0.26.0")
    assert r.ok and r.plan.model_runner == runner
    assert (r.plan.env.get("VLLM_USE_V2_MODEL_RUNNER") == "0") == (runner == "v1")
    assert make_plan(model_id, gpus="h200:1", max_model_len=32768, model_runner="v2",
                     vllm_version="0.26.0").plan.model_runner == "v2"
    new = make_plan(model_id, gpus="h200:1", max_model_len=32768, enforce_eager=True, vllm_version="0.33.0")
    assert new.plan.model_runner == "v2" and "VLLM_USE_V2_MODEL_RUNNER" not in new.plan.env


def test_qwen3_vl_8b_weights_include_deepstack_buffers():
    r = make_plan("Qwen/Qwen3-VL-8B-Instruct", gpus="h200:1", max_model_len=32768, max_num_batched_tokens=8192)
    text = make_plan("Qwen/Qwen3-VL-8B-Instruct", gpus="h200:1", max_model_len=32768, max_num_batched_tokens=8192,
                     limit_mm_per_prompt={"image": 0, "video": 0})
    # vision on: + ViT (0.58 B params) + 3 × 8192 × 4096 bf16 deepstack buffers (0.19 GiB)
    gap = r.plan.per_gpu[0].weights_gib - text.plan.per_gpu[0].weights_gib
    assert gap == pytest.approx(576_388_336 * 2 / 2**30 + 0.1875, abs=0.02)
    assert r.plan.media_limits.pixel_grid == 32


def test_moe_search_tries_expert_parallel_and_emits_the_flag():
    from vlmctl.launch.spec import vllm_settings

    r = make_plan("Qwen/Qwen3-VL-30B-A3B-Instruct", gpus="h100-80gb:2", tensor_parallel_size=2,
                  max_model_len=32768, enable_expert_parallel=True)
    assert r.ok and r.plan.enable_expert_parallel
    assert ("enable_expert_parallel", True) in vllm_settings(r.plan)
    off = make_plan("Qwen/Qwen3-VL-30B-A3B-Instruct", gpus="h100-80gb:2", tensor_parallel_size=2,
                    max_model_len=32768, enable_expert_parallel=False)
    assert ("enable_expert_parallel", True) not in vllm_settings(off.plan)
    # 128 experts split evenly over 2 ranks: the same bytes either way
    assert r.plan.per_gpu[0].weights_gib == pytest.approx(off.plan.per_gpu[0].weights_gib, abs=0.01)
    dense = make_plan("Qwen/Qwen3-VL-8B-Instruct", gpus="h100-80gb:2", tensor_parallel_size=2,
                      enable_expert_parallel=True)
    assert not dense.ok and any(f.id == "ep-dense-model" for f in dense.findings)


def test_hybrid_graphs_need_a_state_block_per_sequence():
    """Qwen3.5-27B on one H100 80GB: ~400 pool blocks, fewer than vLLM's default 1024 sequences."""
    r = make_plan("Qwen/Qwen3.5-27B", gpus="h100-80gb:1", max_model_len=32768, enforce_eager=False)
    assert r.ok
    assert r.plan.max_num_seqs <= r.plan.per_gpu[0].kv_blocks < 1024
    assert any(f.id == "hybrid-max-num-seqs" and f.severity == "info" for f in r.findings)
    fixed = make_plan("Qwen/Qwen3.5-27B", gpus="h100-80gb:1", max_model_len=32768, enforce_eager=False,
                      max_num_seqs=1024)
    assert not fixed.ok
    err = next(f for f in fixed.findings if f.id == "hybrid-max-num-seqs")
    assert "exceeds available Mamba cache blocks" in err.message and "--max-num-seqs" in err.fix
    eager = make_plan("Qwen/Qwen3.5-27B", gpus="h100-80gb:1", max_model_len=32768, enforce_eager=True,
                      max_num_seqs=1024)
    assert eager.ok and eager.plan.max_num_seqs == 1024


def test_expert_parallel_group_spans_the_data_parallel_replicas():
    """vLLM's EP group is TP × DP ranks: two replicas of TP 2 deal the 128 experts over 4 GPUs."""
    from vlmctl.models import catalog_entry

    spec = catalog_entry("Qwen/Qwen3-VL-30B-A3B-Instruct").spec()
    kw = dict(gpus="h100-80gb:4", tensor_parallel_size=2, max_model_len=32768, enable_expert_parallel=True,
              vllm_version="0.26.0")
    one = make_plan("Qwen/Qwen3-VL-30B-A3B-Instruct", data_parallel_size=1, **kw)
    two = make_plan("Qwen/Qwen3-VL-30B-A3B-Instruct", data_parallel_size=2, **kw)
    assert one.ok and two.ok and two.plan.data_parallel_size == 2
    experts_gib = spec.family.expert_params(spec, range(48)) * 2 / 2**30
    gap = one.plan.per_gpu[0].weights_gib - two.plan.per_gpu[0].weights_gib
    assert gap == pytest.approx(experts_gib * (1 / 2 - 1 / 4), abs=0.02)
