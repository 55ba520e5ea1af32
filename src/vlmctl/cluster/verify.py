"""`cluster verify`: probe every node through a pinned Ray task, then compare what came back.

``analyse`` is pure (probes in, findings out); ``verify_cluster`` does the Ray part.
"""
from __future__ import annotations

import re

from pydantic import BaseModel, Field

from vlmctl.cluster.env import NodeEnv
from vlmctl.cluster.probe import NodeProbe, probe_node
from vlmctl.clusterspec import ClusterSpec
from vlmctl.findings import Finding

#: Below these, warn: Docker's default /dev/shm is 64 MiB, too small for NCCL and vLLM's IPC.
SHM_MIN_GIB = 1.0
DISK_MIN_GIB = 5.0
VERSION_KEYS = ("python", "ray", "vllm", "torch", "transformers", "nccl")


class VerifyResult(BaseModel):
    """Per-node probes plus the findings drawn from comparing them."""

    ok: bool
    probes: list[NodeProbe]
    findings: list[Finding] = Field(default_factory=list)


def _cc_tuple(cc: str) -> tuple[int, int]:
    major, _, minor = cc.partition(".")
    return int(major), int(minor or 0)


def arch_supports(arch_list: list[str], cc: str) -> bool:
    """True when a kernel in ``arch_list`` runs on compute capability ``cc``.

    ``sm_XY`` cubins run on the same major at an equal or higher minor; ``compute_XY`` (PTX) JIT-compiles
    for any equal or newer GPU; ``sm_90a``-style arch-specific builds run only on that exact GPU.
    """
    major, minor = _cc_tuple(cc)
    for entry in arch_list:
        m = re.fullmatch(r"(sm|compute)_(\d+?)(\d)([af]?)", entry.strip())
        if not m:
            continue
        kind, a_major, a_minor, suffix = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)
        if suffix:
            if (a_major, a_minor) == (major, minor):
                return True
        elif kind == "sm" and a_major == major and a_minor <= minor:
            return True
        elif kind == "compute" and (a_major, a_minor) <= (major, minor):
            return True
    return False


def _version_findings(probes: list[NodeProbe]) -> list[Finding]:
    out = []
    for key in VERSION_KEYS:
        seen: dict[str, list[str]] = {}
        for p in probes:
            seen.setdefault(p.versions.get(key) or "not installed", []).append(p.node)
        if len(seen) > 1:
            detail = "; ".join(f"{v} on {', '.join(nodes)}" for v, nodes in sorted(seen.items()))
            severity = "error" if key in ("python", "ray", "vllm", "nccl") else "warning"
            out.append(Finding(id=f"version-skew-{key}", severity=severity,
                               message=f"{key} differs between nodes: {detail}.",
                               fix="run the same image (or the same pip freeze) on every node: vlmctl compose writes one"))
    return out


def _plan_vllm_findings(probes: list[NodeProbe], plan) -> list[Finding]:
    """Each node's vLLM against the release the plan was made for (patch releases of one series agree)."""
    from vlmctl.engines.vllm import same_series

    want = plan.vllm_version
    out = [Finding(id="vllm-per-node", severity="info",
                   message="vLLM per node: " + ", ".join(f"{p.node} {p.versions.get('vllm') or 'not installed'}"
                                                         for p in probes) + f"; the plan is for vLLM {want}.",
                   fix="")]
    for p in probes:
        have = p.versions.get("vllm")
        if not same_series(have, want):
            out.append(Finding(
                id="vllm-plan-mismatch", severity="error",
                message=f"node '{p.node}' runs vLLM {have or '(not installed)'}, but the plan was made for vLLM {want}: "
                        "flags, defaults and memory figures differ between releases.",
                fix=f"install vLLM {want} on '{p.node}' (the same image as the others), or re-plan with "
                    f"--vllm-version {have}" if have else f"install vLLM {want} on '{p.node}'"))
    return out


