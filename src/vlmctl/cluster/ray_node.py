"""Start, join, stop and inspect this project's Ray node, one per (cluster, node).

Every Ray process of a node runs under that node's own ``--temp-dir`` (``NodeEnv.state_dir``),
so two "hosts" on one machine never share sockets or session folders, and ``down`` stops only
the processes that belong to this cluster's node (``ray stop`` would stop every Ray on the host).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from vlmctl.cluster.env import NodeEnv, write_files
from vlmctl.errors import ClusterError, require

#: Seconds `join` may take in all, connection check and `ray start` included.
JOIN_TIMEOUT_S = 14.0
Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def ray_executable() -> str:
    """The ``ray`` CLI of this Python environment."""
    beside = Path(sys.executable).with_name("ray")
    if beside.exists():
        return str(beside)
    found = shutil.which("ray")
    if not found:
        raise ClusterError("the 'ray' command is not installed.", fix="pip install 'vlmctl[cluster]'")
    return found


def _is_ray(argv: list[str]) -> bool:
    """A Ray daemon, agent, worker or the `ray` CLI (not, say, `tail -f` on one of its logs)."""
    cmd = " ".join(argv)
    first = os.path.basename(argv[0]) if argv else ""
    return first == "ray" or "/ray/" in cmd or " -m ray." in cmd or cmd.startswith("ray::") or cmd.startswith("ray-")


def node_processes(state_dir: str | Path) -> list:
    """Live processes of the Ray node rooted at ``state_dir`` (daemons, agents and task workers)."""
    psutil = require("psutil", "cluster")
    marker = str(Path(state_dir)) + "/"
    roots = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            argv = proc.info["cmdline"] or []
            cmd = " ".join(argv)
            if (marker in cmd or cmd.endswith(str(Path(state_dir)))) and _is_ray(argv):
                roots.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    found = {p.pid: p for p in roots}
    groups = set()
    for proc in roots:
        try:
            groups.add(os.getpgid(proc.pid))
        except OSError:
            continue
    groups.discard(os.getpgid(0))
    if groups:
        # Ray's client server and a few helpers do not name the temp dir; they share `ray start`'s group.
        for proc in psutil.process_iter(["pid", "cmdline"]):
            try:
                if proc.pid not in found and os.getpgid(proc.pid) in groups and _is_ray(proc.info["cmdline"] or []):
                    found[proc.pid] = proc
            except (OSError, psutil.NoSuchProcess, psutil.AccessDenied):
                continue
    for proc in list(found.values()):
        try:
            for child in proc.children(recursive=True):
                found.setdefault(child.pid, child)
        except psutil.NoSuchProcess:
            continue
    alive = []
    for proc in found.values():
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and proc.pid != os.getpid():
                alive.append(proc)
        except psutil.NoSuchProcess:
            continue
    return alive


def _raylet_running(state_dir: str | Path) -> bool:
    for proc in node_processes(state_dir):
        try:
            if "raylet" in proc.name() or any("raylet" in part for part in proc.cmdline()[:1]):
                return True
        except Exception:  # noqa: BLE001 - vanished meanwhile
            continue
    return False


def is_up(ne: NodeEnv) -> bool:
    """True when this node's raylet is running."""
    return _raylet_running(ne.state_dir)


def _env_for(ne: NodeEnv) -> dict[str, str]:
    env = dict(os.environ)
    env.update(ne.env)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def start_argv(ne: NodeEnv, *, dashboard_host: str | None = None, dashboard: bool = True, block: bool = False) -> list[str]:
    """The ``ray start`` command line for this node (the launch spec's, with this machine's NIC and address)."""
    return ne.launch.ray_start(nic=ne.nic, address=ne.address, ray=ray_executable(), head_address=ne.head_address,
                               ray_port=ne.ray_port, dashboard=dashboard, dashboard_host=dashboard_host, block=block)


def _prepare(ne: NodeEnv, create_token: bool = False) -> Path:
    if ne.env.get("RAY_AUTH_MODE") == "token" and ne.env.get("RAY_AUTH_TOKEN_PATH"):
        from vlmctl.cluster.env import ensure_token

        ensure_token(ne.env["RAY_AUTH_TOKEN_PATH"], ne.cluster, create=create_token)
    Path(ne.state_dir).mkdir(parents=True, exist_ok=True)
    write_files(ne.launch)
    (Path(ne.state_dir) / "env.sh").write_text(ne.shell())
    return Path(ne.state_dir) / "ray-start.log"


def _tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:] if line.strip())


