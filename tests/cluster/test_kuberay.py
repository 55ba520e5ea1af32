"""`vlmctl k8s`: RayCluster manifests validated against KubeRay's own CRD schema (v1.7.0, tests/cluster/data)."""
from __future__ import annotations

import gzip
import json
import shlex
import subprocess
from functools import lru_cache
from pathlib import Path

import jsonschema
import pytest
import yaml

from vlmctl.cli.main import main
from vlmctl.cluster.kuberay import API_KEY_SECRET, CONFIG_MAP, launch_for, raycluster, serve_script, shm_limit_gib
from vlmctl.launch import NON_CARRY_OVER
from vlmctl.clusterspec import ClusterSpec
from vlmctl.plan import make_plan

CRD = Path(__file__).parent / "data" / "kuberay-v1.7.0" / "ray.io_rayclusters.yaml.gz"
CLUSTER = """\
name: Lab_One
model_path: /models/Qwen2.5-VL-7B-Instruct
nodes:
  - {name: gpu-a, address: 192.168.1.10, gpu: titan-rtx, gpu_count: 2}
  - {name: gpu-b, address: 192.168.1.11, gpu: rtx-2080-ti, gpu_count: 2}
  - {name: gpu-c, address: 192.168.1.12, gpu: rtx-2080-ti, gpu_count: 2}
  - {name: gpu-d, address: 192.168.1.13, gpu: rtx-2080-ti, gpu_ids: [0, 1, 2, 3]}
"""


@lru_cache(maxsize=1)
def _schema() -> dict:
    crd = yaml.safe_load(gzip.decompress(CRD.read_bytes()))
    assert crd["spec"]["names"]["kind"] == "RayCluster"
    return next(v for v in crd["spec"]["versions"] if v["name"] == "v1")["schema"]["openAPIV3Schema"]


def _validate(manifest: dict) -> None:
    jsonschema.Draft7Validator(_schema()).validate(manifest)


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    folder = tmp_path_factory.mktemp("k8s")
    cluster = folder / "cluster.yaml"
    cluster.write_text(CLUSTER)
    # TP and PP fixed, so the layout (every node, two GPUs each) does not follow the search's ranking
    result = make_plan("Qwen/Qwen2.5-VL-7B-Instruct", cluster=str(cluster), tensor_parallel_size=2,
                       pipeline_parallel_size=4)
    assert result.ok and result.plan is not None
    assert [n.name for n in result.plan.nodes] == ["gpu-a", "gpu-b", "gpu-c", "gpu-d"]
    return result.plan, ClusterSpec.model_validate(yaml.safe_load(CLUSTER)), cluster, folder


def test_the_written_manifest_validates_against_the_kuberay_crd(planned):
    plan, _, cluster, folder = planned
    plan_file = folder / "plan.json"
    plan_file.write_text(plan.model_dump_json())
    out = folder / "out"
    assert main(["k8s", "--plan", str(plan_file), "--cluster", str(cluster), "-o", str(out)]) == 0
    text = (out / "raycluster.yaml").read_text()
    config, manifest = yaml.safe_load_all(text)
    _validate(manifest)
    assert config["kind"] == "ConfigMap" and config["metadata"]["name"] == CONFIG_MAP
    assert set(json.loads(config["data"]["ray_non_carry_over_env_vars.json"])) >= set(NON_CARRY_OVER)
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["kind"] == "RayCluster"
    assert manifest["metadata"]["name"] == "lab-one"  # a DNS-1123 name from the cluster name
    assert "# nodeSelector:" in text and "#   nvidia.com/gpu.product: SET-ME" in text  # placeholders, commented


