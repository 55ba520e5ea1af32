"""Per-node environment: which NIC, which address, which variables (interfaces and routes faked here;
tests/cluster/test_two_hosts.py checks the same against real namespaces)."""
from __future__ import annotations

import json

import pytest

from vlmctl.cluster import env as cenv
from vlmctl.cluster.env import Interface, NodeEnv, node_env, write_non_carry_over
from vlmctl.clusterspec import ClusterSpec
from vlmctl.errors import ClusterError, ConfigError

LAB = {
    "name": "lab",
    "model_path": "/models/qwen",
    "nodes": [
        {"name": "gpu-a", "address": "192.168.1.10", "gpu": "titan-rtx", "gpu_ids": [0, 3, 4]},
        {"name": "gpu-b", "address": "192.168.1.11", "gpu": "rtx-2080-ti", "gpu_count": 2},
    ],
}


def _machine(monkeypatch, ifaces: dict[str, tuple[bool, list[str]]], route: tuple[str, str] | None = None):
    table = {n: Interface(name=n, up=up, addresses=addrs) for n, (up, addrs) in ifaces.items()}
    monkeypatch.setattr(cenv, "interfaces", lambda: table)
    calls = []

    def fake_route(addr):
        calls.append(addr)
        assert route is not None, "no route lookup expected"
        return route

    monkeypatch.setattr(cenv, "route_to", fake_route)
    return calls


def test_head_uses_the_interface_that_holds_its_address(monkeypatch, tmp_path):
    _machine(monkeypatch, {"lo": (True, ["127.0.0.1"]), "docker0": (True, ["172.17.0.1"]),
                           "enp134s0f0": (True, ["192.168.1.10"])})
    ne = node_env(ClusterSpec.model_validate(LAB), root=tmp_path)
    assert (ne.node, ne.role, ne.nic, ne.address) == ("gpu-a", "head", "enp134s0f0", "192.168.1.10")
    assert ne.env["GLOO_SOCKET_IFNAME"] == "enp134s0f0"
    assert ne.env["NCCL_SOCKET_IFNAME"] == "=enp134s0f0"
    assert ne.env["VLLM_HOST_IP"] == "192.168.1.10"
    assert ne.env["CUDA_VISIBLE_DEVICES"] == "0,3,4"
    assert ne.env["VLLM_WORKER_MULTIPROC_METHOD"] == "spawn"
    assert ne.env["VLLM_CONFIG_ROOT"] == str(tmp_path / "lab-gpu-a" / "vllm-config")
    assert ne.state_dir == str(tmp_path / "lab-gpu-a")


