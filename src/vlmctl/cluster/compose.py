"""`vlmctl compose`: one docker-compose file per node, plus a README, rendered from the launch spec.

Every container is the same image: host network (NCCL/Gloo/Ray see the host's NICs), ``ipc: host``
(no 64 MiB /dev/shm), the node's planned GPUs by id (renumbered from 0 inside, so Ray offers exactly
those), the model mounted at the *same* path on every node, the Hugging Face cache mounted and
``HF_TOKEN`` passed through from the shell that runs ``docker compose`` (never written here),
``restart: unless-stopped``, ``entrypoint: vlmctl`` (the vLLM image's own entrypoint is
``vllm serve``), and ``cluster up`` (head) or ``cluster join`` (workers), which computes the NIC and
address inside the container and keeps Ray in the foreground. With a plan the head also gets an
``api`` service: ``vlmctl serve --plan --cluster`` with a health check.
"""
from __future__ import annotations

import os
from pathlib import Path

import yaml

from vlmctl.clusterspec import ClusterSpec
from vlmctl.engines.vllm import NEWEST
from vlmctl.launch import LaunchSpec, NodeLaunch, build_launch
from vlmctl.launch.spec import CONTAINER_STATE_ROOT, token_path
from vlmctl.plan.schema import Plan

#: Built from docker/Dockerfile (the vLLM image of the default profile plus vlmctl[cluster]).
DEFAULT_IMAGE = f"vlmctl-vllm:{NEWEST}"


def image_for(plan: Plan | None) -> str:
    """The node image for ``plan``: built with ``--build-arg VLLM_VERSION=<the plan's vLLM>``."""
    return f"vlmctl-vllm:{plan.vllm_version}" if plan is not None else DEFAULT_IMAGE
CLUSTER_MOUNT = "/etc/vlmctl/cluster.yaml"
PLAN_MOUNT = "/etc/vlmctl/plan.json"
#: Ray's auth token next to the compose files (mode 600), mounted where RAY_AUTH_TOKEN_PATH points.
TOKEN_FILE = "ray_auth_token"
HF_CACHE = "${HF_HOME:-${HOME}/.cache/huggingface}:/root/.cache/huggingface"
#: Seconds vLLM may take to load and profile before the API's health check counts failures.
API_START_PERIOD_S = 1800


def container_launch(cluster: ClusterSpec, plan: Plan | None = None) -> LaunchSpec:
    """The launch spec as the containers see it (GPUs renumbered from 0, state under /tmp/vlmctl)."""
    return build_launch(plan, cluster, state_root=CONTAINER_STATE_ROOT, container=True)


def _gpus(node: NodeLaunch) -> dict:
    return {"resources": {"reservations": {"devices": [
        {"driver": "nvidia", "device_ids": [str(i) for i in node.gpu_ids], "capabilities": ["gpu"]}]}}}


def _volumes(cluster: ClusterSpec, name: str, with_plan: bool) -> list[str]:
    node = cluster.node(name)
    container_path = cluster.model_path or cluster.model_path_for(node)
    host_path = cluster.model_path_for(node)
    volumes = [f"./cluster.yaml:{CLUSTER_MOUNT}:ro"] + ([f"./plan.json:{PLAN_MOUNT}:ro"] if with_plan else [])
    volumes.append(f"./{TOKEN_FILE}:{token_path(CONTAINER_STATE_ROOT, cluster.name)}:ro")
    if host_path and container_path:
        volumes.insert(0, f"{host_path}:{container_path}:ro")
    return volumes + [HF_CACHE]


def _ray_command(spec: LaunchSpec, node: NodeLaunch, with_plan: bool) -> list[str]:
    common = ["--cluster", CLUSTER_MOUNT, "--node", node.name, *(["--plan", PLAN_MOUNT] if with_plan else []),
              "--cuda-visible-devices", node.visible_devices, "--block"]
    if node.role == "head":
        return ["cluster", "up", *common]
    return ["cluster", "join", spec.head_address or "HEAD_ADDRESS", *common]


