"""Each family against its published configs: parameter counts, weights per rank, TP/EP rules, media geometry.

Known totals: the safetensors of Qwen3-VL-8B-Instruct hold 8,767,123,696 parameters and those of
Qwen3-VL-30B-A3B-Instruct 31,070,754,032 (model-information reports of the checkpoints, vlmctl.models.published).
"""
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vlmctl.errors import ConfigError
from vlmctl.models import CATALOG, catalog_entry, family_for
from vlmctl.models.families import SUPPORTED_MODEL_TYPES, family_of_config
from vlmctl.plan import memory as mem

NEW = ["Qwen/Qwen3-VL-4B-Instruct", "Qwen/Qwen3-VL-8B-Instruct", "Qwen/Qwen3-VL-32B-Instruct",
       "Qwen/Qwen3-VL-30B-A3B-Instruct", "Qwen/Qwen3-VL-235B-A22B-Instruct", "Qwen/Qwen3.5-27B",
       "Qwen/Qwen3.5-35B-A3B"]


def spec(model_id):
    return catalog_entry(model_id).spec()


def test_family_by_model_type_and_by_architecture():
    names = {t: family_for(t).name for t in SUPPORTED_MODEL_TYPES}
    assert names == {"qwen2_vl": "Qwen2-VL", "qwen2_5_vl": "Qwen2.5-VL", "qwen3_vl": "Qwen3-VL",
                     "qwen3_vl_moe": "Qwen3-VL-MoE", "qwen3_5": "Qwen3.5", "qwen3_5_moe": "Qwen3.5-MoE"}
    cfg = {"model_type": "something_custom", "architectures": ["Qwen3_5MoeForConditionalGeneration"]}
    assert family_of_config(cfg, "x").name == "Qwen3.5-MoE" and cfg["model_type"] == "qwen3_5_moe"


def test_unknown_model_type_names_the_supported_ones():
    with pytest.raises(ConfigError, match="model_type 'llama' is not a supported") as exc:
        family_for("llama")
    assert all(t in str(exc.value) for t in SUPPORTED_MODEL_TYPES)


def test_every_catalog_entry_has_a_family_and_a_source():
    for entry in CATALOG.values():
        s = entry.spec()
        assert s.family.name and entry.source
        assert s.model_type in s.family.model_types


@pytest.mark.parametrize("model_id,params", [("Qwen/Qwen3-VL-8B-Instruct", 8_767_123_696),
                                              ("Qwen/Qwen3-VL-30B-A3B-Instruct", 31_070_754_032)])
def test_parameter_count_equals_the_checkpoint(model_id, params):
    assert spec(model_id).total_params == params


@pytest.mark.parametrize("model_id", NEW + ["Qwen/Qwen2.5-VL-7B-Instruct", "Qwen/Qwen2.5-VL-72B-Instruct",
                                      "Qwen/Qwen2-VL-7B-Instruct"])
@pytest.mark.parametrize("tp", [1, 2, 4])
def test_weights_over_the_ranks_equal_parameters_times_bytes(model_id, tp):
    """TP ranks together hold every parameter once (the MoE router and, in data mode, the ViT replicated)."""
    s = spec(model_id)
    w = mem.stage_weights_bytes(s, tp=tp, layers=s.num_hidden_layers, first=True, last=True, dtype="bfloat16",
                                quantization=None, vision="weights")
    assert tp * w == pytest.approx(2 * s.total_params, rel=0.01)
    if s.moe is not None:
        ep = mem.stage_weights_bytes(s, tp=tp, layers=s.num_hidden_layers, first=True, last=True, dtype="bfloat16",
                                     quantization=None, vision="weights", expert_parallel=True)
        assert ep == pytest.approx(w, rel=1e-6)  # 128 / 256 experts divide evenly over 1, 2, 4 ranks


def test_expert_parallel_uneven_ranks_hold_the_larger_share():
    s = spec("Qwen/Qwen3-VL-30B-A3B-Instruct")
    kw = dict(layers=48, first=True, last=True, dtype="bfloat16", quantization=None, vision="none")
    tp6 = mem.stage_weights_bytes(s, tp=6, expert_parallel=False, **kw)
    ep6 = mem.stage_weights_bytes(s, tp=6, expert_parallel=True, **kw)
    experts = s.family.expert_params(s, range(48)) * 2
    assert ep6 - tp6 == pytest.approx(experts * (math.ceil(128 / 6) / 128 - 1 / 6), rel=1e-6)


