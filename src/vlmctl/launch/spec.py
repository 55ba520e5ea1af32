"""The launch spec: what every node runs, computed once from a Plan and the cluster file.

``build_launch(plan, cluster)`` returns, per node, the environment, the ``ray start`` line, the files
to write (``VLLM_CONFIG_ROOT/ray_non_carry_over_env_vars.json``) and the GPU ids, and on the head the
``vllm serve`` argv and its environment. ``vlmctl serve`` (and ``--dry-run``), ``compose``,
``plan --emit commands|env|vllm-config`` and ``cluster env|up|join`` all render this; none computes
an environment or a command line of its own.

Two values can only be known on the node itself when the cluster file does not fix them: the NIC
(the interface that routes to the head) and the node's address. ``NodeLaunch.nic``/``address`` are
``None`` then; ``vlmctl cluster env`` reads them from the machine, the shell renderer asks ``ip``.

Why each variable, and where it goes:

* per node, for ``ray start`` (every Ray worker on that node inherits it from the raylet):
  ``GLOO_SOCKET_IFNAME`` (one name: Gloo takes no lists), ``NCCL_SOCKET_IFNAME`` in exact-match form
  ``=name`` (``eth1`` would also match ``eth10``), ``VLLM_HOST_IP`` = Ray's ``--node-ip-address``,
  ``CUDA_VISIBLE_DEVICES`` = the plan's GPUs of that node (and ``--num-gpus`` the same count, so Ray
  offers exactly the GPUs the layer split assumes), ``VLLM_CONFIG_ROOT``;
* on the head, for ``vllm serve`` (the driver): the plan's variables, ``VLLM_HOST_IP`` (vLLM's
  ``RayDistributedExecutor._init_workers_ray`` refuses to start when the driver's IP is not one of the
  workers' node IPs), ``VLLM_CONFIG_ROOT`` and ``RAY_ADDRESS``, but no NIC variable: the driver copies
  its environment onto every Ray worker (vLLM 0.26's default executor: ``vllm/ray/ray_env.py``
  ``get_env_vars_to_copy``, every ``VLLM_*``/``NCCL_*``/``HF_*``/``UCX_*``/``LMCACHE_*`` variable, overwriting
  the worker's; ``RayExecutorV2``, the only one in 0.33: ``vllm/v1/executor/ray_env_utils.py``
  ``get_driver_env_vars``, everything, filling in what the worker lacks), minus ``WORKER_SPECIFIC_ENV_VARS``
  (``vllm/v1/executor/ray_utils.py``) and the names listed in
  ``$VLLM_CONFIG_ROOT/ray_non_carry_over_env_vars.json`` (read once by ``vllm/ray/ray_env.py``);
  the head's NIC would overwrite every worker's. The file lists the NIC variables as well, so one
  exported by hand in the head's shell stays on the head too.
"""
from __future__ import annotations

import json
import re
import shlex
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vlmctl.clusterspec import ClusterSpec
from vlmctl.errors import ConfigError
from vlmctl.launch.passthrough import check_passthrough
from vlmctl.launch.vllm_flags import flag_names
from vlmctl.plan.schema import Plan

#: Variables vLLM's driver must not copy onto Ray workers: each node sets its own.
NON_CARRY_OVER = ["CUDA_VISIBLE_DEVICES", "GLOO_SOCKET_IFNAME", "NCCL_IB_HCA", "NCCL_SOCKET_IFNAME", "VLLM_HOST_IP",
                  "VLMCTL_NODE", "VLMCTL_STATE_DIR"]
NON_CARRY_OVER_FILE = "ray_non_carry_over_env_vars.json"
#: The per-node network variables (values known only where the NIC is).
NIC_VARS = ("GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME")
API_KEY_ENV = "VLLM_API_KEY"
DEFAULT_STATE_ROOT = "/tmp/vlmctl"
#: Where a node's state lives inside the containers `vlmctl compose` writes.
CONTAINER_STATE_ROOT = "/tmp/vlmctl"
REDACTED = "<redacted>"
#: First line of a shell that needs the head's address the cluster file does not give.
HEAD_IP_GUARD = 'HEAD_IP="${HEAD_IP:?export HEAD_IP=<the head node address> first}"'


#: Ray's node health check, tightened so a dead node is marked dead within about 5 s instead of the ~20 s
#: Ray's defaults give (src/ray/common/ray_config_def.h, health_check_*: period 3000 ms, 5 failures).
#: The GCS on the head reads them at start (names checked in Ray 2.60's gcs_server binary).
RAY_HEALTH_CHECK = {
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "4",
}


