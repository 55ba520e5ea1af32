"""`vlmctl plan` as a user runs it: a real subprocess, exit codes, one-line errors, JSON that round-trips."""
import json
import os
import subprocess
import sys

import pytest

from vlmctl.plan import PlanResult


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "vlmctl.cli.main", "plan", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


def test_json_round_trips_and_exit_0():
    p = run("Qwen/Qwen2.5-VL-7B-Instruct", "--gpus", "a100-80gb:2", "--json")
    assert p.returncode == 0, p.stderr
    result = PlanResult.model_validate_json(p.stdout)
    assert result.ok and result.plan.kv_cache_tokens > 0
    data = json.loads(p.stdout)
    assert {"ok", "plan", "findings", "alternatives"} <= set(data)


def test_infeasible_exits_3_with_findings():
    p = run("Qwen/Qwen2.5-VL-3B-Instruct", "--gpus", "a100-80gb:8", "--tensor-parallel-size", "6", "--json")
    assert p.returncode == 3
    data = json.loads(p.stdout)
    assert data["ok"] is False and data["findings"][0]["id"] == "tp-heads"
    p = run("Qwen/Qwen2.5-VL-3B-Instruct", "--gpus", "a100-80gb:8", "--tensor-parallel-size", "6")
    assert p.returncode == 3
    assert "error: no configuration starts: [tp-heads]" in p.stderr


def test_table_output_and_next_step(tmp_path):
    out = tmp_path / "plan.json"
    p = run("Qwen/Qwen2.5-VL-72B-Instruct", "--gpus", "rtx-2080-ti:8,rtx-2080-ti:8", "-o", str(out),
            env={"COLUMNS": "200"})
    assert p.returncode == 0, p.stderr
    assert "STARTS" in p.stdout and "Memory per GPU (GiB)" in p.stdout and "media-capped" in p.stdout
    assert "node0" in p.stdout and "rtx-2080-ti ×8" in p.stdout and "KV blocks" in p.stdout
    assert f"vlmctl serve --plan {out} --dry-run" in p.stdout
    assert PlanResult.model_validate_json(out.read_text()).plan.tensor_parallel_size == 8


@pytest.mark.parametrize("args,needle", [
    (["Qwen/Qwen2.5-VL-7B-Instruct"], "no hardware given"),
    (["Qwen/Qwen2.5-VL-7B-Instruct", "--gpus", "rtx-2080:2"], "Did you mean 'rtx-2080-ti'"),
    (["Qwen/Qwen2.5-VL-7B-Instruc", "--gpus", "t4"], "Did you mean 'Qwen/Qwen2.5-VL-7B-Instruct'"),
    (["./no/such/folder", "--gpus", "t4"], "model folder './no/such/folder' does not exist"),
    (["Qwen/Qwen2.5-VL-7B-Instruct", "--gpus", "t4", "--gpu-memory-utilization", "1.5"],
     "gpu_memory_utilization: Input should be less than or equal to 1 (got 1.5)"),
    (["Qwen/Qwen2.5-VL-7B-Instruct", "--gpus", "t4", "--gpu-memory-utilization", "0"], "greater than 0"),
    (["Qwen/Qwen2.5-VL-7B-Instruct", "--gpus", "t4", "--max-model-len", "-5"], "max_model_len"),
    (["Qwen/Qwen2.5-VL-7B-Instruct", "--gpus", "t4", "--tensor-parallel-size", "0"], "tensor_parallel_size"),
    (["Qwen/Qwen2.5-VL-7B-Instruct", "--gpus", "t4", "--limit-mm-per-prompt", "{image:1}"], "is not valid JSON"),
    (["Qwen/Qwen2.5-VL-7B-Instruct", "--gpus", "t4", "--limit-mm-per-prompt", '{"audio":1}'],
     "key 'audio' is not a modality"),
    (["Qwen/Qwen2.5-VL-7B-Instruct", "--gpus", "t4", "--cluster", "c.yaml"], "both given"),
    (["Qwen/Qwen2.5-VL-7B-Instruct", "--cluster", "/no/such.yaml"], "cannot read cluster file"),
    (["Qwen/Qwen2.5-VL-7B-Instruct", "--gpus", "t4", "--workload", "image@1280"], "--workload 'image@1280' is not"),
    (["Qwen/Qwen2.5-VL-7B-Instruct", "--gpus", "t4", "--prompt-tokens", "0"], "prompt_tokens"),
    (["Qwen/Qwen2.5-VL-7B-Instruct", "--gpus", "t4", "--concurrency", "0"], "concurrency"),
    (["Qwen/Qwen2.5-VL-7B-Instruct", "--gpus", "t4", "--max-tpot-ms", "-1"], "max_tpot_ms"),
    (["Qwen/Qwen2.5-VL-7B-Instruct", "--gpus", "t4", "--data-parallel-size", "0"], "data_parallel_size"),
])
def test_bad_input_exit_2_one_line_no_traceback(args, needle):
    p = run(*args)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert needle in p.stderr
    assert "Traceback" not in p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert lines[0].startswith("error: ") and lines[1].startswith("  fix: ") and len(lines) == 2


