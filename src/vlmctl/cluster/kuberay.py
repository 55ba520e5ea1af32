"""KubeRay manifests from a plan and a cluster file: a ``RayCluster`` whose head runs ``vllm serve``.

The pods mirror the cluster file: the head pod gets the head node's GPUs (as on bare hosts, where the
head is a GPU node too), and the other nodes become one worker group per (GPU type, GPUs per node),
``replicas`` = nodes of that kind. Every Ray container carries the plan's vLLM environment (the one
`vlmctl serve` starts ``vllm serve`` with), with the pod network in place of a host NIC:
``NCCL_SOCKET_IFNAME``/``GLOO_SOCKET_IFNAME`` = the pod interface, ``VLLM_HOST_IP`` = the pod IP
(downward API, the address Ray registers the pod with). The API key comes from an optional Secret.

KubeRay (``ray-operator/controllers/ray/common/pod.go``, v1.7.0) runs a container's own args *before*
its generated ``ray start … --block`` (``args && ulimit …; ray start``), so the head's args start a
background job that waits until Ray reports the plan's GPUs and then ``exec``s ``vllm serve``, writing
to the container's stdout (``kubectl logs``). Node selectors and tolerations are left as commented
placeholders next to each group: pods need them to land on the GPU type the plan sized them for.

``/dev/shm`` is a memory-backed emptyDir (Kubernetes gives containers 64 MiB): Ray's object store
(set to 2 GiB with ``object-store-memory``; vLLM moves little through it) plus 1 GiB per GPU for
NCCL's shared-memory transport and vLLM's message queues. That budget is an allowance, not a
measurement: raise it if NCCL logs ``Error while creating shared memory segment``.
"""
from __future__ import annotations

import copy
import re
import shlex
from collections import OrderedDict
from pathlib import Path

import yaml

from vlmctl.clusterspec import ClusterSpec
from vlmctl.errors import ConfigError
from vlmctl.plan.schema import NodePlacement, Plan

DEFAULT_IMAGE = "vlmctl-vllm:latest"
API_KEY_SECRET = "vlmctl-api-key"
OBJECT_STORE_BYTES = 2 * 1024**3
SHM_PER_GPU_GIB = 1
RAY_PORTS = (("gcs-server", 6379), ("dashboard", 8265), ("client", 10001))
_PLACEMENT = "__vlmctl_placement__"


def k8s_name(name: str) -> str:
    """A DNS-1123 label from ``name`` (lower case, ``-``, at most 63 characters)."""
    out = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].strip("-")
    if not out:
        raise ConfigError(f"'{name}' gives no Kubernetes name.", fix="use letters or digits in the cluster name")
    return out


def shm_limit_gib(gpus: int) -> int:
    """The /dev/shm budget of a pod with ``gpus`` GPUs (object store + per-GPU allowance)."""
    return OBJECT_STORE_BYTES // 1024**3 + SHM_PER_GPU_GIB * max(gpus, 1)