def test_head_and_one_worker_group_per_gpu_type_with_the_plans_gpus(planned):
    plan, spec, _, _ = planned
    manifest = raycluster(plan, spec)
    gpus = {n.name: len(n.gpu_ids) for n in plan.nodes}
    head = manifest["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert head["resources"]["limits"]["nvidia.com/gpu"] == gpus["gpu-a"]
    groups = {g["groupName"]: g for g in manifest["spec"]["workerGroupSpecs"]}
    expected = {}
    for node in plan.nodes:
        if node.name != "gpu-a":
            key = f"{node.gpu_type}-x{len(node.gpu_ids)}"
            expected[key] = expected.get(key, 0) + 1
    assert {name: g["replicas"] for name, g in groups.items()} == expected
    assert sum(g["replicas"] * g["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]
               for g in groups.values()) + gpus["gpu-a"] == sum(gpus.values())
    for g in groups.values():
        assert g["minReplicas"] == g["maxReplicas"] == g["replicas"]
        pod = g["template"]["spec"]
        limit = pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]
        env = {e["name"]: e for e in pod["containers"][0]["env"]}
        assert env["VLLM_HOST_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
        assert env["VLMCTL_NODE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        assert env["NCCL_SOCKET_IFNAME"]["value"] == "=eth0" and env["GLOO_SOCKET_IFNAME"]["value"] == "eth0"
        assert env["CUDA_VISIBLE_DEVICES"]["value"] == ",".join(str(i) for i in range(limit))
        for key, value in plan.env.items():
            assert env[key]["value"] == value  # the plan's vLLM environment on every Ray process
        config_root = env["VLLM_CONFIG_ROOT"]["value"]
        assert {"name": "vllm-config", "mountPath": config_root, "readOnly": True} in pod["containers"][0]["volumeMounts"]
        shm = next(v for v in pod["volumes"] if v["name"] == "dshm")
        assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": f"{shm_limit_gib(limit)}Gi"}
        model = next(v for v in pod["volumes"] if v["name"] == "model")
        assert model["hostPath"]["path"] == plan.model_path
        assert {"name": "model", "mountPath": plan.model_path, "readOnly": True} in pod["containers"][0]["volumeMounts"]


def test_head_starts_vllm_serve_with_the_plans_argv_after_rays_gpus_appear(planned):
    plan, spec, _, _ = planned
    head = raycluster(plan, spec)["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    (script,) = head["args"]
    assert script == serve_script(launch_for(plan, spec))
    assert 'export RAY_ADDRESS="$VLLM_HOST_IP:6379"' in script  # the driver joins this pod's Ray, not a new one
    assert "ray start" not in script  # else KubeRay would not append its own `ray start --block`
    # KubeRay runs `/bin/bash -c -- " <args>  && ulimit -n …; ray start … --block"` (pod.go): valid shell
    composed = f" {script}  && ulimit -n ${{RAY_START_ULIMIT_OPEN_FILES:-65536}}; ray start --head --block"
    assert subprocess.run(["bash", "-n", "-c", composed]).returncode == 0
    serve = script[script.index("exec ") + 5: script.index("\n}")].replace("\\\n", " ")
    argv = shlex.split(serve)
    assert argv[:3] == ["vllm", "serve", plan.model_path]
    assert argv[argv.index("--pipeline-parallel-size") + 1] == str(plan.pipeline_parallel_size)
    assert argv[argv.index("--port") + 1] == str(spec.ports.api) and argv[argv.index("--host") + 1] == "0.0.0.0"
    assert f">= {sum(len(n.gpu_ids) for n in plan.nodes)}" in script
    env = {e["name"]: e for e in head["env"]}
    assert env["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": API_KEY_SECRET, "key": "key", "optional": True}
    assert {"name": "vllm-api", "containerPort": spec.ports.api} in head["ports"]


def test_a_single_node_plan_has_no_worker_groups_and_still_validates():
    spec = ClusterSpec.model_validate({"name": "one", "nodes": [{"name": "box", "gpu": "a100-80gb", "gpu_count": 1}]})
    result = make_plan("Qwen/Qwen2.5-VL-7B-Instruct", cluster=spec)
    manifest = raycluster(result.plan, spec)
    _validate(manifest)
    assert manifest["spec"]["workerGroupSpecs"] == []


def test_the_schema_check_can_fail():
    spec = ClusterSpec.model_validate({"name": "one", "nodes": [{"name": "box", "gpu": "a100-80gb", "gpu_count": 1}]})
    manifest = raycluster(make_plan("Qwen/Qwen2.5-VL-7B-Instruct", cluster=spec).plan, spec)
    manifest["spec"]["headGroupSpec"]["rayStartParams"]["num-gpus"] = 1  # KubeRay wants strings here
    with pytest.raises(jsonschema.ValidationError):
        _validate(manifest)


def test_bad_input_is_one_line(tmp_path, capsys, planned):
    plan, _, _, folder = planned
    plan_file = folder / "plan2.json"
    plan_file.write_text(plan.model_dump_json())
    other = tmp_path / "other.yaml"
    other.write_text("name: x\nnodes:\n  - {name: z, gpu: a100-80gb}\n")
    assert main(["k8s", "--plan", str(plan_file), "--cluster", str(other), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "does not list" in err and "fix:" in err
    assert main(["k8s", "--plan", str(plan_file), "--cluster", str(other), "--pod-nic", "eth0;rm"]) == 2


def test_manifest_snapshot(tmp_path):
    """The whole file for a fixed plan (tests/cluster/data, written by `vlmctl plan` with TP 2 x PP 4);
    UPDATE_SNAPSHOT=1 rewrites tests/cluster/snapshots/raycluster.yaml."""
    import os

    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(CLUSTER)
    out = tmp_path / "k8s"
    assert main(["k8s", "--plan", str(Path(__file__).parent / "data" / "plan-lab-tp2pp4.json"),
                 "--cluster", str(cluster), "-o", str(out)]) == 0
    text = (out / "raycluster.yaml").read_text()
    snapshot = Path(__file__).parent / "snapshots" / "raycluster.yaml"
    if os.environ.get("UPDATE_SNAPSHOT") == "1":
        snapshot.write_text(text)
    assert text == snapshot.read_text(), "raycluster.yaml changed; if intended, rerun with UPDATE_SNAPSHOT=1"
    _validate(list(yaml.safe_load_all(text))[1])
