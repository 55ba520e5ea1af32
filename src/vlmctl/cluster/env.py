"""This node's NIC and address, read from the machine, and the environment the launch spec gives it.

What each variable is and where it goes is decided once, in ``vlmctl.launch`` (pure). Here only what
the node itself must tell: the NIC (the cluster file's ``nic``, which must exist and be up; else on the
head the interface holding the head's address; else the interface ``ip route get HEAD`` picks) and the
address (the cluster file's, else the source address of that route), plus writing the files the spec
lists (``VLLM_CONFIG_ROOT/ray_non_carry_over_env_vars.json``, which keeps vLLM's driver from copying
its per-node values onto the Ray workers of other nodes).
"""
from __future__ import annotations

import ipaddress
import json
import os
import shlex
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from vlmctl.clusterspec import RAY_REWRITTEN_ADDRESSES, ClusterSpec, NodeSpec
from vlmctl.errors import ClusterError, ConfigError, did_you_mean
from vlmctl.launch import NON_CARRY_OVER, NON_CARRY_OVER_FILE, LaunchSpec, NodeLaunch, build_launch
from vlmctl.plan.schema import Plan

__all__ = ["NON_CARRY_OVER", "NON_CARRY_OVER_FILE", "Interface", "NodeEnv", "driver_env", "interfaces", "node_env",
           "resolve", "route_to", "state_dir", "state_root", "this_node", "write_files", "write_non_carry_over"]


class Interface(BaseModel):
    """One network interface as ``ip -j addr`` shows it."""

    name: str
    up: bool
    addresses: list[str]


class NodeEnv(BaseModel):
    """Everything `vlmctl cluster up/join` needs on one node."""

    model_config = ConfigDict(extra="forbid")

    cluster: str
    node: str
    role: Literal["head", "worker"]
    head_address: str
    """Address of the head (Ray GCS host)."""
    ray_port: int
    dashboard_port: int
    nic: str
    """Interface NCCL and Gloo use on this node."""
    nic_source: str
    """Why that interface: 'cluster file', 'holds the head address' or 'route to HEAD'."""
    address: str
    """This node's address: VLLM_HOST_IP and Ray --node-ip-address."""
    state_dir: str
    """Per-cluster, per-node folder: Ray's --temp-dir and the vLLM config root live here."""
    env: dict[str, str]
    """Variables to export before `ray start` on this node."""
    launch: NodeLaunch
    """This node's part of the launch spec (its `ray start` line and the files to write)."""

    @property
    def head(self) -> str:
        """``host:port`` of the Ray GCS."""
        return f"{self.head_address}:{self.ray_port}"

    @property
    def vllm_config_root(self) -> str:
        return self.env["VLLM_CONFIG_ROOT"]

    def shell(self) -> str:
        """``export K=V`` lines, ready for ``eval "$(vlmctl cluster env)"``."""
        lines = [f"# vlmctl cluster env: node {self.node} ({self.role}), NIC {self.nic} ({self.nic_source})"]
        lines += [f"export {k}={shlex.quote(v)}" for k, v in self.env.items()]
        return "\n".join(lines) + "\n"


def state_root() -> Path:
    """Where per-node state lives (VLMCTL_STATE_ROOT, default /tmp/vlmctl); kept short for Ray's socket paths."""
    from vlmctl import envs

    return Path(envs.state_root())


def state_dir(cluster: str, node: str, root: str | Path | None = None) -> Path:
    """The folder one node of one cluster owns: two 'hosts' on one machine never share it."""
    from vlmctl.launch import state_dir as spec_state_dir

    return Path(spec_state_dir(str(root or state_root()), cluster, node))


def auth_mode() -> str:
    """Ray's authentication mode for every node: RAY_AUTH_MODE if the user set it, else token."""
    return os.environ.get("RAY_AUTH_MODE") or "token"


def launch_spec(spec: ClusterSpec, plan: Plan | None = None, *, root: str | Path | None = None, **kw) -> LaunchSpec:
    """The launch spec for this machine's state root and Ray auth mode (see vlmctl.launch.build_launch)."""
    return build_launch(plan, spec, state_root=str(root or state_root()), ray_auth_mode=auth_mode(), **kw)


