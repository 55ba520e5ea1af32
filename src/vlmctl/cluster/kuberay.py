"""KubeRay manifests from a plan and a cluster file: a ``RayCluster`` whose head runs ``vllm serve``.

The pods mirror the cluster file: the head pod gets the head node's GPUs (as on bare hosts, where the
head is a GPU node too), and the other nodes become one worker group per (GPU type, GPUs per node),
``replicas`` = nodes of that kind. Environments and the ``vllm serve`` argv come from the launch spec
(``vlmctl.launch.build_launch``, as for `vlmctl serve` and `compose`), with the pod in place of a host:
``NCCL_SOCKET_IFNAME``/``GLOO_SOCKET_IFNAME`` = the pod interface, ``VLLM_HOST_IP`` = the pod IP and
``VLMCTL_NODE`` = the pod name (downward API: the pods of a group share one template), and the launch
spec's ``ray_non_carry_over_env_vars.json`` from a ConfigMap at ``VLLM_CONFIG_ROOT`` (so the driver
does not copy its pod IP onto the workers). The API key comes from an optional Secret.

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
from vlmctl.launch import LaunchSpec, NodeLaunch
from vlmctl.launch.spec import argv_lines
from vlmctl.plan.schema import Plan

DEFAULT_IMAGE = "vlmctl-vllm:latest"
API_KEY_SECRET = "vlmctl-api-key"
CONFIG_MAP = "vlmctl-vllm-config"
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


def group_name(gpu_type: str, count: int) -> str:
    """A worker group's name: GPU type and GPUs per pod."""
    return k8s_name(f"{gpu_type}-x{count}")


def shm_limit_gib(gpus: int) -> int:
    """The /dev/shm budget of a pod with ``gpus`` GPUs (object store + per-GPU allowance)."""
    return OBJECT_STORE_BYTES // 1024**3 + SHM_PER_GPU_GIB * max(gpus, 1)


def launch_for(plan: Plan, spec: ClusterSpec) -> LaunchSpec:
    """The launch spec as pods see it: GPUs renumbered from 0, `vllm serve` on 0.0.0.0 (behind the head service)."""
    from vlmctl.launch import build_launch

    if not plan.nodes:
        raise ConfigError("the plan places no nodes.",
                          fix="re-plan with: vlmctl plan MODEL --cluster cluster.yaml -o plan.json")
    return build_launch(plan, spec, host="0.0.0.0", container=True)