def test_speed_contract_in_json_and_table():
    args = ("Qwen/Qwen2.5-VL-7B-Instruct", "--gpus", "h100-80gb:4", "--concurrency", "32", "--workload",
            "image@1280x720", "--prompt-tokens", "100", "--output-tokens", "128", "--vllm-version", "0.26.0")
    p = run(*args, "--json")
    assert p.returncode == 0, p.stderr
    plan = PlanResult.model_validate_json(p.stdout).plan
    sp = plan.speed
    assert (sp.workload, sp.concurrency, sp.output_tokens) == ("image@1280x720", 32, 128)
    assert sp.ttft_ms > 0 and sp.tpot_ms > 0 and sp.output_tokens_per_s > 0
    assert plan.data_parallel_size * plan.tensor_parallel_size * plan.pipeline_parallel_size == 4
    table = run(*args, env={"COLUMNS": "220"})
    assert table.returncode == 0, table.stderr
    assert "predicted speed" in table.stdout and f"{sp.output_tokens_per_s:,.0f} output tok/s" in table.stdout
    assert "Runner-up" in table.stdout and "TTFT / TPOT ms" in table.stdout


def test_debug_shows_traceback():
    p = run("Qwen/Qwen2.5-VL-7B-Instruct", "--gpus", "rtx-2080:2", env={"VLMCTL_DEBUG": "1"})
    assert p.returncode != 0 and "Traceback" in p.stderr


def test_malformed_yaml_and_non_vlm_folder(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("nodes: [\n")
    p = run("Qwen/Qwen2.5-VL-7B-Instruct", "--cluster", str(bad))
    assert p.returncode == 2 and "not valid YAML" in p.stderr
    folder = tmp_path / "llama"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "llama"}')
    p = run(str(folder), "--gpus", "t4")
    assert p.returncode == 2 and "not a supported vision-language model" in p.stderr


def test_help_has_examples():
    p = run("--help")
    assert p.returncode == 0
    assert "Examples:" in p.stdout and "vlmctl plan Qwen/Qwen2.5-VL-7B-Instruct --gpus h100-80gb:1" in p.stdout


def test_plan_imports_nothing_heavy():
    code = ("import sys; from vlmctl.cli.main import main; "
            "rc = main(['plan','Qwen/Qwen2.5-VL-7B-Instruct','--gpus','t4:2','--json']); "
            "heavy=[m for m in ('torch','ray','vllm','gradio','transformers') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=60)


def test_emit_commands_per_node(tmp_path):
    cluster = tmp_path / "c.yaml"
    cluster.write_text("model_path: /models/q3b\nnodes:\n"
                       "  - {name: head, address: 10.0.0.1, gpu: rtx-2080-ti, gpu_ids: [2, 3], nic: enp134s0f0}\n"
                       "  - {name: worker, address: 10.0.0.2, gpu: rtx-2080-ti, gpu_count: 2, nic: eth1}\n")
    p = run("Qwen/Qwen2.5-VL-3B-Instruct-AWQ", "--cluster", str(cluster), "--emit", "commands", "-tp", "2", "-pp", "2")
    assert p.returncode == 0, p.stderr
    head, worker = p.stdout.split("# node worker")
    assert "export CUDA_VISIBLE_DEVICES=2,3" in head and "export NCCL_SOCKET_IFNAME==enp134s0f0" in head
    assert "ray start --node-ip-address=10.0.0.1 " in head and "--head --port=6379" in head
    assert "vllm serve /models/q3b" in head and "--distributed-executor-backend ray" in head
    assert "ray start --node-ip-address=10.0.0.2 " in worker and "--address=10.0.0.1:6379" in worker
    assert "export GLOO_SOCKET_IFNAME=eth1" in worker and "vllm serve" not in worker
