"""`cluster status`: every node Ray knows for this cluster, alive or dead, with its NIC and GPUs."""
from __future__ import annotations

from pydantic import BaseModel, Field

from vlmctl.cluster.env import NodeEnv
from vlmctl.cluster.probe import GpuProbe


class NodeStatus(BaseModel):
    """One Ray node of the cluster."""

    name: str
    address: str
    role: str
    alive: bool
    nic: str | None = None
    gpus: list[GpuProbe] = Field(default_factory=list)
    """GPUs NVML sees on the node (empty for a dead node or a node without GPUs)."""
    gpu_note: str | None = None
    ray_gpus: float = 0.0
    """GPUs Ray schedules on the node (CUDA_VISIBLE_DEVICES applied)."""
    node_id: str


class ClusterStatus(BaseModel):
    cluster: str
    head: str
    nodes: list[NodeStatus]
    reaped: dict[str, int] = Field(default_factory=dict)
    """Processes stopped on this machine because their node's raylet was gone (per state folder)."""

    @property
    def alive(self) -> int:
        return sum(n.alive for n in self.nodes)


def _gpus_here() -> tuple[list[GpuProbe], str | None, str | None]:
    import os

    from vlmctl.cluster.probe import probe_gpus

    gpus, note = probe_gpus()
    return gpus, note, os.environ.get("GLOO_SOCKET_IFNAME")


def cluster_status(ne: NodeEnv, timeout: float = 60.0) -> ClusterStatus:
    """Ask the head for every node of this cluster; probe the GPUs of the live ones."""
    from vlmctl.cluster.ray_node import connect

    with connect(ne) as ray:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        probe = ray.remote(num_cpus=0)(_gpus_here)
        rows, refs = [], {}
        latest: dict[str, dict] = {}
        for n in ray.nodes():
            labels = n.get("Labels") or {}
            if labels.get("vlmctl-cluster") != ne.cluster:
                continue
            key = labels.get("vlmctl-node") or n["NodeManagerAddress"]
            # A node that left and joined again appears twice in Ray's table: the live entry wins.
            if key not in latest or (n["Alive"] and not latest[key]["Alive"]):
                latest[key] = n
        for key, n in sorted(latest.items()):
            labels = n.get("Labels") or {}
            row = NodeStatus(name=key, address=n["NodeManagerAddress"], role=labels.get("vlmctl-role", "?"),
                             alive=bool(n["Alive"]), nic=labels.get("vlmctl-nic"),
                             ray_gpus=float(n.get("Resources", {}).get("GPU", 0.0)), node_id=n["NodeID"])
            rows.append(row)
            if row.alive:
                strategy = NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
                refs[key] = probe.options(scheduling_strategy=strategy).remote()
        ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=timeout)
        done, failed = {}, {}
        for ref in ready:
            try:
                done[ref] = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - a node dying under the probe: unschedulable, worker crashed...
                failed[ref] = type(exc).__name__
        for row in rows:
            ref = refs.get(row.name)
            if ref is None:
                row.gpu_note = "node is dead"
            elif ref in failed:
                row.alive = False
                row.gpu_note = f"node stopped answering ({failed[ref]}); Ray will mark it dead within seconds"
            elif ref not in done:
                row.gpu_note = f"no answer within {timeout:.0f} s"
            else:
                row.gpus, row.gpu_note, nic = done[ref]
                row.nic = nic or row.nic
    from vlmctl.cluster.ray_node import reap_dead_local_nodes

    return ClusterStatus(cluster=ne.cluster, head=ne.head, nodes=rows, reaped=reap_dead_local_nodes(ne))
