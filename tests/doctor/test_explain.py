"""doctor explain on real log excerpts from public issue reports (tests/doctor/fixtures, one source each)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from vlmctl.doctor.explain import explain, normalise_line
from vlmctl.failures import BY_ID, CATALOG
from vlmctl.plan.schema import GpuMemory, MediaLimits, NodePlacement, Plan, PlanResult

FIXTURES = sorted((Path(__file__).parent / "fixtures").glob("*.log"))
ROOT = Path(__file__).resolve().parents[2]


def _expect(path: Path) -> str:
    return re.search(r"^# expect: (\S+)", path.read_text(), re.M).group(1)


def _plan(**overrides) -> PlanResult:
    fields = dict(
        model="Qwen/Qwen2.5-VL-7B-Instruct", served_model_name="qwen2.5-vl-7b", tensor_parallel_size=1,
        pipeline_parallel_size=1, dtype="bfloat16", max_model_len=128000, gpu_memory_utilization=0.92,
        max_num_seqs=8, max_num_batched_tokens=8192, limit_mm_per_prompt={"image": 2, "video": 1},
        mm_processor_kwargs={"max_pixels": 12845056},
        nodes=[NodePlacement(name="a", gpu_type="a100-80gb", gpu_ids=[0], stages=[0])],
        per_gpu=[GpuMemory(node="a", gpu_index=0, gpu_type="a100-80gb", stage=0, tp_rank=0, layers=28,
                           total_gib=79.2, requested_gib=72.9, weights_gib=15.6, activation_gib=10.0,
                           non_torch_gib=0.4, cudagraph_gib=0.5, encoder_runtime_gib=0.0, kv_cache_gib=46.4,
                           kv_blocks=3000)],
        kv_cache_tokens=48000, max_concurrency=0.4,
        media_limits=MediaLimits(max_pixels=12845056, max_images=2, max_videos=1, max_video_frames=32,
                                 encoder_tokens=16384),
        decode_tokens_per_s_bound=120.0,
    )
    fields.update(overrides)
    return PlanResult(ok=True, plan=Plan(**fields), findings=[])


def test_fixture_corpus_cites_a_source_and_covers_15_signatures():
    assert len(FIXTURES) >= 20
    covered = set()
    for path in FIXTURES:
        head = path.read_text().splitlines()[0]
        assert re.match(r"# source: (https://github\.com/\S+/(issues|pull)/\d+|measured by vlmctl: .+H100.+vLLM "
                        r"0\.26\.0)", head), path.name
        covered.add(_expect(path))
    covered -= {"none", "unknown"}
    assert covered <= set(BY_ID)
    assert len(covered) >= 15, covered


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_each_real_log_is_recognised(path):
    result = explain(path.read_text())
    if _expect(path) == "none":  # a healthy start-up: nothing may fire
        assert not result.known and not result.plan_change
        return
    if _expect(path) == "unknown":  # a real failure no signature covers: the likely lines instead
        assert not result.known and "ModuleNotFoundError" in result.suspicious_lines[0]
        return
    ids = [m.id for m in result.matches]
    assert result.known
    assert _expect(path) in ids
    match = next(m for m in result.matches if m.id == _expect(path))
    assert match.finding.fix and match.sources
    flat = re.sub(r"\s+", " ", " ".join(normalise_line(line) for line in path.read_text().splitlines()))
    for part in match.evidence.split(" … "):  # long evidence keeps its head and tail
        assert part in flat


def test_ray_prefixed_multiline_log_points_at_the_right_line():
    path = Path(__file__).parent / "fixtures" / "gloo_loopback_ray.log"
    result = explain(path.read_text())
    (match,) = result.matches
    source_line = path.read_text().splitlines()[match.line - 1]
    assert source_line.startswith("(RayWorkerWrapper pid=1978, ip=10.41.0.8)")
    assert "Unable to resolve hostname" in source_line


def test_prefix_stripping_handles_ray_worker_docker_and_engine_prefixes():
    assert normalise_line("(RayWorkerWrapper pid=1890, ip=10.41.0.8) ERROR 08-02 08:50:03 worker_base.py:382] "
                          "boom") == "boom"
    assert normalise_line("vllm-1  | ERROR 11-18 18:07:28 engine.py:366] ValueError: x") == "ValueError: x"
    assert normalise_line("(EngineCore_DP0 pid=2388) ERROR 11-20 14:02:11 [core.py:1021] y") == "y"


def test_old_and_new_kv_wordings_both_give_the_new_max_model_len():
    v0 = explain((Path(__file__).parent / "fixtures" / "kv_v0_max_seq_len_3090.log").read_text())
    v1 = explain((Path(__file__).parent / "fixtures" / "kv_v1_estimated.log").read_text())
    assert v0.plan_change["max_model_len"]["to"] == 23648
    assert v1.matches[0].values["estimated_max_model_len"] == 122080
    assert v1.plan_change["max_model_len"]["to"] == 122080
    # vLLM >= PR #42479 spells it "model's" and adds CPU-backend clauses (no public log yet: vLLM's own text).
    new = ("ValueError: To serve at least one request with the model's max seq len (128000), (7.03 GiB KV cache "
           "is needed, which is larger than the available KV cache memory (2.10 GiB). Based on the available "
           "memory, the estimated maximum model length is 38208. Try increasing `gpu_memory_utilization` "
           "(which also controls CPU memory on the CPU backend) or decreasing `max_model_len`")
    assert explain(new).plan_change["max_model_len"]["to"] == 38208


def test_plan_change_shows_from_and_to_with_a_plan():
    text = (Path(__file__).parent / "fixtures" / "kv_v1_estimated.log").read_text()
    change = explain(text, _plan()).plan_change["max_model_len"]
    assert change == {"from": 128000, "to": 122080, "because": "kv-max-seq-len-v1"}


def test_without_estimate_the_max_len_is_scaled_from_the_gib_figures():
    text = (Path(__file__).parent / "fixtures" / "kv_v1_no_estimate_core.log").read_text()
    result = explain(text)
    to = result.plan_change["max_model_len"]["to"]
    assert to % 16 == 0 and 1048576 * 9.97 / 24.0 - 16 <= to <= 1048576 * 9.97 / 24.0


def test_vision_encoder_runtime_oom_is_distinct_from_startup_oom():
    runtime = explain((Path(__file__).parent / "fixtures" / "vision_encoder_oom_runtime_h100.log").read_text(), _plan())
    startup = explain((Path(__file__).parent / "fixtures" / "startup_oom_mm_limits.log").read_text(), _plan())
    assert [m.id for m in runtime.matches] == ["oom-vision-encoder-runtime"]
    assert [m.id for m in startup.matches] == ["oom-startup"]
    fix = runtime.matches[0].finding.fix
    for needle in ("gpu-memory-utilization", "--kv-cache-memory", "max_pixels", "VLLM_USE_V2_MODEL_RUNNER=0"):
        assert needle in fix
    assert runtime.plan_change["env.VLLM_USE_V2_MODEL_RUNNER"]["to"] == "0"
    assert runtime.plan_change["gpu_memory_utilization"] == {"from": 0.92, "to": 0.87,
                                                             "because": "oom-vision-encoder-runtime"}
    assert startup.plan_change["limit_mm_per_prompt.video"] == {"from": 1, "to": 0, "because": "oom-startup"}
    # With the planner's estimate of the encoder peak the V2 runner leaves outside the profile (~12.7 GiB
    # measured on the H100: runs A1 vs C1), utilization drops by that share of the GPU.
    planned = _plan()
    planned.plan.per_gpu[0].encoder_runtime_gib = 12.7
    fixture = Path(__file__).parent / "fixtures" / "vision_encoder_oom_runtime_h100.log"
    change = explain(fixture.read_text(), planned).plan_change["gpu_memory_utilization"]
    assert change["to"] == 0.75


def test_unknown_log_gets_no_known_cause_and_the_failure_like_lines():
    text = ("INFO 11-20 10:00:00 [api_server.py:1] vLLM API server version 0.26.0\n"
            "INFO 11-20 10:00:01 [loader.py:2] Loading weights\n"
            "Traceback (most recent call last):\n"
            '  File "x.py", line 3, in <module>\n'
            "KeyError: 'rope_scaling'\n")
    result = explain(text)
    assert not result.known and not result.matches
    assert result.suspicious_lines[0] == "KeyError: 'rope_scaling'"


def test_docs_table_is_the_rendered_catalog():
    from vlmctl.doctor.catalog_doc import END, START, render_table

    doc = (ROOT / "docs" / "doctor.md").read_text()
    table = doc.split(START, 1)[1].split(END, 1)[0].strip()
    corpus = ROOT / "tests" / "failures" / "corpus"
    assert table == render_table(Path(__file__).parent / "fixtures", corpus).strip(), (
        "docs/doctor.md is stale: python -c 'from vlmctl.doctor.catalog_doc import update; ...'")
    for signature in CATALOG:
        assert f"`{signature.id}`" in table


def test_runtime_oom_outside_the_encoder_is_its_own_finding():
    # Synthetic (no public V1 log of this shape in the corpus): a decode-time OOM in the sampler.
    text = ("(EngineCore_DP0 pid=1) ERROR 11-20 14:02:11 [core.py:1021]   File \"/v/gpu_model_runner.py\", line 2270, "
            "in execute_model\n"
            "(EngineCore_DP0 pid=1) ERROR 11-20 14:02:11 [core.py:1021]   File \"/v/sampler.py\", line 9, in forward\n"
            "(EngineCore_DP0 pid=1) ERROR 11-20 14:02:11 [core.py:1021] torch.OutOfMemoryError: CUDA out of memory.\n")
    result = explain(text, _plan())
    assert [m.id for m in result.matches] == ["oom-runtime"]
    assert result.plan_change["max_num_seqs"] == {"from": 8, "to": 4, "because": "oom-runtime"}


def test_cli_explain_reads_stdin_and_prints_json(tmp_path):
    text = (Path(__file__).parent / "fixtures" / "bf16_turing.log").read_text()
    plan = tmp_path / "plan.json"
    plan.write_text(_plan().model_dump_json())
    proc = subprocess.run([sys.executable, "-m", "vlmctl.cli.main", "doctor", "explain", "-", "--plan", str(plan),
                           "--json"], input=text, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["known"] and data["matches"][0]["id"] == "bf16-unsupported"
    assert data["plan_change"]["dtype"] == {"to": "float16", "because": "bf16-unsupported", "from": "bfloat16"}


def test_cli_explain_missing_file_is_a_config_error():
    proc = subprocess.run([sys.executable, "-m", "vlmctl.cli.main", "doctor", "explain", "/no/such.log"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr


def test_two_failures_in_one_log_are_both_reported_in_log_order():
    fixtures = Path(__file__).parent / "fixtures"
    text = (fixtures / "mm_profile_too_short.log").read_text() + (fixtures / "kv_v1_estimated.log").read_text()
    result = explain(text)
    assert [m.id for m in result.matches] == ["mm-profile-too-short", "kv-max-seq-len-v1"]
    assert result.matches[0].line < result.matches[1].line


def test_kv_no_blocks_reports_the_budget_vllm_printed_old_and_new_wording():
    fixtures = Path(__file__).parent / "fixtures"
    new = explain((fixtures / "kv_no_blocks_v026_h100.log").read_text()).matches[0].values
    old = explain((fixtures / "kv_negative_rtx4060.log").read_text()).matches[0].values
    assert new == {"available_kv_gib": -4.73, "torch_peak_gib": 13.32, "weights_gib": 62.44}
    assert old == {"available_kv_gib": -1.05}