def _model_findings(probes: list[NodeProbe]) -> list[Finding]:
    out = []
    for p in probes:
        if p.model.path is None:
            continue
        if not p.model.present:
            out.append(Finding(id="model-missing", severity="error",
                               message=f"node '{p.node}': model path {p.model.path} does not exist; a Ray worker there fails "
                                       "with HFValidationError 'Repo id must be in the form ...'.",
                               fix=f"copy the model to {p.model.path} on node '{p.node}' (same path on every node) or mount shared storage"))
    present = [p for p in probes if p.model.present]
    prints = {p.model.fingerprint for p in present}
    if len(prints) > 1:
        groups: dict[str, list[str]] = {}
        for p in present:
            groups.setdefault(p.model.fingerprint or "", []).append(p.node)
        ref = present[0]
        differing = sorted({f for p in present[1:] for f in set(ref.model.hashes) ^ set(p.model.hashes)}
                           | {f for p in present[1:] for f in set(ref.model.hashes) & set(p.model.hashes)
                              if ref.model.hashes[f] != p.model.hashes[f]})
        which = f" (files differing: {', '.join(differing[:5])})" if differing else " (file sizes differ)"
        detail = "; ".join(f"{fp} on {', '.join(nodes)}" for fp, nodes in sorted(groups.items()))
        out.append(Finding(id="model-mismatch", severity="error",
                           message=f"the model folder differs between nodes: {detail}{which}.",
                           fix="copy the same model revision to every node (rsync -a from one node)"))
    return out


def _gpu_findings(p: NodeProbe, spec: ClusterSpec | None) -> list[Finding]:
    out = []
    if not p.gpus:
        out.append(Finding(id="no-gpu", severity="warning",
                           message=f"node '{p.node}': no GPU visible ({p.gpu_error or 'NVML found none'}).",
                           fix="check the NVIDIA driver (nvidia-smi) and, in a container, the GPU passthrough (deploy.resources devices / --gpus)"))
        return out
    wanted = None
    if spec is not None:
        try:
            wanted = spec.node(p.node).ids
        except Exception:  # noqa: BLE001 - a node outside the cluster file
            wanted = None
    indices = {g.index for g in p.gpus}
    if wanted and p.cuda_visible_devices and p.cuda_visible_devices.replace(",", "").isdigit():
        visible = [int(i) for i in p.cuda_visible_devices.split(",")]
        missing = [i for i in visible if i not in indices]
        if missing:
            out.append(Finding(id="gpu-missing", severity="error",
                               message=f"node '{p.node}': CUDA_VISIBLE_DEVICES lists GPU {missing} but NVML sees only {sorted(indices)}.",
                               fix=f"fix gpu_ids of node '{p.node}' in the cluster file"))
    if p.torch_cuda is None and p.versions.get("torch"):
        out.append(Finding(id="torch-cpu-build", severity="error",
                           message=f"node '{p.node}': torch {p.versions['torch']} is a CPU build but the node has GPUs.",
                           fix="install the CUDA build of torch that vLLM pins (pip install vllm brings it)"))
    elif p.torch_arch_list:
        bad = sorted({g.compute_capability for g in p.gpus if not arch_supports(p.torch_arch_list, g.compute_capability)})
        for cc in bad:
            names = ", ".join(sorted({g.name for g in p.gpus if g.compute_capability == cc}))
            out.append(Finding(id="cuda-arch", severity="error",
                               message=f"node '{p.node}': {names} is compute capability {cc} (sm_{cc.replace('.', '')}) but the "
                                       f"installed torch carries kernels for {' '.join(p.torch_arch_list)}: "
                                       "'CUDA error: no kernel image is available for execution on the device'.",
                               fix=f"use an image/wheel built for sm_{cc.replace('.', '')} (TORCH_CUDA_ARCH_LIST includes {cc})"))
    return out


