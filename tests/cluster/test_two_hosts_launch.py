"""Two hosts, end to end: what every vLLM worker sees when the launch spec is followed.

Network namespaces with different NIC names (as tests/cluster/test_two_hosts.py); a vLLM stand-in
(tests/cluster/vllm_standin.py) that forms vLLM's placement group and passes the driver's environment to one
worker actor per planned GPU the way vLLM 0.26's Ray executor does. Two ways in: `vlmctl cluster up`/`join` +
`vlmctl serve --plan --cluster`, and the shell that `vlmctl plan --emit commands` prints, run as printed.
Each worker must see its own node's NIC, address and planned GPUs, never the head's.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cluster._ray_procs import remove_root
from vlmctl.cluster import netns
from vlmctl.cluster.netns import HEAD_IP, HEAD_NIC, WORKER_IP, WORKER_NIC

pytestmark = [pytest.mark.netns, pytest.mark.integration, pytest.mark.slow]

_REASON = netns.unavailable_reason()
if _REASON:
    pytestmark.append(pytest.mark.skip(reason=f"two-host test needs network namespaces: {_REASON}"))

STANDIN = Path(__file__).with_name("vllm_standin.py")
MODEL = "Qwen/Qwen2.5-VL-3B-Instruct-AWQ"
#: The head gives GPUs 1 and 3 (not 0..n-1), so a renumbering or a copied CUDA_VISIBLE_DEVICES shows.
CLUSTER = f"""\
name: {{name}}
model_path: {{model}}
nodes:
  - {{{{name: head, address: {HEAD_IP}, gpu: rtx-2080-ti, gpu_ids: [1, 3]}}}}
  - {{{{name: w1, address: {WORKER_IP}, gpu: rtx-2080-ti, gpu_count: 2}}}}
"""
EXPECTED = {HEAD_IP: (HEAD_NIC, "1,3"), WORKER_IP: (WORKER_NIC, "0,1")}


def _vlmctl(*args: str) -> list[str]:
    return [sys.executable, "-m", "vlmctl.cli.main", *args]


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None and not path.exists():
            out, err = proc.communicate()
            pytest.fail(f"exited {proc.returncode} before reporting:\n{out}\n{err}")
        assert time.monotonic() < deadline, "the stand-in reported nothing in time"
        time.sleep(0.5)
    return json.loads(path.read_text())


def _check(report: dict, world: int) -> None:
    workers = report["workers"]
    assert len(workers) == world
    assert {w["node_ip"] for w in workers} == {HEAD_IP, WORKER_IP}
    for w in workers:
        nic, gpus = EXPECTED[w["node_ip"]]
        assert (w["NCCL_SOCKET_IFNAME"], w["GLOO_SOCKET_IFNAME"]) == (f"={nic}", nic), w
        assert w["VLLM_HOST_IP"] == w["node_ip"], w
        assert w["CUDA_VISIBLE_DEVICES"] == gpus, w
    assert report["driver"]["RAY_ADDRESS"] == f"{HEAD_IP}:6379"
    assert not {"NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME"} & set(report["copied"])


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    work = tmp_path_factory.mktemp("launch2h")
    model = work / "model"
    subprocess.run(_vlmctl("models", "materialize", MODEL, str(model)), check=True, capture_output=True, timeout=120)
    hosts = netns.TwoHosts(tag=f"{os.getpid() % 100000}l")
    hosts.up()
    try:
        yield hosts, work, model
    finally:
        hosts.down()


def _plan(work: Path, model: Path, name: str) -> tuple[Path, Path, dict]:
    cluster = work / f"{name}.yaml"
    cluster.write_text(CLUSTER.format(name=name, model=model))
    plan = work / f"{name}-plan.json"
    subprocess.run(_vlmctl("plan", MODEL, "--cluster", str(cluster), "-tp", "2", "-pp", "2", "-o", str(plan)),
                   check=True, capture_output=True, timeout=120)
    return cluster, plan, json.loads(plan.read_text())["plan"]


def test_cluster_up_join_and_serve_give_each_worker_its_own_node(hosts, tmp_path):
    net, work, model = hosts
    cluster, plan, data = _plan(work, model, "vs")
    assert [n["gpu_ids"] for n in data["nodes"]] == [[1, 3], [0, 1]]
    root = f"/tmp/vls{os.getpid() % 100000}"
    env = dict(os.environ, VLMCTL_STATE_ROOT=root, NO_COLOR="1", VLLM_STANDIN_REPORT=str(tmp_path / "report.json"),
               NCCL_SOCKET_IFNAME="=wrong0")  # one exported by hand on the head: must stay there
    serve = None
    try:
        for ns, cmd in ((net.head, "up"), (net.worker, "join")):
            res = subprocess.run(net.argv(ns, *_vlmctl("cluster", cmd, "--cluster", str(cluster), "--plan", str(plan))),
                                 capture_output=True, text=True, timeout=120, env=env)
            assert res.returncode == 0, res.stderr + res.stdout
        serve = subprocess.Popen(net.argv(net.head, *_vlmctl(
            "serve", "--plan", str(plan), "--cluster", str(cluster), "--vllm-bin", f"{sys.executable} {STANDIN}",
            "--ready-timeout", "120")), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        report = _wait_for(tmp_path / "report.json", serve, 120)
    finally:
        if serve is not None and serve.poll() is None:
            serve.send_signal(signal.SIGINT)
            try:
                serve.wait(timeout=30)
            except subprocess.TimeoutExpired:
                serve.kill()
        remove_root(root)
    _check(report, 4)
    assert report["driver"]["NCCL_SOCKET_IFNAME"] == "=wrong0"  # on the driver, never on a worker


def test_the_emitted_commands_run_as_printed_give_the_same(hosts, tmp_path):
    net, work, model = hosts
    cluster, _, _ = _plan(work, model, "vc")
    text = subprocess.run(_vlmctl("plan", MODEL, "--cluster", str(cluster), "-tp", "2", "-pp", "2", "--emit", "commands"),
                          capture_output=True, text=True, timeout=120, check=True).stdout
    root = f"/tmp/vlc{os.getpid() % 100000}"
    text = text.replace("/tmp/vlmctl/", f"{root}/")
    blocks = {b.split(",")[0].split()[0]: "# node " + b for b in text.split("# node ")[1:]}
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "vllm").write_text(f"#!/bin/sh\nexec {sys.executable} {STANDIN} \"$@\"\n")
    (bin_dir / "vllm").chmod(0o755)
    env = dict(os.environ, NO_COLOR="1", VLLM_STANDIN_REPORT=str(tmp_path / "report.json"),
               VLLM_USE_RAY_V2_EXECUTOR_BACKEND="1",  # RayExecutorV2 copies the driver's whole environment
               PATH=f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}")
    head = None
    try:
        head = subprocess.Popen(net.argv(net.head, "bash", "-euo", "pipefail", "-c", blocks["head"]),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 60
        while not list(Path(root).glob("vc-head/session_*")) and time.monotonic() < deadline:
            time.sleep(0.5)
        worker = subprocess.run(net.argv(net.worker, "bash", "-euo", "pipefail", "-c", blocks["w1"]),
                                capture_output=True, text=True, timeout=120, env=env)
        assert worker.returncode == 0, worker.stderr
        report = _wait_for(tmp_path / "report.json", head, 120)
    finally:
        if head is not None and head.poll() is None:
            head.kill()
        remove_root(root)
    _check(report, 4)