def _env(node: NodeLaunch, pod_nic: str) -> list[dict]:
    """The launch spec's environment of ``node`` with the pod's interface, IP and name."""
    env = node.env_with(nic=pod_nic)
    env.pop("VLLM_HOST_IP", None)
    out = [{"name": k, "value": v} for k, v in env.items() if k != "VLMCTL_NODE"]
    out += [{"name": "VLLM_HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "VLMCTL_NODE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    return out


def _volumes(model_path: str | None, gpus: int, config_root: str) -> tuple[list[dict], list[dict]]:
    volumes = [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{shm_limit_gib(gpus)}Gi"}},
               {"name": "vllm-config", "configMap": {"name": CONFIG_MAP}}]
    mounts = [{"name": "dshm", "mountPath": "/dev/shm"},
              {"name": "vllm-config", "mountPath": config_root, "readOnly": True}]
    if model_path:
        volumes.append({"name": "model", "hostPath": {"path": model_path, "type": "Directory"}})
        mounts.append({"name": "model", "mountPath": model_path, "readOnly": True})
    return volumes, mounts


def serve_script(launch: LaunchSpec) -> str:
    """The head container's args: wait until Ray has every planned GPU, then exec ``vllm serve`` (in the background)."""
    gpus = sum(len(n.gpu_ids) for n in launch.nodes)
    wait = ('import ray, sys; ray.init(address="auto", logging_level="ERROR"); '
            f'sys.exit(0 if ray.cluster_resources().get("GPU", 0) >= {gpus} else 1)')
    serve = argv_lines(launch.vllm_argv).replace("\n", "\n    ")
    ray_address = f'  export RAY_ADDRESS="$VLLM_HOST_IP:{launch.ray_port}"\n' if launch.multi_node else ""
    return (f"{{ until python3 -c {shlex.quote(wait)} >/dev/null 2>&1\n"
            f"  do sleep 5; done\n"
            f"{ray_address}"
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
    container["volumeMounts"] = copy.deepcopy(mounts)
    return container


def _template(container: dict, volumes: list[dict], group: str, gpu_type: str) -> dict:
    return {"metadata": {"labels": {"app.kubernetes.io/managed-by": "vlmctl", "vlmctl/group": group}},
            "spec": {_PLACEMENT: f"{group}|{gpu_type}", "containers": [container], "volumes": volumes}}


def worker_groups(plan: Plan, launch: LaunchSpec) -> "OrderedDict[tuple[str, int], list[NodeLaunch]]":
    """Worker nodes grouped by (GPU type, GPUs per node), in plan order."""
    gpu_type = {n.name: n.gpu_type for n in plan.nodes}
    groups: OrderedDict[tuple[str, int], list[NodeLaunch]] = OrderedDict()
    for node in launch.nodes:
        if node.role == "worker":
            groups.setdefault((gpu_type[node.name], len(node.gpu_ids)), []).append(node)
    return groups


def config_map(launch: LaunchSpec) -> dict:
    """The ConfigMap with the launch spec's files for ``VLLM_CONFIG_ROOT`` (the same content on every node)."""
    files = {path.rsplit("/", 1)[1]: text for node in launch.nodes for path, text in node.files.items()}
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": CONFIG_MAP, "labels": {"app.kubernetes.io/managed-by": "vlmctl"}},
            "data": dict(sorted(files.items()))}


def _marked(plan: Plan, spec: ClusterSpec, launch: LaunchSpec, *, image: str, pod_nic: str) -> dict:
    gpu_type = {n.name: n.gpu_type for n in plan.nodes}
    head = launch.head_node
    head_volumes, head_mounts = _volumes(plan.model_path, len(head.gpu_ids), head.vllm_config_root)
    head_env = _env(head, pod_nic) + [{"name": "VLLM_API_KEY", "valueFrom": {"secretKeyRef": {
        "name": API_KEY_SECRET, "key": "key", "optional": True}}}]
    ports = [{"name": n, "containerPort": p} for n, p in RAY_PORTS] + [
        {"name": "vllm-api", "containerPort": launch.serve_port}]
    head_container = _container("ray-head", image, head_env, len(head.gpu_ids), head_mounts, ports,
                                args=[serve_script(launch)])
    start = {"object-store-memory": str(OBJECT_STORE_BYTES)}
    workers = []
    for (kind, count), nodes in worker_groups(plan, launch).items():
        group = group_name(kind, count)
        volumes, mounts = _volumes(plan.model_path, count, nodes[0].vllm_config_root)
        container = _container("ray-worker", image, _env(nodes[0], pod_nic), count, mounts, [])
        workers.append({"groupName": group, "replicas": len(nodes), "minReplicas": len(nodes),
                        "maxReplicas": len(nodes), "rayStartParams": dict(start),
                        "template": _template(container, volumes, group, kind)})
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": k8s_name(spec.name), "labels": {"app.kubernetes.io/managed-by": "vlmctl"}},
        "spec": {
            "headGroupSpec": {"rayStartParams": {**start, "dashboard-host": "0.0.0.0"},
                              "template": _template(head_container, head_volumes, "head", gpu_type[head.name])},
            "workerGroupSpecs": workers,
        },
    }


def strip_placement(manifest: dict) -> dict:
    """``manifest`` without the placement markers (what `kubectl apply` receives)."""
    def walk(obj):
        if isinstance(obj, dict):
            return {k: walk(v) for k, v in obj.items() if k != _PLACEMENT}
        if isinstance(obj, list):
            return [walk(v) for v in obj]
        return obj

    return walk(manifest)


def raycluster(plan: Plan, spec: ClusterSpec, *, image: str = DEFAULT_IMAGE, pod_nic: str = "eth0") -> dict:
    """The RayCluster manifest (as data, what `kubectl apply` receives) for ``plan`` on ``spec``'s nodes."""
    return strip_placement(_marked(plan, spec, launch_for(plan, spec), image=image, pod_nic=pod_nic))


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


def manifest_text(plan: Plan, spec: ClusterSpec, *, image: str = DEFAULT_IMAGE, pod_nic: str = "eth0") -> str:
    """The ConfigMap and RayCluster YAML with a header and the commented placement placeholders."""
    launch = launch_for(plan, spec)
    manifest = _marked(plan, spec, launch, image=image, pod_nic=pod_nic)
    name = manifest["metadata"]["name"]
    text = yaml.dump_all([config_map(launch), manifest], Dumper=_Dumper, sort_keys=False, width=120,
                         explicit_start=True)
    text = re.sub(rf"^(\s*){_PLACEMENT}: (\S+)\|(\S+)$",
                  lambda m: _placement_comment(m.group(1), m.group(2), m.group(3)), text, flags=re.M)
    header = (f"# Generated by `vlmctl k8s` for cluster '{spec.name}' ({plan.served_model_name}, TP "
              f"{plan.tensor_parallel_size} x PP {plan.pipeline_parallel_size}). Regenerate instead of editing.\n"
              f"# Apply: kubectl apply -f raycluster.yaml; API: kubectl port-forward svc/{name}-head-svc "
              f"{launch.serve_port}:{launch.serve_port}\n"
              f"# API key (optional; the file holds only the key): kubectl create secret generic {API_KEY_SECRET} "
              "--from-file=key=./api-key.txt\n")
    return header + text


def write_k8s(plan: Plan, spec: ClusterSpec, out_dir: str | Path, *, image: str = DEFAULT_IMAGE,
              pod_nic: str = "eth0") -> list[Path]:
    """Write ``raycluster.yaml`` (a ConfigMap and the RayCluster) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "raycluster.yaml"
    path.write_text(manifest_text(plan, spec, image=image, pod_nic=pod_nic))
    return [path]