def _node_findings(p: NodeProbe, ray_address: str | None) -> list[Finding]:
    out = []
    if p.hostname_ip is None or p.hostname_ip.startswith("127."):
        got = p.hostname_ip or "nothing"
        # With GLOO_SOCKET_IFNAME set (vlmctl sets it) Gloo never resolves the hostname: only a note then.
        out.append(Finding(id="hostname-loopback", severity="info" if p.env.get("GLOO_SOCKET_IFNAME") else "warning",
                           message=f"node '{p.node}': hostname '{p.hostname}' resolves to {got}; without GLOO_SOCKET_IFNAME "
                                   "Gloo binds to loopback ('Unable to resolve hostname to a (local) address').",
                           fix=f"keep GLOO_SOCKET_IFNAME set (vlmctl cluster env does), or map '{p.hostname}' to {p.address} in /etc/hosts"))
    nic = p.env.get("GLOO_SOCKET_IFNAME")
    if not nic:
        out.append(Finding(id="node-env", severity="error",
                           message=f"node '{p.node}': Ray workers there have no GLOO_SOCKET_IFNAME/NCCL_SOCKET_IFNAME.",
                           fix=f"restart that node with vlmctl: vlmctl cluster down && vlmctl cluster join on '{p.node}'"))
    elif p.interfaces and nic not in p.interfaces:
        out.append(Finding(id="node-env", severity="error",
                           message=f"node '{p.node}': GLOO_SOCKET_IFNAME={nic} but the node has no such interface ({', '.join(p.interfaces)}).",
                           fix=f"set 'nic' of node '{p.node}' to a real interface, or drop it"))
    host_ip = p.env.get("VLLM_HOST_IP")
    if ray_address and host_ip and host_ip != ray_address:
        out.append(Finding(id="node-ip-mismatch", severity="error",
                           message=f"node '{p.node}': VLLM_HOST_IP={host_ip} but Ray registered the node as {ray_address}; "
                                   "the placement group never forms.",
                           fix=f"restart the node with vlmctl cluster up/join so both use {ray_address}"))
    if p.shm_gib is not None and p.shm_gib < SHM_MIN_GIB:
        out.append(Finding(id="shm-small", severity="warning",
                           message=f"node '{p.node}': /dev/shm is {p.shm_gib:.2f} GiB; NCCL and vLLM's shared-memory queues need more.",
                           fix="run the container with ipc: host or shm_size: 16gb (vlmctl compose sets ipc: host)"))
    if p.model.path and p.disk_free_gib is not None and p.disk_free_gib < DISK_MIN_GIB:
        out.append(Finding(id="disk-low", severity="warning",
                           message=f"node '{p.node}': {p.disk_free_gib:.1f} GiB free at {p.model.path}; compile caches and logs need room.",
                           fix="free disk space on that filesystem"))
    return out


def analyse(probes: list[NodeProbe], spec: ClusterSpec | None = None,
            ray_addresses: dict[str, str] | None = None, plan=None) -> list[Finding]:
    """Compare node probes (and, given a plan, each node's vLLM with the plan's); every problem becomes a Finding
    naming the node(s)."""
    findings: list[Finding] = []
    if spec is not None:
        seen = {p.node for p in probes}
        for node in spec.nodes:
            if node.name not in seen:
                findings.append(Finding(id="node-not-joined", severity="error",
                                        message=f"node '{node.name}' ({node.address or 'no address'}) is not a live member of the Ray cluster.",
                                        fix=f"on '{node.name}': vlmctl cluster join {spec.head_node.address or 'HEAD'}"))
    for p in probes:
        findings += _gpu_findings(p, spec)
        findings += _node_findings(p, (ray_addresses or {}).get(p.node))
    findings += _model_findings(probes)
    findings += _version_findings(probes)
    if plan is not None:
        findings += _plan_vllm_findings(probes, plan)
    return findings


def verify_cluster(ne: NodeEnv, spec: ClusterSpec, timeout: float = 120.0, plan=None) -> VerifyResult:
    """Run ``probe_node`` on every live node of this cluster (one task pinned per node) and analyse (against
    ``plan`` when given)."""
    from vlmctl.cluster.ray_node import connect
    from vlmctl.errors import ClusterError

    with connect(ne) as ray:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        remote_probe = ray.remote(num_cpus=0)(probe_node)
        refs, addresses = [], {}
        for n in ray.nodes():
            labels = n.get("Labels") or {}
            if not n["Alive"] or labels.get("vlmctl-cluster") != ne.cluster:
                continue
            name = labels.get("vlmctl-node") or n["NodeManagerAddress"]
            addresses[name] = n["NodeManagerAddress"]
            try:
                path = spec.model_path_for(spec.node(name))
            except Exception:  # noqa: BLE001 - a node not in the file
                path = spec.model_path
            strategy = NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
            refs.append(remote_probe.options(scheduling_strategy=strategy).remote(name, n["NodeManagerAddress"], path))
        ready, pending = ray.wait(refs, num_returns=len(refs), timeout=timeout)
        if pending:
            raise ClusterError(f"{len(pending)} of {len(refs)} node probes did not finish within {timeout:.0f} s.",
                               fix="vlmctl cluster status; a node may be overloaded or dead")
        probes = sorted(ray.get(ready), key=lambda p: p.node)
    findings = analyse(probes, spec, addresses, plan)
    return VerifyResult(ok=not any(f.severity == "error" for f in findings), probes=probes, findings=findings)
