"""Finding and removing the Ray processes a cluster test started under its own state root."""
from __future__ import annotations

import os
import shutil
from pathlib import Path


def ray_pids(root: str) -> list[int]:
    """Live processes of the nodes under ``root`` (vlmctl's own view), and any process naming ``root``."""
    import psutil

    from vlmctl.cluster.ray_node import node_processes

    pids = set()
    for d in Path(root).glob("*"):
        pids |= {p.pid for p in node_processes(d)}
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and root in " ".join(proc.info["cmdline"] or []):
                pids.add(proc.pid)
        except psutil.NoSuchProcess:
            continue
    pids.discard(os.getpid())
    return sorted(pids)


def remove_root(root: str) -> None:
    """Stop every node under ``root``, kill what is left, delete the folder (fixture finalizers)."""
    from vlmctl.cluster.ray_node import stop_local

    for d in Path(root).glob("*"):
        stop_local(d, timeout=5)
    for pid in ray_pids(root):
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    shutil.rmtree(root, ignore_errors=True)