def _spawn_start(ne: NodeEnv, argv: list[str], log: Path) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(argv, env=_env_for(ne), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def _finish_start(proc: subprocess.Popen, timeout: float) -> int | None:
    """Wait for ``ray start``; on timeout kill its process group and return None."""
    try:
        return proc.wait(timeout=max(timeout, 1.0))
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return None


def _run_start(ne: NodeEnv, argv: list[str], timeout: float, log: Path) -> tuple[int | None, float]:
    """Run ``ray start`` in its own process group; on timeout kill the group. Returns (rc or None, seconds)."""
    t0 = time.monotonic()
    rc = _finish_start(_spawn_start(ne, argv, log), timeout)
    return rc, time.monotonic() - t0


def up(ne: NodeEnv, *, dashboard_host: str | None = None, dashboard: bool = True, block: bool = False,
       timeout: float = 120.0, progress: Progress = _quiet) -> bool:
    """Start the Ray head on this node. Returns False when it was already up."""
    if ne.role != "head":
        raise ClusterError(f"node '{ne.node}' is a worker; the head is {ne.head_address}.",
                           fix=f"run on this node: vlmctl cluster join {ne.head_address}")
    if is_up(ne):
        return False
    check_gpu_ids(ne)
    _clear_leftovers(ne, progress)
    _check_port_free(ne.address, ne.ray_port)
    log = _prepare(ne, create_token=True)
    argv = start_argv(ne, dashboard_host=dashboard_host, dashboard=dashboard, block=block)
    if block:
        os.execve(argv[0], argv, _env_for(ne))
    progress(f"starting the Ray head on {ne.address}:{ne.ray_port} (NIC {ne.nic})")
    rc, took = _run_start(ne, argv, timeout, log)
    if rc != 0:
        stop_local(ne.state_dir)
        why = "timed out" if rc is None else f"exited with {rc}"
        raise ClusterError(f"`ray start --head` on {ne.address}:{ne.ray_port} {why}: {_tail(log)}",
                           fix=f"read {log}; check that port {ne.ray_port} is free and {ne.address} is this node's address")
    progress(f"Ray head up in {took:.1f} s")
    return True


def reap_dead_local_nodes(ne: NodeEnv) -> dict[str, int]:
    """Stop the leftovers of every node of this cluster on this machine whose raylet is gone.

    A killed raylet leaves its log monitor and agents running; they hold the node's folder and ports.
    Returns processes stopped per state folder.
    """
    reaped = {}
    for folder in sorted(Path(ne.state_dir).parent.glob(f"{ne.cluster}-*")):
        if folder.is_dir() and not _raylet_running(folder):
            left = node_processes(folder)
            if left:
                reaped[folder.name] = stop_local(folder, timeout=2.0)
    return reaped


def check_gpu_ids(ne: NodeEnv) -> None:
    """Refuse GPU ids this machine does not have (NVML's count); nothing to check where NVML sees no GPU."""
    from vlmctl.cluster.probe import probe_gpus
    from vlmctl.errors import ConfigError

    ids = list(ne.launch.gpu_ids)
    gpus, _ = probe_gpus()
    if gpus and ids and max(ids) >= len(gpus):
        raise ConfigError(
            f"node '{ne.node}' lists GPU ids {ids}, but this machine has {len(gpus)} GPU(s), ids 0-{len(gpus) - 1}.",
            fix=f"set gpu_ids of node '{ne.node}' in the cluster file to ids nvidia-smi -L shows",
        )


def _clear_leftovers(ne: NodeEnv, progress: Progress = _quiet) -> int:
    """Stop what a dead raylet left behind on this node (log monitor, dashboard agent, workers); how many."""
    left = node_processes(ne.state_dir)
    if not left:
        return 0
    progress(f"stopping {len(left)} process(es) a stopped raylet of node '{ne.node}' left behind")
    return stop_local(ne.state_dir, timeout=2.0)


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        if s.connect_ex((host, port)) == 0:
            raise ClusterError(f"something already listens on {host}:{port} (not this cluster's Ray head).",
                               fix="stop it, or set ports.ray in the cluster file to a free port")


def _probe(host: str, port: int, timeout: float) -> None:
    """Fail fast when nothing accepts TCP on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except ConnectionRefusedError:
        raise ClusterError(f"nothing listens on the head {host}:{port} (connection refused).",
                           fix=f"check that `vlmctl cluster up` ran on {host} and that {port} is its Ray port (ports.ray)") from None
    except (socket.timeout, TimeoutError):
        raise ClusterError(f"the head {host}:{port} did not answer within {timeout:.0f} s.",
                           fix=f"check the head address {host}, this node's route to it (`ip route get {host}`) and firewalls") from None
    except OSError as exc:
        raise ClusterError(f"cannot reach the head {host}:{port}: {exc.strerror or exc}.",
                           fix=f"check the head address {host} and this node's route to it (`ip route get {host}`)") from None


_GCS_METADATA = """
import json, sys
import ray._common.usage.usage_lib as usage_lib
from ray._raylet import GcsClient
try:  # Ray >= 2.5x: a head started where ~/.ray/auth_token exists wants the token (as `ray start` sends it)
    from ray._private.authentication.authentication_token_setup import maybe_enable_token_auth_if_token_available
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
except ImportError:
    pass
print(json.dumps(usage_lib.get_cluster_metadata(GcsClient(address=sys.argv[1]))))
"""


def _metadata_check(ne: NodeEnv) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _GCS_METADATA, ne.head], env=_env_for(ne), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def head_metadata(ne: NodeEnv, timeout: float, check: subprocess.Popen | None = None) -> dict:
    """Ask the head's GCS for its Ray and Python versions; ClusterError when no Ray head answers in time."""
    check = check or _metadata_check(ne)
    try:
        stdout, stderr = check.communicate(timeout=max(timeout, 1.0))
        ok = check.returncode == 0
    except subprocess.TimeoutExpired:
        _kill_group(check)
        stdout, stderr, ok = "", "", False
    if not ok and "auth" in (stderr or "").lower():
        where = ne.env.get("RAY_AUTH_TOKEN_PATH") or "~/.ray/auth_token"
        raise ClusterError(f"the head {ne.head} refused this node's Ray authentication token: {_last_line(stderr)}",
                           fix=f"copy the head's {where} to this node ({where}, mode 600), and use the same "
                               "RAY_AUTH_MODE on every node")
    if not ok:
        raise ClusterError(f"{ne.head} accepts connections but no Ray head answered within {timeout:.0f} s.",
                           fix=f"check that {ne.ray_port} is the head's Ray port (ports.ray in the cluster file, "
                               "`ray start --head --port`) and that `vlmctl cluster up` finished there")
    import json

    try:
        return json.loads(stdout.strip().splitlines()[-1]) or {}
    except (ValueError, IndexError):
        return {}


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no message)"


