"""`vlmctl cluster env|up|join|status|verify|down`: Ray across machines, one command per node."""
from __future__ import annotations

import contextlib

import click

from vlmctl.cli._output import console, emit_json, next_steps
from vlmctl.errors import ClusterError, ConfigError


def _common(fn):
    fn = click.option("--node", "node_name", metavar="NAME",
                      help="This machine's node in the cluster file (default: the node whose address is local).")(fn)
    fn = click.option("--cluster", "cluster_file", default="cluster.yaml", show_default=True, metavar="FILE",
                      help="The cluster file (YAML).")(fn)
    return fn


def _plan_option(fn):
    return click.option("--plan", "plan_file", metavar="FILE",
                        help="A plan from `vlmctl plan -o`: this node's GPUs and variables come from it.")(fn)


def _devices_option(fn):
    return click.option("--cuda-visible-devices", metavar="IDS",
                        help="Override CUDA_VISIBLE_DEVICES (containers renumber their GPUs from 0).")(fn)


def _plan(path: str | None):
    """The Plan in a `vlmctl plan -o` file (None without a path)."""
    if not path:
        return None
    from vlmctl.plan.files import read_plan

    return read_plan(path)


def _split_head(head: str | None) -> tuple[str | None, int | None]:
    if not head:
        return None, None
    host, sep, port = head.rpartition(":")
    if not sep:
        return head, None
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(f"HEAD '{head}': port '{port}' is not a port number.", fix="write HEAD as ADDRESS or ADDRESS:PORT, e.g. 10.0.0.1:6379")
    return host, int(port)


def _load(cluster_file: str, node_name: str | None, *, head: str | None = None, plan: str | None = None,
          devices: str | None = None):
    from vlmctl.cluster.env import node_env
    from vlmctl.clusterspec import load_cluster

    spec = load_cluster(cluster_file)
    host, port = _split_head(head)
    ne = node_env(spec, node_name, head_address=host, plan=_plan(plan), cuda_visible_devices=devices)
    if port is not None:
        ne = ne.model_copy(update={"ray_port": port})
    return spec, ne


def _spinner(err, text: str, block: bool):
    """A spinner, except before ``--block`` replaces this process with ``ray start``."""
    return contextlib.nullcontext() if block else err.status(text)


def _progress():
    err = console(stderr=True)
    return err, (lambda msg: err.print(f"[dim]•[/dim] {msg}"))


@click.group("cluster")
def cli() -> None:
    """Bring Ray up across machines with the right per-node environment, verify every node, tear it down.

    \b
    Examples:
      vlmctl cluster env --cluster cluster.yaml            # what this node will export
      vlmctl cluster up --cluster cluster.yaml             # on the head
      vlmctl cluster join 192.168.1.10 --cluster cluster.yaml   # on each worker
      vlmctl cluster status --cluster cluster.yaml
      vlmctl cluster verify --cluster cluster.yaml
      vlmctl cluster down --cluster cluster.yaml           # on the head: the whole cluster
      vlmctl cluster schema > cluster.schema.json          # JSON Schema of the cluster file
    """


