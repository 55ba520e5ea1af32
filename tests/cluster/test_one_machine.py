"""Several Ray nodes on ONE machine, each on its own loopback address (no root, no namespaces).

One module-scoped cluster (Ray start is slow on 2 cores): node ``a`` (127.0.0.2) comes up with
`vlmctl cluster up --node a`, node ``b`` (127.0.0.3) with `vlmctl cluster join 127.0.0.2:PORT --node b`.
Ray and dashboard ports are random, and every node (and every Ray a test child starts) lives under
a unique state root, so nothing clashes with test_two_hosts or a developer's Ray. Processes and
state folders are removed in the fixture's finalizer, also when a test fails.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests._servers import free_port
from tests.cluster._ray_procs import ray_pids, remove_root

pytestmark = [pytest.mark.integration, pytest.mark.slow]

A_IP, B_IP = "127.0.0.2", "127.0.0.3"

#: The child vLLM's driver would be: a plain ray.init() (no address), then a task pinned to node b.
_DRIVER = r"""
import json, sys
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

ray.init(logging_level="ERROR", log_to_driver=False)
try:
    nodes = [n for n in ray.nodes() if n["Alive"]]
    seen = sorted(n["NodeManagerAddress"] for n in nodes)
    ran_on = None
    target = [n["NodeID"] for n in nodes if n["NodeManagerAddress"] == sys.argv[1]]
    if target:
        @ray.remote(num_cpus=0)
        def where():
            return ray.util.get_node_ip_address()

        ran_on = ray.get(where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(target[0], soft=False)).remote(),
                         timeout=60)
    print("RESULT " + json.dumps({"seen": seen, "ran_on": ran_on}), flush=True)
finally:
    ray.shutdown()
