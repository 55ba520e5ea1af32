"""Two private "hosts" on one machine, for tests and benchmarks: network namespaces joined by a veth pair.

Each side gets a different interface name (``enp134s0f0`` and ``eth1``, as in the field report) and an
address from a private range that exists only inside the two namespaces, so no traffic ever leaves
them. Needs root and iproute2. ``TwoHosts`` is a context manager; teardown always runs.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field

HEAD_IP, WORKER_IP, SUBNET_BITS = "10.231.7.1", "10.231.7.2", 24
HEAD_NIC, WORKER_NIC = "enp134s0f0", "eth1"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=20)


def unavailable_reason() -> str | None:
    """Why two namespaces cannot be created here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2 ('ip') is not installed"
    probe = f"vlmctl-probe-{os.getpid()}"
    try:
        _ip("netns", "add", probe)
    except (subprocess.CalledProcessError, OSError) as exc:
        stderr = getattr(exc, "stderr", "") or str(exc)
        return f"cannot create a network namespace here: {stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=20)
    return None


@dataclass
class TwoHosts:
    """Namespaces ``head`` and ``worker``; run commands in them with ``argv(ns, ...)``."""

    tag: str = field(default_factory=lambda: f"{os.getpid() % 100000}")
    head: str = ""
    worker: str = ""

    def __post_init__(self) -> None:
        self.head, self.worker = f"vlmctl-{self.tag}-h", f"vlmctl-{self.tag}-w"

    def up(self) -> "TwoHosts":
        a, b = f"vla{self.tag}", f"vlb{self.tag}"
        try:
            _ip("netns", "add", self.head)
            _ip("netns", "add", self.worker)
            _ip("link", "add", a, "type", "veth", "peer", "name", b)
            _ip("link", "set", a, "netns", self.head)
            _ip("link", "set", b, "netns", self.worker)
            for ns, old, new, addr in ((self.head, a, HEAD_NIC, HEAD_IP), (self.worker, b, WORKER_NIC, WORKER_IP)):
                _ip("-n", ns, "link", "set", old, "name", new)
                _ip("-n", ns, "addr", "add", f"{addr}/{SUBNET_BITS}", "dev", new)
                _ip("-n", ns, "link", "set", "lo", "up")
                _ip("-n", ns, "link", "set", new, "up")
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        for ns in (self.head, self.worker):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)

    def argv(self, ns: str, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", ns, *cmd]

    def __enter__(self) -> "TwoHosts":
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()


def cluster_yaml(name: str, model_path: str, worker_model_path: str | None = None, head_ip: str = HEAD_IP) -> str:
    """A cluster file for the two hosts (no NICs given: each node must find its own)."""
    worker_model = f"\n    model_path: {worker_model_path}" if worker_model_path else ""
    return (f"name: {name}\nmodel_path: {model_path}\nnodes:\n"
            f"  - name: head\n    address: {head_ip}\n    gpu: rtx-2080-ti\n    gpu_ids: [0, 1]\n"
            f"  - name: w1\n    address: {WORKER_IP}\n    gpu: rtx-2080-ti\n    gpu_count: 2{worker_model}\n")