@cli.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema of the cluster file (for editors and validators).

    \b
    Examples:
      vlmctl cluster schema > cluster.schema.json
      # first line of cluster.yaml, for editors with the YAML language server:
      # yaml-language-server: $schema=./cluster.schema.json
    """
    from vlmctl.clusterspec import json_schema

    emit_json(json_schema())


@cli.command("env")
@_common
@click.option("--head", metavar="ADDRESS", help="The head's address (default: the head node's address in the cluster file).")
@click.option("--plan", "plan_file", metavar="FILE", help="A plan from `vlmctl plan -o`: this node's GPUs and variables come from it.")
@_devices_option
@click.option("--json", "as_json", is_flag=True, help="Print the node environment as JSON.")
def env_cmd(cluster_file, node_name, head, plan_file, cuda_visible_devices, as_json) -> None:
    """Print this node's environment: NIC, address and the variables Ray and vLLM need.

    \b
    Examples:
      vlmctl cluster env --cluster cluster.yaml
      eval "$(vlmctl cluster env --cluster cluster.yaml)"
      vlmctl cluster env --cluster cluster.yaml --node gpu-b --plan plan.json --json
    """
    _, ne = _load(cluster_file, node_name, head=head, plan=plan_file, devices=cuda_visible_devices)
    if as_json:
        emit_json(ne.model_dump(mode="json") | {"non_carry_over": _non_carry_over()})
        return
    click.echo(ne.shell(), nl=False)
    err = console(stderr=True)
    err.print(f"# NIC {ne.nic} ({ne.nic_source}), address {ne.address}; vLLM will not copy "
              f"{', '.join(_non_carry_over()[:3])}, … from the driver (written by cluster up/join)", markup=False)
    cmd = "vlmctl cluster up" if ne.role == "head" else f"vlmctl cluster join {ne.head_address}"
    next_steps(err, f"{cmd} --cluster {cluster_file}")


def _non_carry_over() -> list[str]:
    from vlmctl.cluster.env import NON_CARRY_OVER

    return list(NON_CARRY_OVER)


@cli.command("up")
@_common
@click.option("--dashboard-host", metavar="HOST", help="Bind Ray's dashboard here (default: this node's address, not 0.0.0.0).")
@click.option("--no-dashboard", is_flag=True, help="Do not start Ray's dashboard.")
@_plan_option
@_devices_option
@click.option("--block", is_flag=True, help="Keep Ray in the foreground (containers).")
def up_cmd(cluster_file, node_name, dashboard_host, no_dashboard, plan_file, cuda_visible_devices, block) -> None:
    """Start the Ray head on this node with its per-node environment.

    \b
    Examples:
      vlmctl cluster up --cluster cluster.yaml
      vlmctl cluster up --cluster cluster.yaml --node gpu-a --dashboard-host 127.0.0.1
      vlmctl cluster up --cluster cluster.yaml --plan plan.json   # only the plan's GPUs of this node
    """
    from vlmctl.cluster import ray_node

    _, ne = _load(cluster_file, node_name, plan=plan_file, devices=cuda_visible_devices)
    err, progress = _progress()
    with _spinner(err, f"starting Ray head on {ne.address}…", block):
        started = ray_node.up(ne, dashboard_host=dashboard_host, dashboard=not no_dashboard, block=block, progress=progress)
    con = console()
    if not started:
        con.print(f"Ray head of cluster '{ne.cluster}' is already up on {ne.head} (node {ne.node}).")
    else:
        dash = "" if no_dashboard else f", dashboard http://{dashboard_host or ne.address}:{ne.dashboard_port}"
        con.print(f"Ray head up: {ne.head} (node {ne.node}, NIC {ne.nic}{dash}); state in {ne.state_dir}")
    token = ne.env.get("RAY_AUTH_TOKEN_PATH") if ne.env.get("RAY_AUTH_MODE") == "token" else None
    copy = [f"scp {token} WORKER:{token}   # Ray's auth token, to each worker (mode 600)"] if token else []
    next_steps(con, *copy, f"vlmctl cluster join {ne.head_address} --cluster {cluster_file}   # on each worker",
               f"vlmctl cluster status --cluster {cluster_file}")


@cli.command("join")
@click.argument("head", required=False, metavar="HEAD[:PORT]")
@_common
@_plan_option
@_devices_option
@click.option("--block", is_flag=True, help="Keep Ray in the foreground (containers).")
def join_cmd(head, cluster_file, node_name, plan_file, cuda_visible_devices, block) -> None:
    """Join this worker to the head; gives up within 20 s with what to check.

    \b
    Examples:
      vlmctl cluster join 192.168.1.10 --cluster cluster.yaml
      vlmctl cluster join 192.168.1.10:6379 --cluster cluster.yaml --node gpu-b
    """
    from vlmctl.cluster import ray_node

    _, ne = _load(cluster_file, node_name, head=head, plan=plan_file, devices=cuda_visible_devices)
    err, progress = _progress()
    with _spinner(err, f"joining {ne.head}…", block):
        joined = ray_node.join(ne, block=block, progress=progress)
    con = console()
    if not joined:
        con.print(f"node {ne.node} is already up in cluster '{ne.cluster}' (head {ne.head}).")
    else:
        con.print(f"node {ne.node} joined {ne.head} as {ne.address} (NIC {ne.nic}); state in {ne.state_dir}")
    next_steps(con, f"vlmctl cluster status --cluster {cluster_file}", f"vlmctl cluster verify --cluster {cluster_file}")


@cli.command("status")
@_common
@click.option("--json", "as_json", is_flag=True, help="Print the nodes as JSON.")
def status_cmd(cluster_file, node_name, as_json) -> None:
    """Show every node: address, NIC, GPUs (type, memory, in use), alive or dead.

    \b
    Examples:
      vlmctl cluster status --cluster cluster.yaml
      vlmctl cluster status --cluster cluster.yaml --json
    """
    from vlmctl.cluster.status import cluster_status

    _, ne = _load(cluster_file, node_name)
    with console(stderr=True).status("asking the head…"):
        st = cluster_status(ne)
    if as_json:
        emit_json(st.model_dump(mode="json") | {"alive": st.alive})
        return
    from rich.table import Table

    table = Table(title=f"Cluster '{st.cluster}' (head {st.head}): {st.alive}/{len(st.nodes)} nodes alive")
    for col in ("node", "role", "address", "NIC", "state", "GPUs"):
        table.add_column(col)
    for n in st.nodes:
        gpus = "; ".join(f"{g.index}: {g.name} {g.used_gib:.1f}/{g.total_gib:.1f} GiB" for g in n.gpus) or (n.gpu_note or "none")
        table.add_row(n.name, n.role, n.address, n.nic or "?", "alive" if n.alive else "DEAD", gpus)
    con = console()
    con.print(table)
    for folder, count in st.reaped.items():
        con.print(f"stopped {count} process(es) that a dead raylet left in {folder}", markup=False)
    next_steps(con, f"vlmctl cluster verify --cluster {cluster_file}")


@cli.command("verify")
@_common
@click.option("--plan", "plan_file", metavar="FILE",
              help="A plan from `vlmctl plan -o`: also check every node runs the vLLM release it was made for.")
@click.option("--json", "as_json", is_flag=True, help="Print probes and findings as JSON.")
def verify_cmd(cluster_file, node_name, plan_file, as_json) -> None:
    """Probe every node (GPUs, CUDA arch, versions, model fingerprint, hostname, shm, disk) and compare.

    Exits 4 when a finding would stop a launch.

    \b
    Examples:
      vlmctl cluster verify --cluster cluster.yaml
      vlmctl cluster verify --cluster cluster.yaml --json
      vlmctl cluster verify --cluster cluster.yaml --plan plan.json
    """
    from vlmctl.cluster.verify import verify_cluster

    spec, ne = _load(cluster_file, node_name)
    plan = _plan(plan_file)
    with console(stderr=True).status("probing every node…"):
        result = verify_cluster(ne, spec, plan=plan)
    errors = [f for f in result.findings if f.severity == "error"]
    if as_json:
        emit_json(result)
    else:
        _render_verify(result)
    if errors:
        raise ClusterError(f"{len(errors)} finding(s) would stop a launch: {', '.join(sorted({f.id for f in errors}))}.",
                           fix="apply each finding's fix, then run vlmctl cluster verify again")
    if not as_json:
        next_steps(console(), "vlmctl plan MODEL --cluster " + cluster_file + " -o plan.json", "vlmctl serve --plan plan.json")


def _render_verify(result) -> None:
    from rich.table import Table

    con = console()
    table = Table(title="Nodes")
    for col in ("node", "address", "GPUs (CC)", "torch CUDA arch", "model", "/dev/shm GiB", "free GiB"):
        table.add_column(col)
    for p in result.probes:
        gpus = ", ".join(f"{g.index}: {g.name} ({g.compute_capability})" for g in p.gpus) or "none"
        model = (p.model.fingerprint or "missing") if p.model.path else "-"
        table.add_row(p.node, p.address, gpus, " ".join(p.torch_arch_list) or "-", model,
                      f"{p.shm_gib}" if p.shm_gib is not None else "?", f"{p.disk_free_gib}" if p.disk_free_gib is not None else "?")
    con.print(table)
    keys = ("python", "ray", "vllm", "torch", "transformers", "nccl")
    versions = Table(title="Versions (must match across nodes)")
    versions.add_column("node")
    for k in keys:
        versions.add_column(k)
    for p in result.probes:
        versions.add_row(p.node, *(p.versions.get(k) or "-" for k in keys))
    con.print(versions)
    if not result.findings:
        con.print("No findings: every node matches.")
    for f in result.findings:
        colour = {"error": "red", "warning": "yellow"}.get(f.severity, "cyan")
        con.print(f"[{colour}]{f.severity}[/{colour}] [bold]{f.id}[/bold]: {f.message}")
        if f.fix:
            con.print(f"    fix: {f.fix}", markup=False)


@cli.command("down")
@_common
def down_cmd(cluster_file, node_name) -> None:
    """Stop this project's Ray on this node; on the head, on every node of the cluster.

    Only processes under this cluster's per-node state folder are stopped; other Ray instances on
    the machine are left alone (unlike `ray stop`).

    \b
    Examples:
      vlmctl cluster down --cluster cluster.yaml
      vlmctl cluster down --cluster cluster.yaml --node gpu-b
    """
    from vlmctl.cluster import ray_node

    _, ne = _load(cluster_file, node_name)
    err, progress = _progress()
    with err.status("stopping Ray…"):
        stopped = ray_node.down(ne, progress=progress)
    con = console()
    for name, count in stopped.items():
        what = "stop requested" if count < 0 else f"{count} process(es) stopped"
        con.print(f"node {name}: {what}")
    cmd = "vlmctl cluster up" if ne.role == "head" else f"vlmctl cluster join {ne.head_address}"
    next_steps(con, f"{cmd} --cluster {cluster_file}   # to start again")