def _check_versions(ne: NodeEnv, meta: dict) -> None:
    import platform

    import ray

    theirs_ray, theirs_py = meta.get("ray_version"), meta.get("python_version")
    ours_py = platform.python_version()
    if theirs_ray and theirs_ray != ray.__version__ or theirs_py and theirs_py.split(".")[:2] != ours_py.split(".")[:2]:
        raise ClusterError(f"version mismatch: the head {ne.head} runs Ray {theirs_ray}, Python {theirs_py}; "
                           f"this node has Ray {ray.__version__}, Python {ours_py}.",
                           fix="run the same image (or pip freeze) on every node; vlmctl compose writes one file per node")


def join(ne: NodeEnv, *, block: bool = False, timeout: float = JOIN_TIMEOUT_S, start_timeout: float = 120.0,
         progress: Progress = _quiet) -> bool:
    """Join this worker to the head. Returns False when already joined.

    An unreachable head or a port where no Ray head answers fails within ``timeout`` seconds; once the
    head's GCS has answered (and its Ray/Python versions match), ``ray start`` gets ``start_timeout``.
    """
    if ne.role != "worker":
        raise ClusterError(f"node '{ne.node}' is the head.", fix="run on this node: vlmctl cluster up")
    if is_up(ne):
        return False
    check_gpu_ids(ne)
    _clear_leftovers(ne, progress)
    t0 = time.monotonic()
    progress(f"checking the head {ne.head} from {ne.address} (NIC {ne.nic})")
    _probe(ne.head_address, ne.ray_port, timeout=min(5.0, timeout / 3))
    log = _prepare(ne)
    argv = start_argv(ne, block=block)
    if block:
        _check_versions(ne, head_metadata(ne, timeout - (time.monotonic() - t0)))
        os.execve(argv[0], argv, _env_for(ne))
    # Ask the GCS and start Ray side by side: the answer (or its absence) decides whether `ray start` may go on.
    check = _metadata_check(ne)
    proc = _spawn_start(ne, argv, log)
    progress(f"joining the Ray cluster at {ne.head}")
    try:
        meta = head_metadata(ne, timeout - (time.monotonic() - t0), check)
        _check_versions(ne, meta)
    except ClusterError:
        _kill_group(proc)
        stop_local(ne.state_dir, timeout=2.0)
        raise
    rc = _finish_start(proc, start_timeout)
    took = time.monotonic() - t0
    if rc != 0:
        stop_local(ne.state_dir, timeout=2.0)
        why = f"did not finish within {start_timeout:.0f} s" if rc is None else f"exited with {rc}"
        raise ClusterError(f"`ray start --address={ne.head}` {why}: {_tail(log)}",
                           fix=f"read {log}; then vlmctl cluster status on the head")
    progress(f"joined in {took:.1f} s (head runs Ray {meta.get('ray_version', '?')})")
    return True


