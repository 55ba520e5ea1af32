"""`vlmctl compose`: generated files compared with checked-in snapshots (UPDATE_SNAPSHOT=1 rewrites them)."""
from __future__ import annotations

import os
from pathlib import Path

import yaml

from vlmctl.cli.main import main
from vlmctl.cluster.compose import compose_service, compose_text, readme_text
from vlmctl.clusterspec import load_cluster

SNAPSHOTS = Path(__file__).parent / "snapshots"
FIELD_REPORT = """\
name: lab
model_path: /models/Qwen2.5-VL-72B-Instruct-AWQ
nodes:
  - name: gpu-a
    address: 192.168.1.10
    gpu: titan-rtx
    gpu_ids: [0, 3, 4]
    nic: enp134s0f0
  - name: gpu-b
    address: 192.168.1.11
    gpu: rtx-2080-ti
    gpu_count: 8
    model_path: /data/models/Qwen2.5-VL-72B-Instruct-AWQ
"""
MODEL = "Qwen/Qwen2.5-VL-72B-Instruct-AWQ"


def _check(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOT") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no snapshot {path}; run with UPDATE_SNAPSHOT=1 once"
    assert text == path.read_text(), f"{name} changed; if intended, rerun with UPDATE_SNAPSHOT=1"


def _spec(tmp_path):
    f = tmp_path / "cluster.yaml"
    f.write_text(FIELD_REPORT)
    return load_cluster(f)


def _plan(spec):
    from vlmctl.plan import make_plan

    # the field report's two-node pipeline, pinned (the planner itself now runs the 72B on the 2080 Ti node alone);
    # the snapshots are vLLM 0.26 plans
    result = make_plan(MODEL, cluster=spec, vllm_version="0.26.0", tensor_parallel_size=2, pipeline_parallel_size=5)
    assert result.ok, result.findings
    return result.plan


def test_compose_files_match_snapshots(tmp_path):
    spec = _spec(tmp_path)
    plan = _plan(spec)
    for node in spec.nodes:
        _check(f"docker-compose.{node.name}.yml", compose_text(spec, node.name, plan=plan))
    _check("README.md", readme_text(spec, plan=plan))


def test_compose_reserves_the_planned_gpus_and_nothing_else(tmp_path):
    spec = _spec(tmp_path)
    plan = _plan(spec)
    assert [n.gpu_ids for n in plan.nodes] == [[0, 3], list(range(8))]  # the plan leaves titan GPU 4 free
    head = compose_service(spec, "gpu-a", plan=plan)["services"]
    ray = head["ray"]
    assert ray["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] == ["0", "3"]
    assert ray["environment"]["CUDA_VISIBLE_DEVICES"] == "0,1"  # the container renumbers the two it gets
    assert ray["command"][ray["command"].index("--cuda-visible-devices") + 1] == "0,1"
    assert ray["command"][ray["command"].index("--plan") + 1] == "/etc/vlmctl/plan.json"
    # Ray offers exactly the GPUs the layer split assumes: 2 + 8 = 10 = TP x PP.
    total = sum(len(compose_service(spec, n.name, plan=plan)["services"]["ray"]["environment"]["CUDA_VISIBLE_DEVICES"]
                    .split(",")) for n in spec.nodes)
    assert total == plan.tensor_parallel_size * plan.pipeline_parallel_size == 10


def test_compose_content_rules(tmp_path):
    spec = _spec(tmp_path)
    plan = _plan(spec)
    head_doc = compose_service(spec, "gpu-a", plan=plan)["services"]
    head, worker = head_doc["ray"], compose_service(spec, "gpu-b", plan=plan)["services"]["ray"]
    for svc in (head, worker):
        assert svc["network_mode"] == "host" and svc["ipc"] == "host" and svc["restart"] == "unless-stopped"
        assert svc["volumes"][0].endswith(":/models/Qwen2.5-VL-72B-Instruct-AWQ:ro")  # same path inside
        assert svc["environment"]["VLLM_WORKER_MULTIPROC_METHOD"] == "spawn"
        assert svc["entrypoint"] == ["vlmctl"]  # the vLLM image's ENTRYPOINT is `vllm serve`
        assert any(v.endswith(":/root/.cache/huggingface") for v in svc["volumes"])
        assert svc["environment"]["HF_TOKEN"] == "${HF_TOKEN:-}"  # from the shell running compose, never in the file
        if plan.pp_layer_partition:
            assert svc["environment"]["VLLM_PP_LAYER_PARTITION"] == ",".join(map(str, plan.pp_layer_partition))
    assert head["environment"]["NCCL_SOCKET_IFNAME"] == "=enp134s0f0"
    assert head["command"][:2] == ["cluster", "up"] and "--block" in head["command"]
    assert worker["command"][:3] == ["cluster", "join", "192.168.1.10"]
    assert worker["volumes"][0] == "/data/models/Qwen2.5-VL-72B-Instruct-AWQ:/models/Qwen2.5-VL-72B-Instruct-AWQ:ro"
    assert "NCCL_SOCKET_IFNAME" not in worker["environment"]  # found at start from the route to the head
    assert head["environment"]["VLLM_CONFIG_ROOT"] == "/tmp/vlmctl/lab-gpu-a/vllm-config"
    api = head_doc["api"]
    assert api["command"][:3] == ["serve", "--plan", "/etc/vlmctl/plan.json"] and "--cluster" in api["command"]
    assert "/health" in " ".join(api["healthcheck"]["test"]) and api["depends_on"] == ["ray"]
    assert api["command"][api["command"].index("--cuda-visible-devices") + 1] == "0,1"  # the container's numbering
    assert api["environment"]["VLMCTL_API_KEY"].startswith("${VLMCTL_API_KEY:?")
    assert "api" not in compose_service(spec, "gpu-b", plan=plan)["services"]
    assert "api" not in compose_service(spec, "gpu-a")["services"]  # no plan, nothing to serve


def test_cli_writes_files_that_parse(tmp_path, capsys):
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(FIELD_REPORT)
    out = tmp_path / "deploy"
    assert main(["compose", "--cluster", str(cluster), "-o", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["README.md", "cluster.yaml", "docker-compose.gpu-a.yml", "docker-compose.gpu-b.yml", "monitoring",
                     "ray_auth_token"]
    token = out / "ray_auth_token"
    assert len(token.read_text()) == 64 and token.stat().st_mode & 0o777 == 0o600  # Ray's token, same on every node
    assert sorted(p.name for p in (out / "monitoring").iterdir()) == ["README.md", "grafana-dashboard.json", "prometheus.yml"]
    doc = yaml.safe_load((out / "docker-compose.gpu-b.yml").read_text())
    assert doc["services"]["ray"]["container_name"] == "vlmctl-lab-gpu-b"
    assert "Next:" in capsys.readouterr().out


def test_cli_bad_cluster_file_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "c.yaml"
    bad.write_text("nodes:\n  - name: a\n    gpu: rtx-2080-ti\n    nics: eth0\n")
    assert main(["compose", "--cluster", str(bad), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "unknown key" in err and "Did you mean 'nic'" in err