def _under(root: str, name: str) -> str:
    return f"{root.rstrip('/') or '/'}/{name}".replace("//", "/")


def token_path(root: str, cluster: str) -> str:
    """The cluster's Ray auth token file (RAY_AUTH_TOKEN_PATH): made on the head, copied to every worker."""
    return _under(root, f"{cluster}.ray_auth_token")


def state_dir(root: str, cluster: str, node: str) -> str:
    """The folder one node of one cluster owns (Ray --temp-dir, vLLM config root): two nodes never share it."""
    return _under(root, f"{cluster}-{node}")


def nic_env(nic: str) -> dict[str, str]:
    """NCCL and Gloo on ``nic`` (NCCL in exact-match form)."""
    return {"GLOO_SOCKET_IFNAME": nic, "NCCL_SOCKET_IFNAME": f"={nic}"}


def non_carry_over_json(existing: list[str] | None = None) -> str:
    """The content of ``ray_non_carry_over_env_vars.json`` (keeps ``existing`` entries)."""
    return json.dumps(sorted(set(existing or []) | set(NON_CARRY_OVER)), indent=2) + "\n"


class NodeLaunch(BaseModel):
    """One node: its GPUs, its environment, its ``ray start`` line and the files it needs."""

    model_config = ConfigDict(extra="forbid")

    name: str
    role: Literal["head", "worker"]
    address: str | None
    """Address from the cluster file (VLLM_HOST_IP, Ray --node-ip-address); None = found on the node."""
    nic: str | None
    """NIC from the cluster file; None = the interface that routes to the head, found on the node."""
    gpu_ids: list[int]
    """Physical GPU ids this node gives the engine."""
    visible_devices: str
    """CUDA_VISIBLE_DEVICES as the processes see it (containers renumber the reserved GPUs from 0)."""
    state_dir: str
    vllm_config_root: str
    env: dict[str, str]
    """The node's environment for `ray start`, without the values found on the node (NIC, address) when unknown."""
    files: dict[str, str]
    """Path -> content of the files to write on this node before anything starts."""
    ray_port: int
    dashboard_port: int
    head_address: str | None

    def env_with(self, nic: str | None = None, address: str | None = None) -> dict[str, str]:
        """The complete environment once the node's NIC and address are known."""
        env = dict(self.env)
        nic = nic or self.nic
        address = address or self.address
        if nic:
            env.update(nic_env(nic))
        if address:
            env["VLLM_HOST_IP"] = address
        return _ordered(env)

    def ray_start(self, *, nic: str | None = None, address: str | None = None, ray: str = "ray",
                  head_address: str | None = None, ray_port: int | None = None, dashboard: bool = True,
                  dashboard_host: str | None = None, block: bool = False) -> list[str]:
        """``ray start`` for this node (placeholders ``$NIC``/``$NODE_IP``/``$HEAD_IP`` where a value is unknown)."""
        address = address or self.address or "$NODE_IP"
        nic = nic or self.nic or "$NIC"
        labels = f"vlmctl-cluster={self.env['VLMCTL_CLUSTER']},vlmctl-node={self.name},vlmctl-nic={nic},vlmctl-role={self.role}"
        argv = [ray, "start", f"--node-ip-address={address}", f"--temp-dir={self.state_dir}", "--disable-usage-stats",
                f"--labels={labels}", f"--num-gpus={len(self.gpu_ids)}"]
        port = ray_port or self.ray_port
        if self.role == "head":
            argv += ["--head", f"--port={port}"]
            if dashboard:
                argv += [f"--dashboard-host={dashboard_host or address}", f"--dashboard-port={self.dashboard_port}"]
            else:
                argv += ["--include-dashboard=false"]
        else:
            argv += [f"--address={head_address or self.head_address or '$HEAD_IP'}:{port}"]
        if block:
            argv.append("--block")
        return argv


_ORDER = {k: i for i, k in enumerate((
    "CUDA_VISIBLE_DEVICES", "GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME", "VLLM_HOST_IP", "VLLM_CONFIG_ROOT",
    "VLLM_WORKER_MULTIPROC_METHOD", "VLLM_PP_LAYER_PARTITION", "VLLM_USE_V2_MODEL_RUNNER", "RAY_ADDRESS",
    "RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH", "RAY_USAGE_STATS_ENABLED", "VLLM_NO_USAGE_STATS", "VLMCTL_CLUSTER", "VLMCTL_NODE",
    "VLMCTL_STATE_DIR"))}