def _api_service(cluster: ClusterSpec, spec: LaunchSpec, node: NodeLaunch, image: str) -> dict:
    port = cluster.ports.api
    probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/health', timeout=5)"
    return {
        "image": image,
        "container_name": f"vlmctl-{cluster.name}-{node.name}-api",
        "network_mode": "host",
        "ipc": "host",
        "restart": "unless-stopped",
        "depends_on": ["ray"],
        "environment": {
            "VLMCTL_STATE_ROOT": CONTAINER_STATE_ROOT,
            "VLMCTL_API_KEY": "${VLMCTL_API_KEY:?set VLMCTL_API_KEY: the API listens on every interface}",
            "HF_TOKEN": "${HF_TOKEN:-}",
        },
        "volumes": _volumes(cluster, node.name, True),
        "deploy": _gpus(node),
        "entrypoint": ["vlmctl"],
        "command": ["serve", "--plan", PLAN_MOUNT, "--cluster", CLUSTER_MOUNT, "--host", "0.0.0.0", "--port", str(port),
                    "--cuda-visible-devices", node.visible_devices],
        "healthcheck": {"test": ["CMD", "python3", "-c", probe], "interval": "30s", "timeout": "10s", "retries": 3,
                        "start_period": f"{API_START_PERIOD_S}s"},
    }


def compose_service(cluster: ClusterSpec, node_name: str, *, image: str | None = None, plan: Plan | None = None) -> dict:
    """The compose document (as data) for one node; with ``plan`` ./plan.json is mounted at /etc/vlmctl/plan.json."""
    spec = container_launch(cluster, plan)
    node = spec.node(node_name)
    with_plan = plan is not None
    image = image or image_for(plan)
    env = dict(node.env_with())
    env["VLMCTL_STATE_ROOT"] = CONTAINER_STATE_ROOT
    env["HF_TOKEN"] = "${HF_TOKEN:-}"
    ray = {
        "image": image,
        "container_name": f"vlmctl-{cluster.name}-{node.name}",
        "network_mode": "host",
        "ipc": "host",
        "restart": "unless-stopped",
        "environment": env,
        "volumes": _volumes(cluster, node.name, with_plan),
        "deploy": _gpus(node),
        "entrypoint": ["vlmctl"],
        "command": _ray_command(spec, node, with_plan),
    }
    services = {"ray": ray}
    if with_plan and node.role == "head":
        services["api"] = _api_service(cluster, spec, node, image)
    return {"name": f"vlmctl-{cluster.name}-{node.name}", "services": services}


def compose_text(cluster: ClusterSpec, node_name: str, *, image: str | None = None, plan: Plan | None = None) -> str:
    """One node's docker-compose YAML, deterministic (snapshot-tested)."""
    role = "head" if node_name == container_launch(cluster, plan).head else "worker"
    header = (f"# Generated by `vlmctl compose` for cluster '{cluster.name}', node '{node_name}' ({role}).\n"
              "# Regenerate instead of editing. Start: docker compose -f "
              f"{file_name(node_name)} up -d\n")
    body = yaml.safe_dump(compose_service(cluster, node_name, image=image, plan=plan), sort_keys=False,
                          default_flow_style=False, width=120)
    return header + body


def file_name(node_name: str) -> str:
    return f"docker-compose.{node_name}.yml"


