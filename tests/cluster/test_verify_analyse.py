"""`cluster verify`: the local probe (real), and the comparison of probes into findings."""
from __future__ import annotations

import platform

import pytest

from vlmctl.cluster.probe import GpuProbe, ModelProbe, NodeProbe, fingerprint_model, probe_node
from vlmctl.cluster.verify import analyse, arch_supports
from vlmctl.clusterspec import ClusterSpec

SPEC = ClusterSpec.model_validate({
    "name": "lab", "model_path": "/models/q",
    "nodes": [{"name": "a", "address": "10.0.0.1", "gpu": "titan-rtx", "gpu_count": 2},
              {"name": "b", "address": "10.0.0.2", "gpu": "rtx-2080-ti", "gpu_count": 2}],
})
VERSIONS = {"python": "3.11.7", "ray": "2.60.0", "vllm": "0.26.0", "torch": "2.9.0", "transformers": "5.24.0", "nccl": "2.27.3"}


def _probe(node: str, **over) -> NodeProbe:
    base = dict(node=node, address=f"10.0.0.{1 if node == 'a' else 2}", hostname=f"host-{node}",
                hostname_ip=f"10.0.0.{1 if node == 'a' else 2}",
                gpus=[GpuProbe(index=i, name="NVIDIA TITAN RTX", compute_capability="7.5", total_gib=23.6, used_gib=0.3)
                      for i in range(2)],
                cuda_visible_devices="0,1", torch_cuda="12.8", torch_arch_list=["sm_75", "sm_80", "sm_86", "sm_90"],
                versions=dict(VERSIONS), model=ModelProbe(path="/models/q", present=True, fingerprint="abc", hashes={"config.json": "1"}),
                shm_gib=16.0, disk_free_gib=200.0,
                env={"GLOO_SOCKET_IFNAME": "eth0", "NCCL_SOCKET_IFNAME": "=eth0"}, interfaces=["eth0", "lo"])
    base.update(over)
    return NodeProbe(**base)


def _ids(findings) -> list[str]:
    return sorted(f.id for f in findings)


def test_matching_nodes_give_no_findings():
    assert analyse([_probe("a"), _probe("b")], SPEC, {"a": "10.0.0.1", "b": "10.0.0.2"}) == []


@pytest.mark.parametrize("arch, cc, ok", [
    (["sm_80", "sm_86", "sm_90"], "7.5", False),     # the Titan RTX / 2080 Ti trap
    (["sm_75", "sm_80"], "7.5", True),
    (["sm_80"], "8.6", True),                         # same major, newer minor runs sm_80 cubins
    (["sm_86"], "8.0", False),
    (["sm_80", "compute_80"], "8.9", True),
    (["sm_90", "compute_90"], "12.0", True),          # PTX JIT for newer GPUs
    (["sm_90"], "12.0", False),
    (["sm_90a"], "9.0", True),
    (["sm_90a"], "10.0", False),
    (["sm_100", "sm_120"], "12.0", True),
])
def test_arch_supports(arch, cc, ok):
    assert arch_supports(arch, cc) is ok


def test_no_kernel_image_trap_names_node_and_capability():
    findings = analyse([_probe("a", torch_arch_list=["sm_80", "sm_86", "sm_90"]), _probe("b")], SPEC)
    f = next(f for f in findings if f.id == "cuda-arch")
    assert f.severity == "error" and "node 'a'" in f.message and "7.5" in f.message and "no kernel image" in f.message
    assert "sm_75" in f.fix


def test_no_gpu_is_a_finding_not_a_crash():
    findings = analyse([_probe("a", gpus=[], gpu_error="NVML Shared Library Not Found"), _probe("b")], SPEC)
    assert _ids(findings) == ["no-gpu"] and "node 'a'" in findings[0].message


def test_version_differences_are_findings_per_package():
    b_versions = dict(VERSIONS, ray="2.59.0", transformers="5.23.0")
    findings = analyse([_probe("a"), _probe("b", versions=b_versions)], SPEC)
    by_id = {f.id: f for f in findings}
    assert set(by_id) == {"version-skew-ray", "version-skew-transformers"}
    assert by_id["version-skew-ray"].severity == "error" and "2.59.0 on b" in by_id["version-skew-ray"].message
    assert by_id["version-skew-transformers"].severity == "warning"


def test_missing_model_names_the_node_and_mismatch_names_the_files():
    missing = analyse([_probe("a"), _probe("b", model=ModelProbe(path="/models/q", present=False))], SPEC)
    assert _ids(missing) == ["model-missing"] and "node 'b'" in missing[0].message
    other = ModelProbe(path="/models/q", present=True, fingerprint="def", hashes={"config.json": "2"})
    mismatch = analyse([_probe("a"), _probe("b", model=other)], SPEC)
    assert _ids(mismatch) == ["model-mismatch"] and "config.json" in mismatch[0].message


def test_node_problems(tmp_path):
    findings = analyse([
        _probe("a", hostname_ip="127.0.1.1", shm_gib=0.06, disk_free_gib=1.0),
        _probe("b", env={"GLOO_SOCKET_IFNAME": "eth7", "VLLM_HOST_IP": "10.0.0.9"}),
    ], SPEC, {"a": "10.0.0.1", "b": "10.0.0.2"})
    assert _ids(findings) == ["disk-low", "hostname-loopback", "node-env", "node-ip-mismatch", "shm-small"]
    assert next(f for f in findings if f.id == "hostname-loopback").severity == "info"  # GLOO_SOCKET_IFNAME is set
    bare = analyse([_probe("a", hostname_ip="127.0.1.1", env={})], None)
    assert {f.id: f.severity for f in bare}["hostname-loopback"] == "warning"


def test_nodes_missing_from_ray_and_gpus_missing_from_nvml():
    findings = analyse([_probe("a", cuda_visible_devices="0,1,5")], SPEC)
    assert _ids(findings) == ["gpu-missing", "node-not-joined"]
    assert "'b'" in next(f.message for f in findings if f.id == "node-not-joined")


def test_fingerprint_reads_configs_not_weights(tmp_path):
    (tmp_path / "config.json").write_text('{"a": 1}')
    (tmp_path / "model.safetensors.index.json").write_text("{}")
    (tmp_path / "model-00001.safetensors").write_bytes(b"\0" * 1000)
    first = fingerprint_model(str(tmp_path))
    assert first.present and first.files == 3
    assert set(first.hashes) == {"config.json", "model.safetensors.index.json"}
    (tmp_path / "model-00001.safetensors").write_bytes(b"\1" * 1000)  # same size: not read, same print
    assert fingerprint_model(str(tmp_path)).fingerprint == first.fingerprint
    (tmp_path / "config.json").write_text('{"a": 2}')
    assert fingerprint_model(str(tmp_path)).fingerprint != first.fingerprint
    assert not fingerprint_model(str(tmp_path / "nope")).present


def test_probe_of_this_machine_runs_without_gpu(tmp_path):
    p = probe_node("here", "127.0.0.1", str(tmp_path))
    assert p.versions["python"] == platform.python_version()
    assert p.versions["ray"] and p.versions["torch"]
    assert p.model.present and p.shm_gib is not None and p.disk_free_gib is not None
    if not p.gpus:
        assert p.gpu_error