def ensure_token(path: str | Path, cluster: str, create: bool = False) -> Path:
    """The Ray token file at ``path``, checked (a regular file others cannot write); with ``create`` made when
    missing (mode 600). The environment carries only its path (RAY_AUTH_TOKEN_PATH), never the token."""
    import secrets
    import stat

    path = Path(path)
    if not path.exists():
        if not create:
            raise ClusterError(
                f"this node has no copy of the Ray token of cluster '{cluster}' ({path}); Ray runs with token "
                "authentication, so a node without the token cannot join.",
                fix=f"copy it from the head: scp HEAD:{path} {path} && chmod 600 {path} (or export "
                    "RAY_AUTH_MODE=disabled on every node to run without authentication)")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        return path
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o022:
        raise ClusterError(f"the Ray token {path} is not a regular file only its owner can write.",
                           fix=f"remove {path}; `vlmctl cluster up` on the head makes a new one")
    if info.st_mode & 0o077 and info.st_uid == os.getuid():
        os.chmod(path, 0o600)
    return path


def _ip_json(*args: str) -> list[dict]:
    try:
        out = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, timeout=10)
    except FileNotFoundError:
        raise ClusterError("the 'ip' command (iproute2) is not installed.",
                           fix="apt-get install iproute2, or set 'nic' for this node in the cluster file") from None
    if out.returncode != 0:
        raise ClusterError(f"'ip {' '.join(args)}' failed: {out.stderr.strip() or out.stdout.strip()}.",
                           fix="check the address and that this node has a route to it")
    return json.loads(out.stdout or "[]")


def interfaces() -> dict[str, Interface]:
    """This host's interfaces (in this network namespace), with their IPv4 addresses (``ip``, else psutil)."""
    if not shutil.which("ip"):
        return _psutil_interfaces()
    result = {}
    for link in _ip_json("-4", "addr", "show"):
        flags = link.get("flags", [])
        up = "UP" in flags and (link.get("operstate") in ("UP", "UNKNOWN") or "LOWER_UP" in flags)
        addrs = [a["local"] for a in link.get("addr_info", []) if a.get("family", "inet") == "inet"]
        result[link["ifname"]] = Interface(name=link["ifname"], up=up, addresses=addrs)
    for name in _all_link_names():
        result.setdefault(name, Interface(name=name, up=False, addresses=[]))
    return result


def _psutil_interfaces() -> dict[str, Interface]:
    """Interfaces where iproute2 is missing (slim containers, some GPU images)."""
    try:
        import psutil
    except ImportError:
        raise ClusterError("neither the 'ip' command (iproute2) nor psutil is installed, so the NICs cannot be read.",
                           fix="apt-get install iproute2, or pip install 'vlmctl[cluster]'") from None
    stats = psutil.net_if_stats()
    result = {}
    for name, addrs in psutil.net_if_addrs().items():
        up = bool(stats.get(name) and stats[name].isup)
        result[name] = Interface(name=name, up=up, addresses=[a.address for a in addrs if a.family == socket.AF_INET])
    for name in _all_link_names():
        result.setdefault(name, Interface(name=name, up=False, addresses=[]))
    return result


def _all_link_names() -> list[str]:
    try:
        return sorted(os.listdir("/sys/class/net"))
    except OSError:
        return []


def route_to(address: str) -> tuple[str, str]:
    """``(interface, source address)`` the kernel uses to reach ``address`` (``ip route get``, else a UDP probe)."""
    if not shutil.which("ip"):
        return _probe_route(address)
    routes = _ip_json("-4", "route", "get", address)
    if not routes:
        raise ClusterError(f"no route from this node to {address}.", fix="check the head address and this node's network")
    r = routes[0]
    src = r.get("prefsrc")
    if not src:
        iface = interfaces().get(r["dev"])
        src = iface.addresses[0] if iface and iface.addresses else ""
    return r["dev"], src


def _probe_route(address: str) -> tuple[str, str]:
    """What ``ip route get`` would say, from a connected UDP socket (sends nothing)."""
    ifaces = interfaces()
    if ipaddress.IPv4Address(address).is_loopback or any(address in i.addresses for i in ifaces.values()):
        return "lo", address  # a local address: the kernel routes it over lo
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((address, 9))
            src = probe.getsockname()[0]
        except OSError:
            src = ""
    dev = next((n for n, i in ifaces.items() if src and src in i.addresses), None)
    if dev is None:
        raise ClusterError(f"no route from this node to {address}.", fix="check the head address and this node's network")
    return dev, src