def _ordered(env: dict[str, str]) -> dict[str, str]:
    """``env`` with the launch variables first, in a fixed order (so every rendering lists them alike)."""
    return dict(sorted(env.items(), key=lambda kv: _ORDER.get(kv[0], 99)))


class LaunchSpec(BaseModel):
    """Every node of a deployment, and on the head the `vllm serve` command."""

    model_config = ConfigDict(extra="forbid")

    cluster: str
    head: str
    """Name of the head node (Ray GCS, the vLLM driver)."""
    head_address: str | None
    ray_port: int
    multi_node: bool
    """True when Ray spans nodes (vLLM's ray executor)."""
    nodes: list[NodeLaunch]
    vllm_argv: list[str] = Field(default_factory=list)
    """``vllm serve …`` on the head (empty without a plan). Secrets never appear here."""
    vllm_env: dict[str, str] = Field(default_factory=dict)
    """The plan's variables for `vllm serve` (the driver gets them on top of its node's share)."""
    serve_host: str = "127.0.0.1"
    serve_port: int = 8000
    model: str = ""
    """What `vllm serve` serves (the plan's model path or id)."""

    def node(self, name: str) -> NodeLaunch:
        """The node called ``name``."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise ConfigError(f"node '{name}' is not in this launch ({', '.join(n.name for n in self.nodes)}).",
                          fix=f"use one of: {', '.join(n.name for n in self.nodes)}")

    @property
    def head_node(self) -> NodeLaunch:
        return self.node(self.head)

    @property
    def ray_address(self) -> str:
        """``host:port`` of the Ray GCS (a placeholder when the head's address is not in the cluster file)."""
        return f"{self.head_address or '$HEAD_IP'}:{self.ray_port}"

    def driver_env(self, *, address: str | None = None, head_address: str | None = None,
                   api_key: str | None = None) -> dict[str, str]:
        """The environment of `vllm serve` on the head: no NIC variables (see the module docstring)."""
        env = dict(self.vllm_env)
        if self.multi_node:
            head = self.head_node
            gcs_host = head_address or self.head_address or "$HEAD_IP"
            env.update({k: v for k, v in head.env_with(address=address or head.address or gcs_host).items()
                        if k not in NIC_VARS})
            env["RAY_ADDRESS"] = f"{gcs_host}:{self.ray_port}"
        elif self.nodes and self.nodes[0].env.get("CUDA_VISIBLE_DEVICES"):
            env["CUDA_VISIBLE_DEVICES"] = self.nodes[0].env["CUDA_VISIBLE_DEVICES"]
        if api_key:
            env[API_KEY_ENV] = api_key
        return _ordered(env)

    def vllm_shell(self, env: dict[str, str], redact: bool = True) -> str:
        """``export`` lines, then `vllm serve` with one flag per line (copy-pasteable)."""
        lines = [HEAD_IP_GUARD] if any("$HEAD_IP" in v for v in env.values()) else []
        lines += [f"export {k}={quote(REDACTED if redact and k == API_KEY_ENV else v)}" for k, v in env.items()]
        lines.append(argv_lines(self.vllm_argv))
        return "\n".join(lines)


_PLACEHOLDER = re.compile(r"\$(NIC|NODE_IP|HEAD_IP)\b")


def quote(value: str) -> str:
    """Shell-quote ``value``, leaving the placeholders ``$NIC``/``$NODE_IP``/``$HEAD_IP`` to expand."""
    if _PLACEHOLDER.search(value):
        escaped = re.sub(r'(["\\`])', r"\\\1", value)
        return '"' + re.sub(r"\$(?!(NIC|NODE_IP|HEAD_IP)\b)", r"\\$", escaped) + '"'
    return shlex.quote(value)


def argv_lines(argv: list[str]) -> str:
    """``vllm serve MODEL`` then one ``--flag value`` per continued line."""
    start = argv.index("serve") + 2 if "serve" in argv else 1
    parts, i = [" ".join(quote(a) for a in argv[:start])], start
    while i < len(argv):
        if i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            parts.append(f"{quote(argv[i])} {quote(argv[i + 1])}")
            i += 2
        else:
            parts.append(shlex.quote(argv[i]))
            i += 1
    return " \\\n  ".join(parts)


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def vllm_settings(plan: Plan) -> list[tuple[str, object]]:
    """The plan's ``vllm serve`` settings as (plan field, value), in command-line order; True = a bare flag."""
    out: list[tuple[str, object]] = [
        ("tensor_parallel_size", plan.tensor_parallel_size),
        ("pipeline_parallel_size", plan.pipeline_parallel_size),
    ]
    if plan.data_parallel_size > 1:
        out.append(("data_parallel_size", plan.data_parallel_size))
        if len(plan.nodes) > 1:
            # Replicas on other nodes: vLLM places them through Ray, the head's count locally; without
            # --data-parallel-size-local vLLM would put every replica on the head (vllm/engine/arg_utils.py
            # EngineArgs.create_engine_config: local size defaults to the global one, 0.26.0).
            out.append(("data_parallel_size_local", len(plan.nodes[0].dp_ranks)))
            out.append(("data_parallel_backend", "ray"))
    if plan.distributed_executor_backend != "uni":
        out.append(("distributed_executor_backend", plan.distributed_executor_backend))
    out.append(("dtype", plan.dtype))
    if plan.quantization:
        out.append(("quantization", plan.quantization))
    if plan.kv_cache_dtype != "auto":
        out.append(("kv_cache_dtype", plan.kv_cache_dtype))
    out += [("max_model_len", plan.max_model_len), ("gpu_memory_utilization", float(f"{plan.gpu_memory_utilization:g}"))]
    if plan.kv_cache_memory_bytes is not None:
        out.append(("kv_cache_memory_bytes", plan.kv_cache_memory_bytes))
    out += [("max_num_seqs", plan.max_num_seqs), ("max_num_batched_tokens", plan.max_num_batched_tokens),
            ("limit_mm_per_prompt", dict(plan.limit_mm_per_prompt))]
    mm_kwargs = dict(plan.mm_processor_kwargs)
    mm_kwargs.setdefault("max_pixels", plan.media_limits.max_pixels)
    out.append(("mm_processor_kwargs", mm_kwargs))
    if plan.limit_mm_per_prompt.get("video", plan.media_limits.max_videos) > 0:
        out.append(("media_io_kwargs", {"video": {"num_frames": plan.media_limits.max_video_frames}}))
    out.append(("mm_encoder_tp_mode", plan.mm_encoder_tp_mode))
    if plan.enforce_eager:
        out.append(("enforce_eager", True))
    if plan.enable_expert_parallel:
        out.append(("enable_expert_parallel", True))
    return out


def _argv(model: str, plan: Plan, host: str, port: int, launcher: list[str], passthrough: list[str]) -> list[str]:
    names = flag_names(plan.vllm_version)
    argv = [*launcher, "serve", model, names["served_model_name"], plan.served_model_name,
            names["host"], host, names["port"], str(port)]
    for field, value in vllm_settings(plan):
        if value is True:
            argv.append(names[field])
        else:
            argv += [names[field], _json(value) if isinstance(value, dict) else f"{value:g}" if isinstance(value, float) else str(value)]
    return argv + list(passthrough)


def _plan_vllm_env(plan: Plan) -> dict[str, str]:
    env = {"VLLM_WORKER_MULTIPROC_METHOD": "spawn", "VLLM_NO_USAGE_STATS": "1"}
    env.update(plan.env)
    if plan.pp_layer_partition:
        env["VLLM_PP_LAYER_PARTITION"] = ",".join(str(n) for n in plan.pp_layer_partition)
    if plan.model_runner == "v1":
        env["VLLM_USE_V2_MODEL_RUNNER"] = "0"
    return env


def build_launch(plan: Plan | None = None, cluster: ClusterSpec | None = None, *, passthrough: list[str] | None = None,
                 host: str = "127.0.0.1", port: int | None = None, launcher: list[str] | None = None,
                 state_root: str = DEFAULT_STATE_ROOT, container: bool = False,
                 ray_auth_mode: str = "token") -> LaunchSpec:
    """The launch spec for ``plan`` on ``cluster`` (either may be missing, not both).

    Without a plan every node of the cluster file is described (what `cluster up`/`join` start) and
    there is no `vllm serve`; with a plan only its nodes, with the plan's GPU ids. ``container`` renumbers
    the GPUs from 0 as a container that reserves them sees them. ``passthrough`` are extra `vllm serve`
    arguments, checked against the flags vLLM knows.
    """
    if plan is None and cluster is None:
        raise ConfigError("nothing to launch: neither a plan nor a cluster file.",
                          fix="vlmctl plan MODEL --cluster cluster.yaml -o plan.json")
    cluster_name = cluster.name if cluster else (plan.cluster_name if plan and plan.cluster_name else "vlmctl")
    ports = cluster.ports if cluster else None
    ray_port = ports.ray if ports else 6379
    dash_port = ports.dashboard if ports else 8265
    placements = _placements(plan, cluster)
    names = [p[0] for p in placements]
    head_name = cluster.head_node.name if cluster is not None and cluster.head_node.name in names else names[0]
    head_address = next((addr for name, addr, *_ in placements if name == head_name), None)
    multi = len(placements) > 1 or (plan is not None and plan.distributed_executor_backend == "ray")
    plan_env = _plan_vllm_env(plan) if plan else {}
    set_devices = cluster is not None or multi or container
    nodes = []
    for name, address, nic, ids in placements:
        sdir = state_dir(state_root, cluster_name, name)
        visible = ",".join(str(i) for i in (range(len(ids)) if container else ids))
        config_root = f"{sdir}/vllm-config"
        env = dict(plan.env) if plan else {}
        if set_devices:
            env["CUDA_VISIBLE_DEVICES"] = visible
        env.update({
            "VLLM_CONFIG_ROOT": config_root,
            "VLLM_WORKER_MULTIPROC_METHOD": "spawn",
            "RAY_USAGE_STATS_ENABLED": "0",
            # Ray >= 2.5x turns token auth on for a head wherever ~/.ray/auth_token exists (a local ray.init(),
            # e.g. vLLM's, writes one) but not for a joining worker: one explicit mode for every node.
            "RAY_AUTH_MODE": ray_auth_mode,
            **({"RAY_AUTH_TOKEN_PATH": token_path(state_root, cluster_name)} if ray_auth_mode == "token" else {}),
            **RAY_HEALTH_CHECK,
            "VLLM_NO_USAGE_STATS": "1",
            "VLMCTL_CLUSTER": cluster_name,
            "VLMCTL_NODE": name,
            "VLMCTL_STATE_DIR": sdir,
        })
        if plan is not None:
            for key in ("VLLM_PP_LAYER_PARTITION", "VLLM_USE_V2_MODEL_RUNNER"):
                if key in plan_env:
                    env[key] = plan_env[key]
        node = NodeLaunch(
            name=name, role="head" if name == head_name else "worker", address=address, nic=nic, gpu_ids=ids,
            visible_devices=visible, state_dir=sdir, vllm_config_root=config_root,
            env=_ordered(env),
            files={f"{config_root}/{NON_CARRY_OVER_FILE}": non_carry_over_json()},
            ray_port=ray_port, dashboard_port=dash_port, head_address=head_address)
        nodes.append(node)
    argv: list[str] = []
    serve_port = port if port is not None else (ports.api if ports else 8000)
    model = ""
    if plan is not None:
        checked = check_passthrough(passthrough or [], plan.vllm_version)
        model = plan.model_path or plan.model
        argv = _argv(model, plan, host, serve_port, list(launcher or ["vllm"]), checked)
    elif passthrough:
        raise ConfigError("vLLM arguments were given but there is no plan to launch.",
                          fix="vlmctl serve --plan plan.json -- <vLLM arguments>")
    return LaunchSpec(cluster=cluster_name, head=head_name, head_address=head_address, ray_port=ray_port,
                      multi_node=multi, nodes=nodes, vllm_argv=argv, vllm_env=plan_env, serve_host=host,
                      serve_port=serve_port, model=model)


def _placements(plan: Plan | None, cluster: ClusterSpec | None) -> list[tuple[str, str | None, str | None, list[int]]]:
    """(name, address, nic, GPU ids) per node: the plan's nodes and GPUs, else every node of the cluster file."""
    if plan is None:
        assert cluster is not None
        return [(n.name, n.address, n.nic, list(n.ids)) for n in cluster.nodes]
    out = []
    for placed in plan.nodes:
        address, nic = placed.address, placed.nic
        if cluster is not None:
            try:
                node = cluster.node(placed.name)
            except ConfigError:
                raise ConfigError(
                    f"the plan places GPUs on node '{placed.name}', which the cluster file does not have "
                    f"({', '.join(n.name for n in cluster.nodes)}).",
                    fix="plan again for this cluster file: vlmctl plan MODEL --cluster cluster.yaml -o plan.json") from None
            missing = sorted(set(placed.gpu_ids) - set(node.ids))
            if missing:
                raise ConfigError(
                    f"the plan uses GPU(s) {missing} of node '{placed.name}', which its gpu_ids {node.ids} do not list.",
                    fix="plan again for this cluster file: vlmctl plan MODEL --cluster cluster.yaml -o plan.json")
            address, nic = node.address or address, node.nic or nic
        out.append((placed.name, address, nic, list(placed.gpu_ids)))
    return out