def test_deepstack_buffers_and_encoder_width():
    s = spec("Qwen/Qwen3-VL-8B-Instruct")
    assert s.family.persistent_buffer_bytes(s, 8192, 2) == 3 * 8192 * 4096 * 2
    assert s.family.encoder_output_width(s) == 4 * 4096
    q35 = spec("Qwen/Qwen3.5-27B")
    assert q35.family.persistent_buffer_bytes(q35, 8192, 2) == 0 and q35.family.encoder_output_width(q35) == 5120


@pytest.mark.parametrize("model_id,tp,expert_parallel,ids", [
    ("Qwen/Qwen3-VL-30B-A3B-Instruct", 5, False, {"tp-moe-intermediate"}),
    ("Qwen/Qwen3-VL-30B-A3B-Instruct", 5, True, {"ep-experts-uneven"}),
    ("Qwen/Qwen3-VL-30B-A3B-Instruct", 4, True, set()),
    ("Qwen/Qwen3-VL-8B-Instruct", 2, True, {"ep-dense-model"}),
    ("Qwen/Qwen3.5-27B", 32, False, {"tp-linear-heads"}),
    ("Qwen/Qwen3.5-35B-A3B", 3, False, {"tp-linear-heads", "tp-moe-intermediate"}),
    ("Qwen/Qwen3.5-35B-A3B", 8, True, set()),
])
def test_family_parallel_rules(model_id, tp, expert_parallel, ids):
    s = spec(model_id)
    assert {f.id for f in s.family.parallel_rules(s, tp, expert_parallel)} == ids


def test_qwen3_geometry_32_pixel_grid_and_clip_budget():
    s = spec("Qwen/Qwen3-VL-8B-Instruct")
    fam = s.family
    assert fam.grid(s) == 32 and fam.pixels_per_token(s) == 1024
    assert mem.image_tokens(s, s.max_pixels) == 16384  # 16,777,216 px / 32²
    # vLLM qwen3_vl.py get_max_video_tokens: 2 frames at longest_edge // 2 → 12,288 tokens; more frames shrink each
    assert mem.video_tokens(s, s.max_pixels, 2) == 12288
    assert mem.video_tokens(s, s.max_pixels, 768) == 12288
    assert mem.video_tokens(s, 1024 * 768, 16) == 8 * 768
    q25 = spec("Qwen/Qwen2.5-VL-7B-Instruct")
    assert q25.family.grid(q25) == 28 and mem.video_tokens(q25, q25.max_pixels, 14) == 114688


def test_hybrid_cache_shape_27b():
    """Qwen3.5-27B, bf16, TP 1: a linear layer's state (conv 10240×3×2 B + recurrent 48×128×128×4 B) fits a
    784-token attention page (49 × 16 tokens × 4096 B); 16 full and 48 linear layers → 4 groups of 16."""
    s = spec("Qwen/Qwen3.5-27B")
    assert s.full_attention_layers == 16
    shape = mem.cache_shape(s, 1, 2, 0, 64)
    assert shape == {"page": 784 * 4096, "block_size": 784, "group_size": 16, "state_blocks": 3,
                     "state_bytes": 48 * (10240 * 3 * 2 + 48 * 128 * 128 * 4)}
    tp2 = mem.cache_shape(s, 2, 2, 0, 64)
    assert tp2["block_size"] == 784 and tp2["page"] == 784 * 2048
    pp2 = mem.cache_shape(s, 1, 2, 0, 32)
    assert pp2["group_size"] == 8 and pp2["state_blocks"] == 3


def test_hybrid_kv_tokens_follow_vllm_concurrency():
    s = spec("Qwen/Qwen3.5-35B-A3B")
    shape = mem.cache_shape(s, 1, 2, 0, 40)
    assert shape["block_size"] == 1056 and shape["group_size"] == 10 and shape["state_blocks"] == 3
    stage = mem.StageMemory(0, 0, 0, 0, 0, 0, 0, 1000 * shape["page"] * 10 + 5, shape["page"], 40,
                            shape["block_size"], shape["group_size"], shape["state_blocks"], shape["state_bytes"])
    assert stage.blocks == 1000
    per_request = math.ceil(32768 / 1056) + 3
    assert stage.concurrency(32768) == pytest.approx(1000 / per_request)
    assert stage.kv_tokens(32768) == int(1000 / per_request * 32768)
    assert stage.need_for_len(32768) == 10 * shape["page"] * per_request


@pytest.mark.parametrize("model_id,missing", [("Qwen/Qwen3.5-27B", "linear_num_value_heads"),
                                              ("Qwen/Qwen3-VL-30B-A3B-Instruct", "moe_intermediate_size")])