def test_worker_uses_the_route_to_the_head(monkeypatch, tmp_path):
    calls = _machine(monkeypatch, {"lo": (True, ["127.0.0.1"]), "eth0": (True, ["10.0.0.5"]),
                                   "eth1": (True, ["192.168.1.11"])}, route=("eth1", "192.168.1.11"))
    ne = node_env(ClusterSpec.model_validate(LAB), root=tmp_path)
    assert calls == ["192.168.1.10"]
    assert (ne.node, ne.role, ne.nic, ne.nic_source) == ("gpu-b", "worker", "eth1", "route to 192.168.1.10")
    assert ne.env["NCCL_SOCKET_IFNAME"] == "=eth1" and ne.env["VLLM_HOST_IP"] == "192.168.1.11"
    assert ne.env["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert ne.head == "192.168.1.10:6379"


def test_cluster_file_nic_wins_and_must_exist(monkeypatch, tmp_path):
    data = json.loads(json.dumps(LAB))
    data["nodes"][1]["nic"] = "enp5s0"
    _machine(monkeypatch, {"enp5s0": (True, ["192.168.1.11"]), "eth1": (True, ["10.9.9.9"])}, route=("eth1", "10.9.9.9"))
    ne = node_env(ClusterSpec.model_validate(data), "gpu-b", root=tmp_path)
    assert (ne.nic, ne.nic_source, ne.address) == ("enp5s0", "cluster file", "192.168.1.11")

    data["nodes"][1]["nic"] = "enp5s1"
    with pytest.raises(ConfigError, match=r"'enp5s1' does not exist here\. Did you mean 'enp5s0'\?"):
        node_env(ClusterSpec.model_validate(data), "gpu-b", root=tmp_path)


def test_a_down_nic_is_refused(monkeypatch, tmp_path):
    data = json.loads(json.dumps(LAB))
    data["nodes"][1]["nic"] = "eth1"
    _machine(monkeypatch, {"eth1": (False, ["192.168.1.11"])})
    with pytest.raises(ConfigError, match="'eth1' is down") as exc:
        node_env(ClusterSpec.model_validate(data), "gpu-b", root=tmp_path)
    assert "ip link set eth1 up" in exc.value.fix


def test_unknown_machine_asks_for_node(monkeypatch, tmp_path):
    _machine(monkeypatch, {"eth0": (True, ["10.1.1.1"])})
    with pytest.raises(ConfigError, match="none of the cluster file's node addresses") as exc:
        node_env(ClusterSpec.model_validate(LAB), root=tmp_path)
    assert "--node" in exc.value.fix and "gpu-a" in exc.value.fix


def test_worker_whose_route_to_head_is_loopback_is_refused(monkeypatch, tmp_path):
    _machine(monkeypatch, {"lo": (True, ["127.0.0.1"]), "eth0": (True, ["192.168.1.10"])}, route=("lo", "127.0.0.1"))
    with pytest.raises(ConfigError, match="local to this machine"):
        node_env(ClusterSpec.model_validate(LAB), "gpu-b", root=tmp_path)


ONE_MACHINE = {"name": "one", "nodes": [{"name": "a", "address": "127.0.0.2", "gpu": "h100-80gb", "gpu_ids": [0, 1]},
                                       {"name": "b", "address": "127.0.0.3", "gpu": "h100-80gb", "gpu_ids": [2, 3]}]}


def test_two_nodes_on_one_machine_take_their_own_loopback_addresses(monkeypatch, tmp_path):
    _machine(monkeypatch, {"lo": (True, ["127.0.0.1"]), "eth0": (True, ["10.0.0.5"])}, route=("lo", "127.0.0.1"))
    spec = ClusterSpec.model_validate(ONE_MACHINE)
    head, worker = node_env(spec, "a", root=tmp_path), node_env(spec, "b", root=tmp_path)
    assert (head.role, head.nic, head.address) == ("head", "lo", "127.0.0.2")
    assert (worker.role, worker.nic, worker.address, worker.head) == ("worker", "lo", "127.0.0.3", "127.0.0.2:6379")
    assert "shares this machine" in worker.nic_source
    assert (head.env["CUDA_VISIBLE_DEVICES"], worker.env["CUDA_VISIBLE_DEVICES"]) == ("0,1", "2,3")
    assert head.state_dir != worker.state_dir
    assert head.env["RAY_AUTH_MODE"] == worker.env["RAY_AUTH_MODE"] == "token"  # one mode, token auth by default
    assert head.env["RAY_AUTH_TOKEN_PATH"] == worker.env["RAY_AUTH_TOKEN_PATH"]  # the path, never the token
    assert head.env["RAY_health_check_period_ms"] == "1000"
    driver = cenv.driver_env(spec)  # vllm serve runs on the head; ray.init() finds the cluster only by RAY_ADDRESS
    assert (driver["VLLM_HOST_IP"], driver["RAY_ADDRESS"]) == ("127.0.0.2", "127.0.0.2:6379")


def test_127_0_0_1_is_refused_because_ray_replaces_it(monkeypatch, tmp_path):
    data = json.loads(json.dumps(ONE_MACHINE))
    data["nodes"][0]["address"] = "127.0.0.1"
    _machine(monkeypatch, {"lo": (True, ["127.0.0.1"]), "eth0": (True, ["10.0.0.5"])})
    with pytest.raises(ConfigError, match="`ray start` replaces 127.0.0.1") as exc:
        node_env(ClusterSpec.model_validate(data), "a", root=tmp_path)
    assert "127.0.0.2" in exc.value.fix


def test_worker_address_must_be_on_the_routing_interface(monkeypatch, tmp_path):
    _machine(monkeypatch, {"eth0": (True, ["10.0.0.5"]), "eth1": (True, ["192.168.1.11"])}, route=("eth0", "10.0.0.5"))
    with pytest.raises(ConfigError, match="not on eth0") as exc:
        node_env(ClusterSpec.model_validate(LAB), "gpu-b", root=tmp_path)
    assert "10.0.0.5" in exc.value.fix


def _lab_plan(**env):
    from vlmctl.plan import make_plan

    plan = make_plan("Qwen/Qwen2.5-VL-3B-Instruct-AWQ", cluster=ClusterSpec.model_validate(LAB),
                     tensor_parallel_size=2, pipeline_parallel_size=2).plan
    return plan.model_copy(update={"env": {**plan.env, **env}, "pp_layer_partition": None})  # the env's split


def test_plan_gives_the_gpus_and_variables_and_per_node_values_win(monkeypatch, tmp_path):
    _machine(monkeypatch, {"enp134s0f0": (True, ["192.168.1.10"])})
    plan = _lab_plan(VLLM_PP_LAYER_PARTITION="20,16", NCCL_SOCKET_IFNAME="eth0", VLLM_WORKER_MULTIPROC_METHOD="fork")
    assert [n.gpu_ids for n in plan.nodes] == [[0, 3], [0, 1]]
    ne = node_env(ClusterSpec.model_validate(LAB), plan=plan, root=tmp_path)
    assert ne.env["VLLM_PP_LAYER_PARTITION"] == "20,16"
    assert ne.env["NCCL_SOCKET_IFNAME"] == "=enp134s0f0"
    assert ne.env["VLLM_WORKER_MULTIPROC_METHOD"] == "spawn"
    assert ne.env["CUDA_VISIBLE_DEVICES"] == "0,3"  # the plan's two of the node's three
    assert "--num-gpus=2" in ne.launch.ray_start(nic=ne.nic, address=ne.address)
    containers = node_env(ClusterSpec.model_validate(LAB), plan=plan, cuda_visible_devices="0,1", root=tmp_path)
    assert containers.env["CUDA_VISIBLE_DEVICES"] == "0,1"


def test_head_without_address_needs_one(monkeypatch, tmp_path):
    data = json.loads(json.dumps(LAB))
    del data["nodes"][0]["address"]
    _machine(monkeypatch, {"eth1": (True, ["192.168.1.11"])})
    with pytest.raises(ConfigError, match="head node 'gpu-a' has no 'address'") as exc:
        node_env(ClusterSpec.model_validate(data), "gpu-b", root=tmp_path)
    assert "cluster join" in exc.value.fix
    monkeypatch.setattr(cenv, "route_to", lambda addr: ("eth1", "192.168.1.11"))
    ne = node_env(ClusterSpec.model_validate(data), "gpu-b", head_address="192.168.1.10", root=tmp_path)
    assert ne.head_address == "192.168.1.10" and ne.nic == "eth1"


def test_shell_output_quotes_and_exports(monkeypatch, tmp_path):
    _machine(monkeypatch, {"enp134s0f0": (True, ["192.168.1.10"])})
    ne = node_env(ClusterSpec.model_validate(LAB), plan=_lab_plan(X_ODD="a b'c"), root=tmp_path)
    text = ne.shell()
    assert "export NCCL_SOCKET_IFNAME==enp134s0f0" in text
    assert "export X_ODD='a b'\"'\"'c'" in text
    assert NodeEnv.model_validate_json(ne.model_dump_json()) == ne


def test_non_carry_over_file_keeps_existing_entries(tmp_path):
    target = tmp_path / "cfg" / "ray_non_carry_over_env_vars.json"
    target.parent.mkdir()
    target.write_text('["LMCACHE_LOCAL_CPU"]')
    path = write_non_carry_over(tmp_path / "cfg")
    names = json.loads(path.read_text())
    assert path == target
    assert {"LMCACHE_LOCAL_CPU", "NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME", "NCCL_IB_HCA"} <= set(names)


def test_real_interfaces_of_this_machine_include_loopback():
    ifaces = cenv.interfaces()
    assert "lo" in ifaces and "127.0.0.1" in ifaces["lo"].addresses


def test_driver_env_writes_the_non_carry_over_file(monkeypatch, tmp_path):
    _machine(monkeypatch, {"enp134s0f0": (True, ["192.168.1.10"])})
    monkeypatch.setenv("VLMCTL_STATE_ROOT", str(tmp_path))
    env = cenv.driver_env(ClusterSpec.model_validate(LAB), plan=_lab_plan(VLLM_PP_LAYER_PARTITION="20,16"))
    names = json.loads((tmp_path / "lab-gpu-a" / "vllm-config" / "ray_non_carry_over_env_vars.json").read_text())
    assert env["VLLM_CONFIG_ROOT"] == str(tmp_path / "lab-gpu-a" / "vllm-config")
    assert env["VLLM_PP_LAYER_PARTITION"] == "20,16" and "NCCL_SOCKET_IFNAME" in names
    # The driver's own NIC values would be copied onto every Ray worker: it gets none (each node's raylet has its own).
    assert "NCCL_SOCKET_IFNAME" not in env and "GLOO_SOCKET_IFNAME" not in env
    assert env["VLLM_HOST_IP"] == "192.168.1.10" and env["RAY_ADDRESS"] == "192.168.1.10:6379"


def _route_or_error(address: str):
    try:
        return cenv.route_to(address)
    except ClusterError as exc:
        return str(exc)


def test_without_iproute2_psutil_and_a_udp_probe_give_the_same_answers(monkeypatch):
    import shutil

    with_ip = shutil.which("ip") is not None
    before = (cenv.interfaces(), _route_or_error("198.51.100.7")) if with_ip else None
    monkeypatch.setattr(cenv.shutil, "which", lambda name: None)  # as on an image without iproute2
    ifaces = cenv.interfaces()
    assert "127.0.0.1" in ifaces["lo"].addresses and ifaces["lo"].up
    assert cenv.route_to("127.0.0.3") == ("lo", "127.0.0.3")
    own = next(a for i in ifaces.values() for a in i.addresses if a != "127.0.0.1") if len(ifaces) > 1 else "127.0.0.1"
    assert cenv.route_to(own)[0] == "lo"
    if before is not None:
        assert {n: (i.up, i.addresses) for n, i in ifaces.items()} == {n: (i.up, i.addresses) for n, i in before[0].items()}
        after = _route_or_error("198.51.100.7")
        assert after == before[1] or (isinstance(after, tuple) and after[0] == before[1][0])


def test_gpu_ids_past_this_machines_count_are_refused_before_ray_starts(monkeypatch, tmp_path):
    """NVML is faked (no GPU here): the machine reports 2 GPUs, node b asks for ids 2 and 3."""
    from vlmctl.cluster import probe, ray_node
    from vlmctl.errors import ConfigError

    _machine(monkeypatch, {"lo": (True, ["127.0.0.1"])}, route=("lo", "127.0.0.1"))
    two = [probe.GpuProbe(index=i, name="NVIDIA H100", compute_capability="9.0", total_gib=79.1, used_gib=0.5)
           for i in range(2)]
    monkeypatch.setattr(probe, "probe_gpus", lambda: (two, None))
    spec = ClusterSpec.model_validate(ONE_MACHINE)
    ray_node.check_gpu_ids(node_env(spec, "a", root=tmp_path))  # ids 0,1: fine
    with pytest.raises(ConfigError, match=r"lists GPU ids \[2, 3\], but this machine has 2 GPU\(s\), ids 0-1"):
        ray_node.check_gpu_ids(node_env(spec, "b", root=tmp_path))
    monkeypatch.setattr(probe, "probe_gpus", lambda: ([], "NVML unavailable"))
    ray_node.check_gpu_ids(node_env(spec, "b", root=tmp_path))  # nothing to check against


def test_ray_token_is_made_once_private_and_required_to_join(tmp_path):
    path = tmp_path / "lab.ray_auth_token"
    with pytest.raises(ClusterError, match="no copy of the Ray token of cluster 'lab'") as info:
        cenv.ensure_token(path, "lab")
    assert f"scp HEAD:{path} {path}" in info.value.fix
    made = cenv.ensure_token(path, "lab", create=True)
    token = made.read_text()
    assert made.stat().st_mode & 0o777 == 0o600 and len(token) == 64 and int(token, 16) >= 0
    assert cenv.ensure_token(path, "lab", create=True).read_text() == token  # never replaced
    path.chmod(0o666)
    with pytest.raises(ClusterError, match="only its owner can write"):
        cenv.ensure_token(path, "lab")