def resolve(host: str) -> str:
    """An IPv4 address for ``host`` (already an address: returned as is)."""
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    try:
        return socket.getaddrinfo(host, None, socket.AF_INET)[0][4][0]
    except OSError:
        raise ConfigError(f"cannot resolve '{host}' to an IPv4 address.",
                          fix="use the node's IP address in the cluster file (address: 192.168.1.10)") from None


def this_node(spec: ClusterSpec, name: str | None = None) -> NodeSpec:
    """The node this command runs on: ``--node NAME``, else the node whose address is local here."""
    if name:
        return spec.node(name)
    local = {a for i in interfaces().values() for a in i.addresses}
    matches = []
    for node in spec.nodes:
        if node.address:
            try:
                ip = resolve(node.address)
                if ip in local or ipaddress.IPv4Address(ip).is_loopback:
                    matches.append(node)
            except ConfigError:
                continue
    if len(matches) == 1:
        return matches[0]
    names = ", ".join(n.name for n in spec.nodes)
    if not matches:
        raise ConfigError(f"none of the cluster file's node addresses is on this machine (local: {', '.join(sorted(local)) or 'none'}).",
                          fix=f"pass --node NAME (one of: {names}) or fix the nodes' 'address'")
    raise ConfigError(f"several nodes' addresses are on this machine ({', '.join(n.name for n in matches)}).",
                      fix=f"pass --node NAME (one of: {', '.join(n.name for n in matches)})")


def _check_nic(nic: str, ifaces: dict[str, Interface], node: str) -> Interface:
    iface = ifaces.get(nic)
    if iface is None:
        hint = did_you_mean(nic, [i for i in ifaces if i != "lo"])
        raise ConfigError(f"node '{node}': interface '{nic}' does not exist here.{hint} "
                          f"Interfaces: {', '.join(sorted(ifaces))}.",
                          fix=f"set 'nic' of node '{node}' in the cluster file to one of those, or drop it to use the route to the head")
    if not iface.up:
        raise ConfigError(f"node '{node}': interface '{nic}' is down.",
                          fix=f"bring it up (ip link set {nic} up) or choose another 'nic' for node '{node}'")
    if not iface.addresses:
        raise ConfigError(f"node '{node}': interface '{nic}' has no IPv4 address.",
                          fix=f"give {nic} an address or choose another 'nic' for node '{node}'")
    return iface


def _nic_holding(ip: str | None, ifaces: dict[str, Interface], node: str) -> Interface | None:
    """The (checked) interface that holds ``ip``; any 127.x.y.z is on ``lo`` (Linux routes all of 127/8 there)."""
    holder = next((i for i in ifaces.values() if ip and ip in i.addresses), None)
    if holder is None and ip and ipaddress.IPv4Address(ip).is_loopback and "lo" in ifaces:
        holder = ifaces["lo"].model_copy(update={"addresses": [*ifaces["lo"].addresses, ip]})
    if holder is not None:
        _check_nic(holder.name, ifaces, node)
    return holder


def _check_ray_address(ip: str | None, node: str) -> None:
    if ip in RAY_REWRITTEN_ADDRESSES:
        raise ConfigError(f"node '{node}': address {ip} would not be Ray's node address: `ray start` replaces "
                          f"{ip} with this machine's network address (ray/_private/services.py resolve_ip_for_localhost), "
                          "so Ray and VLLM_HOST_IP would disagree.",
                          fix="give nodes on one machine other loopback addresses (127.0.0.2, 127.0.0.3, …) "
                              "or use the machine's network address")