def test_family_fields_missing_from_a_config_are_named(model_id, missing):
    import copy

    from vlmctl.models import spec_from_config

    cfg = copy.deepcopy(catalog_entry(model_id).config)
    del cfg["text_config"][missing]
    with pytest.raises(ConfigError, match=f"no '{missing}', which every Qwen3"):
        spec_from_config(cfg, "./m")


_Q3 = catalog_entry("Qwen/Qwen3-VL-8B-Instruct").spec()
_Q25 = catalog_entry("Qwen/Qwen2.5-VL-7B-Instruct").spec()


@settings(max_examples=60, deadline=None)
@given(max_pixels=st.integers(min_value=1024, max_value=16777216), frames=st.integers(min_value=1, max_value=768))
def test_geometry_stays_within_the_pixel_budgets(max_pixels, frames):
    for s in (_Q3, _Q25):
        fam = s.family
        img = fam.image_tokens(s, max_pixels)
        assert 1 <= img and img * fam.pixels_per_token(s) <= max(max_pixels, fam.pixels_per_token(s))
    # a Qwen3-VL clip never holds more than its pixel budget allows: 25,165,824 px / (32² px × 2 frames)
    vid = _Q3.family.video_tokens(_Q3, max_pixels, frames)
    assert 1 <= vid <= max(12288, math.ceil(frames / 2))


def test_catalog_configs_are_the_folders_measured_on_the_gpu(tmp_path):
    """docs/validation § 8–9 measured folders from benchmarks/gpu/family_folders.py: the folders it writes hold the
    catalog's published configs and processor files, with the same first special-token ids as `vlmctl models
    materialize` writes."""
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "gpu"))
    import family_folders

    for name, (hub_id, _, _) in family_folders.FAMILIES.items():
        folder = tmp_path / name
        family_folders.write(name, folder)
        entry = catalog_entry(hub_id)
        config = json.loads((folder / "config.json").read_text())
        added = {t["content"]: t["id"] for t in json.loads((folder / "tokenizer.json").read_text())["added_tokens"]}
        assert entry.config == config and entry.first_special_id == added["<|endoftext|>"]
        assert entry.preprocessor == json.loads((folder / "preprocessor_config.json").read_text())
        assert entry.video_preprocessor == json.loads((folder / "video_preprocessor_config.json").read_text())


def test_expert_parallel_spans_tp_times_dp():
    s = spec("Qwen/Qwen3-VL-30B-A3B-Instruct")
    kw = dict(layers=48, first=True, last=True, dtype="bfloat16", quantization=None, vision="none",
              expert_parallel=True)
    experts = s.family.expert_params(s, range(48)) * 2
    tp2 = mem.stage_weights_bytes(s, tp=2, **kw)
    tp2dp2 = mem.stage_weights_bytes(s, tp=2, data_parallel=2, **kw)
    assert tp2 - tp2dp2 == pytest.approx(experts * (1 / 2 - 1 / 4), rel=1e-6)
    assert {f.id for f in s.family.parallel_rules(s, 2, True, dp=3)} == {"ep-experts-uneven"}


def test_qwen3_vit_peak_is_the_eager_forward_of_vllm_0_26():
    """Per patch, from Qwen3_VisionTransformer.forward: fp32 + bf16 pixels, held position/rotary tables and deepstack
    features, and the worst block's attention working set (wider than the plain MLP at 1152/4304)."""
    s8, s32, s35 = spec("Qwen/Qwen3-VL-8B-Instruct"), spec("Qwen/Qwen3-VL-32B-Instruct"), spec("Qwen/Qwen3.5-27B")
    pixels = 3 * 2 * 16 * 16 * 6
    attention = 2 * 1152 + 9 * 1152
    assert s8.family.vit_peak_bytes(s8, 1, 1) == pixels + 2 * (1152 + 72 + 3 * 4096 / 4 + attention)
    # deepstack: three levels of out_hidden_size per merged token, held until the final concatenation
    extra = s32.family.vit_peak_bytes(s32, 65536, 1) - s8.family.vit_peak_bytes(s8, 65536, 1)
    assert extra == 65536 * 2 * 3 * (5120 - 4096) / 4
    assert s35.family.vit_peak_bytes(s35, 1, 1) == pixels + 2 * (1152 + 72 + attention)  # no deepstack
    # under TP the heads and the MLP split; the held tables and the residual do not
    assert s8.family.vit_peak_bytes(s8, 1, 2) == pixels + 2 * (1152 + 72 + 3072 + 2 * 1152 + 9 * 1152 / 2)