"""


def _cluster_yaml(name: str, nodes: list[tuple[str, str, list[int]]], ray_port: int, dashboard_port: int) -> str:
    lines = [f"name: {name}", "ports:", f"  ray: {ray_port}", f"  dashboard: {dashboard_port}", "nodes:"]
    for node, address, ids in nodes:
        lines += [f"  - name: {node}", f"    address: {address}", "    gpu: rtx-2080-ti", f"    gpu_ids: {ids}"]
    return "\n".join(lines) + "\n"


class OneMachine:
    def __init__(self, root: str, cluster_file: Path, env: dict[str, str], ray_port: int):
        self.root, self.cluster_file, self.env, self.ray_port = root, cluster_file, env, ray_port

    def run(self, *args: str, timeout: float = 120, cluster: Path | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", "vlmctl.cli.main", *args, "--cluster", str(cluster or self.cluster_file)]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env or self.env)

    def driver(self, extra_env: dict[str, str], drop: tuple[str, ...] = (), timeout: float = 90) -> dict:
        """Run ``_DRIVER`` as a child with os.environ + ``extra_env`` (minus ``drop``); its RESULT line as a dict."""
        env = {**self.env, **extra_env}
        for key in drop:
            env.pop(key, None)
        res = subprocess.run([sys.executable, "-c", _DRIVER, B_IP], capture_output=True, text=True,
                             timeout=timeout, env=env)
        line = next((ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")), None)
        assert res.returncode == 0 and line, res.stderr[-3000:] + res.stdout[-2000:]
        return json.loads(line[len("RESULT "):])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    work = tmp_path_factory.mktemp("one-machine")
    ray_port, dashboard_port = free_port(), free_port()
    while dashboard_port == ray_port:
        dashboard_port = free_port()
    cluster_file = work / "cluster.yaml"
    cluster_file.write_text(_cluster_yaml("vo", [("a", A_IP, [0]), ("b", B_IP, [1])], ray_port, dashboard_port))
    root = f"/tmp/vlo{os.getpid() % 100000}"
    home = work / "home"  # with the token file any local ray.init() (vLLM's too) leaves behind: Ray 2.60 then
    (home / ".ray").mkdir(parents=True)  # puts a head in token-auth mode but not a joining worker (RAY_AUTH_MODE fixes)
    (home / ".ray" / "auth_token").write_text("0123456789abcdef" * 4)
    env = dict(os.environ, VLMCTL_STATE_ROOT=root, NO_COLOR="1", COLUMNS="200", HOME=str(home))
    env.pop("RAY_ADDRESS", None)
    env.pop("RAY_AUTH_MODE", None)
    h = OneMachine(root, cluster_file, env, ray_port)
    try:
        t0 = time.monotonic()
        h.up = h.run("cluster", "up", "--node", "a")
        assert h.up.returncode == 0, h.up.stderr + h.up.stdout
        h.join = h.run("cluster", "join", f"{A_IP}:{ray_port}", "--node", "b")
        assert h.join.returncode == 0, h.join.stderr + h.join.stdout
        h.bring_up_s = time.monotonic() - t0
        yield h
    finally:
        remove_root(root)


def test_up_and_join_two_nodes_on_loopback_addresses(cluster):
    assert cluster.up.returncode == 0 and cluster.join.returncode == 0
    res = cluster.run("cluster", "status", "--node", "a", "--json", timeout=90)
    assert res.returncode == 0, res.stderr
    status = json.loads(res.stdout)
    assert status["alive"] == 2
    by_name = {n["name"]: n for n in status["nodes"]}
    assert (by_name["a"]["address"], by_name["a"]["nic"], by_name["a"]["alive"]) == (A_IP, "lo", True)
    assert (by_name["b"]["address"], by_name["b"]["nic"], by_name["b"]["alive"]) == (B_IP, "lo", True)
    a_dir, b_dir = Path(cluster.root, "vo-a"), Path(cluster.root, "vo-b")
    assert a_dir != b_dir and list(a_dir.glob("session_*")) and list(b_dir.glob("session_*"))
    from vlmctl.cluster.ray_node import node_processes

    a_pids, b_pids = {p.pid for p in node_processes(a_dir)}, {p.pid for p in node_processes(b_dir)}
    assert a_pids and b_pids and not a_pids & b_pids


def test_the_scrape_config_finds_every_nodes_ray_metrics(cluster):
    """monitoring/prometheus.yml reads the service discovery file Ray's head writes into its state dir; every
    target it lists serves the Ray series the Grafana board queries (the non-GPU ones: no GPU here)."""
    import urllib.request

    from vlmctl.cluster.monitoring import dashboard, prometheus_config, queried_series
    from vlmctl.clusterspec import load_cluster

    config = prometheus_config(load_cluster(cluster.cluster_file), state_root=cluster.root)
    discovery = Path(config["scrape_configs"][1]["file_sd_configs"][0]["files"][0])
    wanted = {n for n in queried_series(dashboard("vo")) if n.startswith("ray_") and "gpu" not in n and "gram" not in n}
    assert wanted
    deadline, missing, targets = time.monotonic() + 90, wanted, []
    while time.monotonic() < deadline:
        targets = [t for group in json.loads(discovery.read_text()) for t in group["targets"]] \
            if discovery.exists() else []
        hosts = {t.rsplit(":", 1)[0] for t in targets}
        names = set()
        for target in targets:
            try:
                with urllib.request.urlopen(f"http://{target}/metrics", timeout=5) as resp:
                    names |= {line.split("{")[0].split(" ")[0] for line in resp.read().decode().splitlines()
                              if line and not line.startswith("#")}
            except OSError:
                pass
        missing = wanted - names
        if not missing and {A_IP, B_IP} <= hosts:
            break
        time.sleep(2)
    assert discovery.exists(), f"Ray wrote no {discovery}"
    assert {A_IP, B_IP} <= {t.rsplit(":", 1)[0] for t in targets}, targets
    assert not missing, f"no node serves {sorted(missing)}"


def test_status_without_node_names_both_and_asks_for_node(cluster):
    res = cluster.run("cluster", "status", timeout=60)
    assert res.returncode == 2, res.stderr + res.stdout
    err = res.stderr.strip()
    assert "several nodes' addresses are on this machine" in err
    assert "a, b" in err and "--node" in err
    message = [ln for ln in err.splitlines() if "several nodes" in ln]
    assert len(message) == 1 and "a, b" in message[0]


def test_up_refuses_127_0_0_1_and_starts_nothing(cluster, tmp_path):
    bad = tmp_path / "loopback1.yaml"
    bad.write_text(_cluster_yaml("vl1", [("h", "127.0.0.1", [0]), ("w", "127.0.0.4", [1])], free_port(), free_port()))
    root = cluster.root + "l"
    try:
        res = cluster.run("cluster", "up", "--node", "h", cluster=bad, timeout=60,
                          env=dict(cluster.env, VLMCTL_STATE_ROOT=root))
        leftovers = ray_pids(root)
    finally:
        remove_root(root)
    assert res.returncode == 2, res.stderr + res.stdout
    assert "127.0.0.1" in res.stderr and "`ray start` replaces" in res.stderr
    assert leftovers == []


def test_driver_env_reaches_the_cluster_and_without_ray_address_it_does_not(cluster):
    from vlmctl.cluster.env import driver_env
    from vlmctl.clusterspec import load_cluster

    old = os.environ.get("VLMCTL_STATE_ROOT")
    os.environ["VLMCTL_STATE_ROOT"] = cluster.root  # driver_env writes the non-carry-over file under the head's state dir
    try:
        denv = driver_env(load_cluster(cluster.cluster_file))
    finally:
        if old is None:
            os.environ.pop("VLMCTL_STATE_ROOT", None)
        else:
            os.environ["VLMCTL_STATE_ROOT"] = old
    assert denv["RAY_ADDRESS"] == f"{A_IP}:{cluster.ray_port}"
    assert denv["VLMCTL_STATE_DIR"] == str(Path(cluster.root, "vo-a"))

    joined = cluster.driver(denv)
    assert joined["seen"] == [A_IP, B_IP]
    assert joined["ran_on"] == B_IP

    # The bug RAY_ADDRESS fixes: a plain ray.init() does not find a head started with its own --temp-dir and
    # starts a local Ray instead. RAY_TMPDIR keeps that instance (and the lookup of a "current cluster")
    # under this test's state root, away from a developer's /tmp/ray; the child shuts it down, the fixture kills leftovers.
    # HOME too: Ray >= 2.5x turns token auth on for a new local ray.init() and writes ~/.ray/auth_token; with that
    # file in the real home every later `ray start` requires the token and `cluster join`'s GCS check is refused.
    local_tmp = Path(cluster.root, "local")
    local_tmp.mkdir(parents=True, exist_ok=True)
    real_token = Path.home() / ".ray" / "auth_token"
    had_token = real_token.exists()
    alone = cluster.driver({**denv, "RAY_TMPDIR": str(local_tmp), "HOME": str(local_tmp / "home")},
                           drop=("RAY_ADDRESS",), timeout=120)
    assert real_token.exists() == had_token
    assert B_IP not in alone["seen"] and A_IP not in alone["seen"]
    assert len(alone["seen"]) == 1 and alone["ran_on"] is None
    from vlmctl.cluster.ray_node import stop_local

    stop_local(local_tmp, timeout=5)
    assert ray_pids(str(local_tmp)) == []


def _gcs_answers(cluster, **env) -> subprocess.CompletedProcess:
    from vlmctl.cluster.ray_node import _GCS_METADATA

    child = {k: v for k, v in cluster.env.items() if not k.startswith("RAY_AUTH")}
    return subprocess.run([sys.executable, "-c", _GCS_METADATA, f"{A_IP}:{cluster.ray_port}"], capture_output=True,
                          text=True, timeout=60, env={**child, **env})


def test_token_auth_is_on_and_a_client_without_the_token_is_refused(cluster):
    token = Path(cluster.root, "vo.ray_auth_token")
    assert token.stat().st_mode & 0o777 == 0o600 and len(token.read_text()) == 64
    assert f"scp {token} WORKER:{token}" in cluster.up.stdout  # cluster up says to copy it
    env_out = cluster.run("cluster", "env", "--node", "b", timeout=60).stdout
    assert "RAY_AUTH_MODE=token" in env_out and str(token) in env_out and token.read_text() not in env_out
    assert _gcs_answers(cluster, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token)).returncode == 0
    wrong = _gcs_answers(cluster, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN="f" * 64)
    assert wrong.returncode != 0 and "auth" in wrong.stderr.lower()
    assert _gcs_answers(cluster, RAY_AUTH_MODE="disabled").returncode != 0


def test_a_killed_worker_is_reported_dead_within_10_s_and_leaves_nothing(cluster):
    from vlmctl.cluster.ray_node import node_processes

    b_dir = Path(cluster.root, "vo-b")
    raylets = [p for p in node_processes(b_dir) if "raylet" in p.name()]
    assert len(raylets) == 1
    raylets[0].kill()
    killed = time.monotonic()
    time.sleep(6.0)
    res = cluster.run("cluster", "status", "--node", "a", "--json", timeout=60)
    reported = time.monotonic() - killed
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    status = json.loads(res.stdout)
    by_name = {n["name"]: n for n in status["nodes"]}
    assert by_name["a"]["alive"] and not by_name["b"]["alive"], status
    assert reported <= 10.0 + 6.0, f"status took {reported - 6:.1f} s"  # dead at 6 s; the status run itself is slow here
    assert "vo-b" in status["reaped"] and node_processes(b_dir) == []  # the log monitor and agents are gone too
    again = cluster.run("cluster", "join", f"{A_IP}:{cluster.ray_port}", "--node", "b")  # for the tests below
    assert again.returncode == 0, again.stderr + again.stdout


def test_down_on_a_stops_both_and_leaves_no_ray_process(cluster):
    assert ray_pids(cluster.root)
    res = cluster.run("cluster", "down", "--node", "a", timeout=90)
    assert res.returncode == 0, res.stderr
    assert "node a" in res.stdout and "node b" in res.stdout
    deadline = time.monotonic() + 15
    while ray_pids(cluster.root) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ray_pids(cluster.root) == []