def node_env(spec: ClusterSpec, node_name: str | None = None, *, head_address: str | None = None,
             plan: Plan | None = None, cuda_visible_devices: str | None = None,
             root: str | Path | None = None, launch: LaunchSpec | None = None) -> NodeEnv:
    """This node's environment: the launch spec's, with the NIC and address read from this machine.

    ``head_address`` overrides the head's address from the cluster file (``cluster join HEAD``);
    with ``plan`` the node gets the plan's GPUs and variables (and must be one of the plan's nodes);
    ``cuda_visible_devices`` overrides the GPU ids (containers renumber GPUs from 0).
    """
    node = this_node(spec, node_name)
    launch = launch or launch_spec(spec, plan, root=root)
    node_launch = launch.node(node.name)
    head = spec.head_node
    role: Literal["head", "worker"] = "head" if node.name == head.name else "worker"
    head_host = head_address or head.address
    if not head_host:
        raise ConfigError(f"the head node '{head.name}' has no 'address' in the cluster file.",
                          fix=f"add 'address: <IP>' to node '{head.name}', or pass the head: vlmctl cluster join HEAD_IP")
    head_ip = resolve(head_host)
    ifaces = interfaces()
    own_ip = resolve(node.address) if node.address else None

    if node.nic:
        iface = _check_nic(node.nic, ifaces, node.name)
        source = "cluster file"
        if own_ip and own_ip not in iface.addresses:
            raise ConfigError(f"node '{node.name}': address {own_ip} is not on its nic '{node.nic}' ({', '.join(iface.addresses)}).",
                              fix=f"make 'address' and 'nic' of node '{node.name}' agree")
        address = own_ip or iface.addresses[0]
    elif role == "head":
        iface = _nic_holding(head_ip, ifaces, node.name)
        if iface is None:
            raise ConfigError(f"the head address {head_ip} (node '{node.name}') is not on this machine.",
                              fix="run `vlmctl cluster up` on the head, or pass --node with this machine's name")
        source, address = "holds the head address", head_ip
    else:
        dev, src = route_to(head_ip)
        if dev == "lo":
            iface = _nic_holding(own_ip, ifaces, node.name)
            if iface is None:
                raise ConfigError(f"the head address {head_ip} is local to this machine, so node '{node.name}' "
                                  f"(address {own_ip or 'unset'}) cannot be a worker here.",
                                  fix="run `vlmctl cluster up` for the head, or pass --node with this machine's name "
                                      "(nodes on one machine need their own local addresses, e.g. 127.0.0.2 and 127.0.0.3)")
            source = f"holds its address; shares this machine with the head {head_ip}"
        else:
            iface, source = _check_nic(dev, ifaces, node.name), f"route to {head_ip}"
        if own_ip and own_ip not in iface.addresses:
            raise ConfigError(f"node '{node.name}': its address {own_ip} is not on {dev}, the interface that routes to the head "
                              f"({', '.join(iface.addresses)}).",
                              fix=f"set 'address' of node '{node.name}' to {src}, or set its 'nic'")
        address = own_ip or src

    _check_ray_address(address, node.name)
    env = node_launch.env_with(nic=iface.name, address=address)
    if cuda_visible_devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = cuda_visible_devices
    return NodeEnv(cluster=spec.name, node=node.name, role=role, head_address=head_ip, ray_port=spec.ports.ray,
                   dashboard_port=spec.ports.dashboard, nic=iface.name, nic_source=source, address=address,
                   state_dir=node_launch.state_dir, env=env, launch=node_launch)


def write_non_carry_over(config_root: str | Path) -> Path:
    """Write vLLM's ``ray_non_carry_over_env_vars.json`` under ``config_root``, keeping entries already there."""
    from vlmctl.launch import non_carry_over_json

    path = Path(config_root) / NON_CARRY_OVER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    existing: list[str] = []
    if path.exists():
        try:
            loaded = json.loads(path.read_text())
            existing = [str(v) for v in loaded] if isinstance(loaded, list) else []
        except (OSError, ValueError):
            existing = []
    path.write_text(non_carry_over_json(existing))
    return path


def write_files(node: NodeLaunch) -> list[Path]:
    """Write the files the launch spec lists for ``node`` (the non-carry-over file keeps entries already there)."""
    written = []
    for name in node.files:
        path = Path(name)
        if path.name == NON_CARRY_OVER_FILE:
            written.append(write_non_carry_over(path.parent))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(node.files[name])
            written.append(path)
    return written


def driver_env(spec: ClusterSpec, node_name: str | None = None, *, plan: Plan | None = None,
               launch: LaunchSpec | None = None, api_key: str | None = None, write_file: bool = True) -> dict[str, str]:
    """The environment of ``vllm serve`` on the head, with this machine's address for the head, and the
    head's files (the non-carry-over list under its VLLM_CONFIG_ROOT) written unless ``write_file`` is False
    (``serve --dry-run``). The node defaults to the head: the driver runs there (also when several nodes share
    this machine)."""
    launch = launch or launch_spec(spec, plan)
    ne = node_env(spec, node_name or launch.head, launch=launch)
    if write_file:
        write_files(ne.launch)
    return launch.driver_env(address=ne.address, head_address=ne.head_address, api_key=api_key)