def stop_local(state_dir: str | Path, timeout: float = 4.0) -> int:
    """Stop this node's Ray processes (only those under ``state_dir``): SIGTERM, then SIGKILL. Returns how many."""
    psutil = require("psutil", "cluster")

    def send(procs, signal_name: str) -> None:
        for proc in procs:
            try:
                getattr(proc, signal_name)()
            except psutil.NoSuchProcess:
                pass

    procs = node_processes(state_dir)
    send(procs, "terminate")
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    send(alive, "kill")
    psutil.wait_procs(alive, timeout=3)
    send(node_processes(state_dir), "kill")
    return len(procs)


@contextmanager
def connect(ne: NodeEnv) -> Iterator[object]:
    """A Ray driver on this node, attached to the cluster's head; shut down on exit."""
    if not is_up(ne):
        raise ClusterError(f"Ray is not running on node '{ne.node}' for cluster '{ne.cluster}'.",
                           fix="vlmctl cluster up (head) or vlmctl cluster join HEAD (worker) first")
    # Before Ray is imported: it reads its auth mode and token (RAY_AUTH_*) once per process.
    os.environ.update({k: v for k, v in ne.env.items() if k.startswith("RAY_")})
    ray = require("ray", "cluster")
    try:
        ray.init(address=ne.head, _node_ip_address=ne.address, logging_level="ERROR", log_to_driver=False,
                 configure_logging=False)
    except Exception as exc:  # noqa: BLE001 - Ray raises many types here
        raise ClusterError(f"cannot attach to the Ray cluster at {ne.head}: {exc}.",
                           fix="vlmctl cluster status on the head; vlmctl cluster up if it is down") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _remote_stop(state_dir: str) -> None:
    """Runs inside a Ray task on another node: stop that node a moment after the task returns."""
    subprocess.Popen([sys.executable, "-c",
                      "import sys, time; time.sleep(1.0); from vlmctl.cluster.ray_node import stop_local; "
                      "stop_local(sys.argv[1])", state_dir],
                     start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stop_other_nodes(ne: NodeEnv, timeout: float, progress: Progress) -> dict[str, int]:
    """From the head: a task on every other node of this cluster stops that node's Ray."""
    stopped: dict[str, int] = {}
    with connect(ne) as ray:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        @ray.remote(num_cpus=0)
        def stop_there() -> str:
            _remote_stop(os.environ["VLMCTL_STATE_DIR"])
            return os.environ.get("VLMCTL_NODE", "?")

        refs = []
        for n in ray.nodes():
            if n["Alive"] and n["Labels"].get("vlmctl-cluster") == ne.cluster and n["Labels"].get("vlmctl-node") != ne.node:
                progress(f"stopping node {n['Labels'].get('vlmctl-node')} ({n['NodeManagerAddress']})")
                refs.append(stop_there.options(
                    scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote())
        if refs:
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
            for name in ray.get(ready):
                stopped[name] = -1
        # The stoppers run detached on their nodes; give them a moment to deregister before the head goes.
        deadline = time.monotonic() + 5.0
        while refs and time.monotonic() < deadline:
            live = [n for n in ray.nodes() if n["Alive"] and n["Labels"].get("vlmctl-node") != ne.node
                    and n["Labels"].get("vlmctl-cluster") == ne.cluster]
            if not live:
                break
            time.sleep(0.5)
    return stopped


def down(ne: NodeEnv, *, timeout: float = 30.0, progress: Progress = _quiet) -> dict[str, int]:
    """Stop Ray on this node; on the head, first every other node of this cluster. Returns processes stopped per node."""
    stopped: dict[str, int] = {}
    if ne.role == "head" and is_up(ne):
        try:
            stopped.update(_stop_other_nodes(ne, timeout, progress))
        except ClusterError as exc:  # e.g. the head refuses us (auth mode changed): still stop this node
            progress(f"could not reach the cluster to stop the other nodes ({exc}); stopping this node only: "
                     "run `vlmctl cluster down` on each worker")
    progress(f"stopping node {ne.node} ({ne.address})")
    stopped[ne.node] = stop_local(ne.state_dir)
    return stopped