def readme_text(cluster: ClusterSpec, *, image: str | None = None, plan: Plan | None = None) -> str:
    """The short README written next to the compose files."""
    spec = container_launch(cluster, plan)
    head = spec.head_node
    image = image or image_for(plan)
    version = plan.vllm_version if plan is not None else NEWEST
    lines = [
        f"# Cluster '{cluster.name}': one compose file per node",
        "",
        f"Generated by `vlmctl compose`. Image: `{image}`, the same on every node; build it from vlmctl's repository:",
        "",
        f"    docker build -f docker/Dockerfile --build-arg VLLM_VERSION={version} -t {image} .",
        "",
        f"Model: `{cluster.model_path or '(set model_path in the cluster file)'}`, mounted at the same path in every "
        "container; the Hugging Face cache is mounted from `$HF_HOME` (default `~/.cache/huggingface`) and `HF_TOKEN` "
        "is taken from the shell that runs `docker compose`.",
        "",
        "Copy this folder (with `cluster.yaml`) to every node, then start the head first:",
        "",
        "| node | role | address | GPUs (host ids) | start on that node |",
        "|---|---|---|---|---|",
    ]
    for node in sorted(spec.nodes, key=lambda n: n.role != "head"):
        cnode = cluster.node(node.name)
        lines.append(f"| {node.name} | {node.role} | {node.address or '?'} | {cnode.gpu} × {len(node.gpu_ids)} "
                     f"(ids {','.join(map(str, node.gpu_ids))}) | `docker compose -f {file_name(node.name)} up -d` |")
    unused = [n.name for n in cluster.nodes if n.name not in {x.name for x in spec.nodes}]
    if unused:
        lines += ["", f"The plan leaves {', '.join(unused)} unused: no compose file for {'it' if len(unused) == 1 else 'them'}."]
    lines += [
        "",
        "Each `ray` container runs `vlmctl cluster up` (head) or `vlmctl cluster join` (workers), which picks the NIC",
        "that routes to the head (or the node's `nic`), sets GLOO_SOCKET_IFNAME, NCCL_SOCKET_IFNAME, VLLM_HOST_IP and",
        "Ray's --node-ip-address to match, and keeps Ray in the foreground.",
    ]
    if plan is not None:
        lines += [
            "",
            f"On the head the `api` service runs `vlmctl serve --plan {PLAN_MOUNT} --cluster {CLUSTER_MOUNT}` on port "
            f"{cluster.ports.api} of every interface; it needs `VLMCTL_API_KEY` set in the shell that runs `docker compose`:",
            "",
            "```",
            f"VLMCTL_API_KEY=$(openssl rand -hex 16) docker compose -f {file_name(head.name)} up -d   # head, after the workers",
            f"docker compose -f {file_name(head.name)} ps        # api turns healthy once vLLM has loaded the model",
            "```",
        ]
    else:
        lines += ["", "To serve a model, plan it for this cluster and regenerate with the plan (adds the `api` service):",
                  "", "```", "vlmctl plan MODEL --cluster cluster.yaml -o plan.json",
                  "vlmctl compose --cluster cluster.yaml --plan plan.json", "```"]
    lines += [
        "",
        "Check the cluster from the head:",
        "",
        "```",
        f"docker exec vlmctl-{cluster.name}-{head.name} vlmctl cluster status --cluster {CLUSTER_MOUNT}",
        f"docker exec vlmctl-{cluster.name}-{head.name} vlmctl cluster verify --cluster {CLUSTER_MOUNT}",
        "```",
        "",
        "Stop: `docker compose -f <file> down` on each node, workers first. (`vlmctl cluster down` inside a container",
        "stops Ray, and `restart: unless-stopped` then starts it again: use it to restart a node, not to stop one.)",
        "",
    ]
    return "\n".join(lines)


def write_compose(cluster: ClusterSpec, out_dir: str | Path, *, cluster_file: str | Path | None = None,
                  image: str | None = None, plan: Plan | None = None, plan_file: str | Path | None = None) -> list[Path]:
    """Write the compose file of every node the launch uses, the README and copies of the cluster file (and plan)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for node in container_launch(cluster, plan).nodes:
        path = out / file_name(node.name)
        path.write_text(compose_text(cluster, node.name, image=image, plan=plan))
        written.append(path)
    readme = out / "README.md"
    readme.write_text(readme_text(cluster, image=image, plan=plan))
    written.append(readme)
    from vlmctl.cluster.monitoring import write_monitoring

    written += write_monitoring(cluster, out, state_root=CONTAINER_STATE_ROOT)
    if plan_file is not None and Path(plan_file).resolve() != (out / "plan.json").resolve():
        (out / "plan.json").write_text(Path(plan_file).read_text())
        written.append(out / "plan.json")
    token = out / TOKEN_FILE
    if not token.exists():  # Ray's auth token, the same on every node: travels with this folder
        import secrets

        fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    written.append(token)
    target = out / "cluster.yaml"
    if cluster_file is not None and Path(cluster_file).resolve() != target.resolve():
        target.write_text(Path(cluster_file).read_text())
    elif cluster_file is None:
        target.write_text(yaml.safe_dump(cluster.model_dump(mode="json", exclude_none=True), sort_keys=False))
    written.append(target)
    return written
