"""`vlmctl serve` on the command line: dry runs, bind safety, plan files, and a dying engine explained."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests._servers import _vlmctl, free_port
from vlmctl.cli.main import main
from vlmctl.plan import make_plan

FAKE = str(Path(__file__).parent / "fake_vllm.py")


def _run(capsys, *args) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def one_node_plan_file(tmp_path) -> Path:
    """A plan `vlmctl serve` can launch without a cluster file (one node: no Ray cluster to find)."""
    result = make_plan("Qwen/Qwen2.5-VL-3B-Instruct-AWQ", gpus="rtx-2080-ti:2")
    path = tmp_path / "one-node-plan.json"
    path.write_text(result.model_dump_json(indent=2))
    return path


@pytest.fixture
def plan_file(tmp_path) -> Path:
    result = make_plan("Qwen/Qwen2.5-VL-3B-Instruct-AWQ", gpus="rtx-2080-ti:2,rtx-2080-ti:2",
                       tensor_parallel_size=2, pipeline_parallel_size=2)  # a two-node pipeline, pinned
    path = tmp_path / "plan.json"
    path.write_text(result.model_dump_json(indent=2))
    return path


def test_dry_run_demo_shell_and_json(capsys):
    code, out, _ = _run(capsys, "serve", "--dry-run", "--port", "8123")
    assert code == 0 and "-m vlmctl.cli.serve_demo --host 127.0.0.1 --port 8123" in out
    code, out, _ = _run(capsys, "serve", "--dry-run", "--json")
    data = json.loads(out)
    assert code == 0 and data["engine"] == "cpu" and data["argv"][1:3] == ["-m", "vlmctl.cli.serve_demo"]


def test_dry_run_from_plan_file_matches_the_plan(capsys, plan_file):
    code, out, _ = _run(capsys, "serve", "--plan", str(plan_file), "--dry-run", "--json", "--api-key", "k")
    assert code == 0
    data = json.loads(out)
    plan = json.loads(plan_file.read_text())["plan"]
    argv = data["argv"]
    assert data["engine"] == "vllm" and argv[:2] == ["vllm", "serve"]
    assert argv[argv.index("--tensor-parallel-size") + 1] == str(plan["tensor_parallel_size"])
    assert argv[argv.index("--pipeline-parallel-size") + 1] == str(plan["pipeline_parallel_size"])
    assert argv[argv.index("--distributed-executor-backend") + 1] == "ray"
    assert data["env"]["VLLM_API_KEY"] == "<redacted>" and "k" not in argv
    code, shell, _ = _run(capsys, "serve", "--plan", str(plan_file), "--dry-run")
    assert code == 0 and "export VLLM_WORKER_MULTIPROC_METHOD=spawn" in shell
    assert "vllm serve Qwen/Qwen2.5-VL-3B-Instruct-AWQ \\\n  --served-model-name" in shell
    # A two-node plan: vLLM's ray.init() must find the cluster (the head's address is not known without --cluster).
    assert 'export RAY_ADDRESS="$HEAD_IP:6379"' in shell and shell.startswith('HEAD_IP="${HEAD_IP:?') and data["env"]["RAY_ADDRESS"] == "$HEAD_IP:6379"
    assert "SOCKET_IFNAME" not in shell  # the driver carries no NIC: it would be copied onto every worker
    code, _, err = _run(capsys, "serve", "--plan", str(plan_file))  # for real: $HEAD_IP cannot be guessed
    assert code == 2 and "does not know the head's address" in err and "--cluster cluster.yaml" in err


def test_dry_run_plans_on_the_fly(capsys):
    code, out, _ = _run(capsys, "serve", "Qwen/Qwen2.5-VL-7B-Instruct", "--gpus", "h100-80gb:1", "--dry-run")
    assert code == 0 and "--tensor-parallel-size 1" in out and "--distributed-executor-backend" not in out


def test_infeasible_plan_is_refused(capsys):
    code, _, err = _run(capsys, "serve", "Qwen/Qwen2.5-VL-72B-Instruct", "--gpus", "rtx-2080-ti:1", "--dry-run")
    assert code == 3 and "predicted not to start" in err


def test_bad_plan_file(capsys, tmp_path):
    missing = tmp_path / "nope.json"
    code, _, err = _run(capsys, "serve", "--plan", str(missing), "--dry-run")
    assert code == 2 and "cannot read it" in err
    bad = tmp_path / "bad.json"
    bad.write_text('{"model": "x"}')
    code, _, err = _run(capsys, "serve", "--plan", str(bad), "--dry-run")
    assert code == 2 and "not a vlmctl plan" in err and "fix:" in err


def test_flag_errors(capsys, tmp_path):
    assert _run(capsys, "serve", "--json")[0] == 2
    assert _run(capsys, "serve", "--port", "70000", "--dry-run")[0] == 2
    code, _, err = _run(capsys, "serve", "--model", str(tmp_path / "absent"), "--dry-run")
    assert code == 2 and "local checkpoint folder" in err


def test_non_loopback_bind_needs_key_or_insecure(capsys):
    code, _, err = _run(capsys, "serve", "--host", "0.0.0.0", "--port", str(free_port()))
    assert code == 2 and "no API key is set" in err and "--insecure" in err


@pytest.mark.integration
def test_engine_death_is_explained_on_the_command_line(tmp_path, one_node_plan_file):
    env = {**os.environ, "FAKE_VLLM_DIE": "kv", "VLMCTL_CACHE_DIR": str(tmp_path), "NO_COLOR": "1"}
    proc = subprocess.run(
        [*_vlmctl(), "serve", "--plan", str(one_node_plan_file), "--port", str(free_port()),
         "--vllm-bin", f"{sys.executable} {FAKE}", "--log-file", str(tmp_path / "engine.log")],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert proc.returncode == 5, proc.stderr
    assert "error: the engine exited (code 1): [kv-max-seq-len-v1]" in proc.stderr
    assert "plan change: max_model_len:" in proc.stderr and "fix:" in proc.stderr


@pytest.mark.integration
def test_engine_ready_then_dies_is_explained(tmp_path, one_node_plan_file):
    env = {**os.environ, "FAKE_VLLM_DIE_AFTER_READY": "1", "VLMCTL_CACHE_DIR": str(tmp_path), "NO_COLOR": "1"}
    proc = subprocess.run(
        [*_vlmctl(), "serve", "--plan", str(one_node_plan_file), "--port", str(free_port()), "--api-key", "k",
         "--vllm-bin", f"{sys.executable} {FAKE}", "--log-file", str(tmp_path / "engine.log")],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert proc.returncode == 5, proc.stderr
    assert "ready" in proc.stdout and "fake-qwen" in proc.stdout and "Authorization: Bearer" in proc.stdout
    assert "[kv-max-seq-len-v1]" in proc.stderr


def test_multi_node_plan_gets_the_head_network_env(tmp_path, monkeypatch, capsys, plan_file):
    monkeypatch.setenv("VLMCTL_STATE_ROOT", str(tmp_path / "state"))
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text("name: t\nnodes:\n  - {name: head, address: 127.0.0.2, gpu: rtx-2080-ti, gpu_count: 2}\n"
                       "  - {name: worker, address: 10.231.99.2, gpu: rtx-2080-ti, gpu_count: 2}\n")
    from vlmctl.cli.serve import _vllm_launch

    code, _, err = _run(capsys, "serve", "--plan", str(plan_file), "--cluster", str(cluster), "--dry-run")
    assert code == 2 and "node 'node0', which the cluster file does not have" in err  # planned for --gpus
    plan = make_plan("Qwen/Qwen2.5-VL-3B-Instruct-AWQ", cluster=str(cluster)).plan
    plan_file.write_text(plan.model_dump_json())
    code, out, _ = _run(capsys, "serve", "--plan", str(plan_file), "--cluster", str(cluster), "--dry-run", "--json")
    shown = json.loads(out)["env"]
    assert code == 0 and shown["VLLM_HOST_IP"] == "127.0.0.2" and shown["RAY_ADDRESS"] == "127.0.0.2:6379"
    assert not (tmp_path / "state").exists()  # shown, nothing written
    _, env = _vllm_launch(plan, str(cluster), None, "127.0.0.1", 8000, None, ["vllm"], write=True)
    assert "GLOO_SOCKET_IFNAME" not in env and "NCCL_SOCKET_IFNAME" not in env
    assert env["VLLM_HOST_IP"] == "127.0.0.2" and env["RAY_ADDRESS"] == "127.0.0.2:6379"
    assert env["VLLM_WORKER_MULTIPROC_METHOD"] == "spawn"
    carry = json.loads((Path(env["VLLM_CONFIG_ROOT"]) / "ray_non_carry_over_env_vars.json").read_text())
    assert "NCCL_SOCKET_IFNAME" in carry and "GLOO_SOCKET_IFNAME" in carry
    code, _, _ = _run(capsys, "serve", "--plan", str(plan_file), "--cluster", str(cluster), "--dry-run")
    assert code == 0
    code, _, err = _run(capsys, "serve", "--plan", str(plan_file), "--gpus", "t4:2", "--dry-run")
    assert code == 2 and "--plan and --gpus both given" in err