def _env(plan: Plan, pod_nic: str) -> list[dict]:
    from vlmctl.serve.argv import vllm_env

    env = [{"name": k, "value": v} for k, v in vllm_env(plan).items()]
    env += [
        {"name": "RAY_USAGE_STATS_ENABLED", "value": "0"},
        {"name": "NCCL_SOCKET_IFNAME", "value": f"={pod_nic}"},
        {"name": "GLOO_SOCKET_IFNAME", "value": pod_nic},
        {"name": "VLLM_HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
    ]
    return env


def _volumes(model_path: str | None, gpus: int) -> tuple[list[dict], list[dict]]:
    volumes = [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{shm_limit_gib(gpus)}Gi"}}]
    mounts = [{"name": "dshm", "mountPath": "/dev/shm"}]
    if model_path:
        volumes.append({"name": "model", "hostPath": {"path": model_path, "type": "Directory"}})
        mounts.append({"name": "model", "mountPath": model_path, "readOnly": True})
    return volumes, mounts


def serve_script(plan: Plan, api_port: int) -> str:
    """The head container's args: wait for the plan's GPUs in Ray, then exec ``vllm serve`` (in the background)."""
    from vlmctl.serve.argv import VllmLaunch, vllm_argv

    gpus = sum(len(n.gpu_ids) for n in plan.nodes) or 1
    wait = ('import ray, sys; ray.init(address="auto", logging_level="ERROR"); '
            f'sys.exit(0 if ray.cluster_resources().get("GPU", 0) >= {gpus} else 1)')
    serve = VllmLaunch(vllm_argv(plan, host="0.0.0.0", port=api_port)).shell().replace("\n", "\n    ")
    return (f"{{ until python3 -c {shlex.quote(wait)} >/dev/null 2>&1\n"
            f"  do sleep 5; done\n"
            f"  exec {serve}\n"
            f"}} >/proc/1/fd/1 2>&1 & true")


def _container(name: str, image: str, env: list[dict], gpus: int, mounts: list[dict], ports: list[dict],
               args: list[str] | None = None) -> dict:
    container = {"name": name, "image": image}
    if args:
        container["args"] = args
    container["env"] = copy.deepcopy(env)
    if ports:
        container["ports"] = ports
    container["resources"] = {"limits": {"nvidia.com/gpu": gpus}}
    container["volumeMounts"] = mounts
    return container


def _template(container: dict, volumes: list[dict], group: str) -> dict:
    return {"metadata": {"labels": {"app.kubernetes.io/managed-by": "vlmctl", "vlmctl/group": group}},
            "spec": {_PLACEMENT: group, "containers": [container], "volumes": volumes}}


def worker_groups(plan: Plan, head: str) -> "OrderedDict[tuple[str, int], list[NodePlacement]]":
    """Non-head plan nodes grouped by (GPU type, GPUs per node), in plan order."""
    groups: OrderedDict[tuple[str, int], list[NodePlacement]] = OrderedDict()
    for node in plan.nodes:
        if node.name != head:
            groups.setdefault((node.gpu_type, len(node.gpu_ids)), []).append(node)
    return groups


def head_placement(plan: Plan, spec: ClusterSpec) -> NodePlacement:
    """The plan node that is the cluster file's head (else the plan's first node)."""
    if not plan.nodes:
        raise ConfigError("the plan places no nodes.", fix="re-plan with: vlmctl plan MODEL --cluster cluster.yaml -o plan.json")
    return next((n for n in plan.nodes if n.name == spec.head_node.name), plan.nodes[0])


def raycluster(plan: Plan, spec: ClusterSpec, *, image: str = DEFAULT_IMAGE, pod_nic: str = "eth0") -> dict:
    """The RayCluster manifest (as data, what `kubectl apply` receives) for ``plan`` on ``spec``'s nodes."""
    return strip_placement(_marked(plan, spec, image=image, pod_nic=pod_nic))


def _marked(plan: Plan, spec: ClusterSpec, *, image: str, pod_nic: str) -> dict:
    head = head_placement(plan, spec)
    head_name = head.name
    api_port = spec.ports.api
    env = _env(plan, pod_nic)
    model_path = plan.model_path
    head_volumes, head_mounts = _volumes(model_path, len(head.gpu_ids))
    head_env = env + [{"name": "VLLM_API_KEY", "valueFrom": {"secretKeyRef": {
        "name": API_KEY_SECRET, "key": "key", "optional": True}}}]
    ports = [{"name": n, "containerPort": p} for n, p in RAY_PORTS] + [{"name": "vllm-api", "containerPort": api_port}]
    head_container = _container("ray-head", image, head_env, len(head.gpu_ids), head_mounts, ports,
                                args=[serve_script(plan, api_port)])
    start = {"object-store-memory": str(OBJECT_STORE_BYTES)}
    workers = []
    for (gpu_type, count), nodes in worker_groups(plan, head_name).items():
        group = k8s_name(f"{gpu_type}-x{count}")
        volumes, mounts = _volumes(model_path, count)
        container = _container("ray-worker", image, env, count, mounts, [])
        workers.append({"groupName": group, "replicas": len(nodes), "minReplicas": len(nodes),
                        "maxReplicas": len(nodes), "rayStartParams": dict(start),
                        "template": _template(container, volumes, group)})
    manifest = {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": k8s_name(spec.name), "labels": {"app.kubernetes.io/managed-by": "vlmctl"}},
        "spec": {
            "headGroupSpec": {"rayStartParams": {**start, "dashboard-host": "0.0.0.0"},
                              "template": _template(head_container, head_volumes, "head")},
            "workerGroupSpecs": workers,
        },
    }
    return manifest


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the head's script) as literal blocks; no anchors."""

    def ignore_aliases(self, data) -> bool:
        return True


_Dumper.add_representer(str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s,
                                                             style="|" if "\n" in s else None))


def _placement_comment(indent: str, group: str, gpu_type: str) -> str:
    lines = [
        f"Placement for group '{group}' ({gpu_type}): pods must land on nodes with that GPU. Uncomment and",
        "set the label your cluster carries (GPU Feature Discovery: nvidia.com/gpu.product) and any taints.",
        "nodeSelector:",
        "  nvidia.com/gpu.product: SET-ME",
        "tolerations:",
        "- {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}",
    ]
    return "\n".join(f"{indent}# {line}" for line in lines)


def strip_placement(manifest: dict) -> dict:
    """``manifest`` without the placement markers (what `kubectl apply` receives)."""
    def walk(obj):
        if isinstance(obj, dict):
            return {k: walk(v) for k, v in obj.items() if k != _PLACEMENT}
        if isinstance(obj, list):
            return [walk(v) for v in obj]
        return obj

    return walk(manifest)


def manifest_text(plan: Plan, spec: ClusterSpec, *, image: str = DEFAULT_IMAGE, pod_nic: str = "eth0") -> str:
    """The RayCluster YAML with a header and the commented placement placeholders."""
    manifest = _marked(plan, spec, image=image, pod_nic=pod_nic)
    head = head_placement(plan, spec)
    gpu_of = {"head": head.gpu_type}
    for (gpu_type, count), _ in worker_groups(plan, head.name).items():
        gpu_of[k8s_name(f"{gpu_type}-x{count}")] = gpu_type
    text = yaml.dump(manifest, Dumper=_Dumper, sort_keys=False, width=120)
    text = re.sub(rf"^(\s*){_PLACEMENT}: (\S+)$",
                  lambda m: _placement_comment(m.group(1), m.group(2), gpu_of.get(m.group(2), "?")), text, flags=re.M)
    name = manifest["metadata"]["name"]
    header = (f"# Generated by `vlmctl k8s` for cluster '{spec.name}' ({plan.served_model_name}, TP "
              f"{plan.tensor_parallel_size} x PP {plan.pipeline_parallel_size}). Regenerate instead of editing.\n"
              f"# Apply: kubectl apply -f raycluster.yaml; API: kubectl port-forward svc/{name}-head-svc "
              f"{spec.ports.api}:{spec.ports.api}\n"
              f"# API key (optional; the file holds only the key): kubectl create secret generic {API_KEY_SECRET} "
              "--from-file=key=./api-key.txt\n")
    return header + text


def write_k8s(plan: Plan, spec: ClusterSpec, out_dir: str | Path, *, image: str = DEFAULT_IMAGE,
              pod_nic: str = "eth0") -> list[Path]:
    """Write ``raycluster.yaml`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "raycluster.yaml"
    path.write_text(manifest_text(plan, spec, image=image, pod_nic=pod_nic))
    return [path]
