"""Start real servers for tests: ``demo_server()`` runs `vlmctl serve` (the CPU demo) as a subprocess.

    with demo_server() as url:            # url == "http://127.0.0.1:PORT" (a str)
        url.api_base                      # "http://127.0.0.1:PORT/v1" (for the openai client, bench, ui)
        url.api_key, url.log_path, url.pid

The server listens on a free port, is waited for (bounded) on /health, and its whole process group is
killed on exit, also when the test fails (its logs are then kept; on success they are removed). All
servers of one pytest process share one demo-model cache (removed at exit), so the model is built once.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

_SHARED_CACHE: str | None = None


class ServerURL(str):
    """The server's base URL, with ``api_base``, ``api_key``, ``log_path`` and ``pid`` attached."""

    api_base: str
    api_key: str | None
    log_path: Path
    pid: int


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric(text: str, name: str, labels: str = "") -> float:
    """The value of series ``name`` in Prometheus text: with exactly ``labels`` (``'outcome="ok"'``), else the first."""
    pattern = "^" + re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else r"(?:\{[^}]*\})?") + r"\s+(\S+)"
    m = re.search(pattern, text, re.M)
    assert m, f"{name}{{{labels}}} not in /metrics"
    return float(m.group(1))


def scrape(base_url: str) -> str:
    """``base_url``/metrics as text."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=10) as resp:
        return resp.read().decode()


def shared_cache_dir() -> str:
    """One cache dir per test process, so the demo model is built once."""
    global _SHARED_CACHE
    if _SHARED_CACHE is None:
        _SHARED_CACHE = tempfile.mkdtemp(prefix="vlmctl-test-cache-")
        atexit.register(shutil.rmtree, _SHARED_CACHE, True)
    return _SHARED_CACHE


def _vlmctl() -> list[str]:
    script = Path(sys.executable).parent / "vlmctl"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from vlmctl.cli.main import main; sys.exit(main())"]


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None, log_path: Path | None = None) -> None:
    """Wait until ``url`` answers 200, the process dies, or ``timeout`` passes (then raise)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:] if log_path and log_path.exists() else ""
            raise RuntimeError(f"server exited with {proc.returncode} before {url} answered:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    tail = log_path.read_text(errors="replace")[-3000:] if log_path and log_path.exists() else ""
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s:\n{tail}")


def proc_stats() -> dict[int, list[str]]:
    """pid -> the fields of /proc/PID/stat after the command name (state, ppid, pgrp, …); empty off Linux."""
    out = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            out[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
    return out


def group_members(pgid: int, zombies: bool = False) -> list[int]:
    """The processes of process group ``pgid`` (zombies left out unless asked for)."""
    return [pid for pid, f in proc_stats().items() if int(f[2]) == pgid and (zombies or f[0] != "Z")]


def _descendant_groups(pid: int) -> set[int]:
    """Process groups of every descendant of ``pid`` (read from /proc; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    groups: dict[int, int] = {}
    for child, fields in proc_stats().items():
        children.setdefault(int(fields[1]), []).append(child)
        groups[child] = int(fields[2])
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(groups[child])
            todo.append(child)
    return found


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop a child started in our own process group: SIGTERM, then SIGKILL after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def kill_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop ``proc``'s process group and every group its descendants started (SIGTERM, then SIGKILL)."""
    groups = {proc.pid} | _descendant_groups(proc.pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)  # `vlmctl serve` stops its engine's group itself
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def start_serve(folder: Path, *args: str, timeout: float = 180.0) -> tuple[subprocess.Popen, int, Path]:
    """`vlmctl serve` (the demo, no page) on a free port in its own process group, ready on /health.

    Returns (process, port, the file with its output); the engine logs to ``folder``/engine.log. The caller
    stops it (``kill_group``); if it never becomes ready it is stopped here.
    """
    port = free_port()
    env = {**os.environ, "VLMCTL_CACHE_DIR": shared_cache_dir(), "NO_COLOR": "1"}
    out, log = folder / "out.txt", folder / "engine.log"
    with open(out, "wb") as fh:
        proc = subprocess.Popen([*_vlmctl(), "serve", "--port", str(port), "--no-ui", "--log-file", str(log), *args],
                                stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout, proc, log)
    except BaseException:
        kill_group(proc)
        raise
    return proc, port, out


@contextlib.contextmanager
def demo_server(
    *,
    api_key: str | None = None,
    ui: bool = False,
    args: tuple[str, ...] = (),
    timeout: float = 180.0,
    cache_dir: str | None = None,
    log_dir: str | None = None,
):
    """Run `vlmctl serve` (the embedded demo) on a free port; yield its :class:`ServerURL`.

    ``ui=True`` mounts the chat page at /chat (slower start: Gradio). ``args`` are extra
    `vlmctl serve` flags (e.g. ``("--allowed-media-dir", "/tmp/x")``).
    """
    port = free_port()
    logs = Path(log_dir or tempfile.mkdtemp(prefix="vlmctl-serve-"))
    failed = False
    log_path = logs / f"vlmctl-serve-{port}.out"
    engine_log = logs / f"engine-{port}.log"
    env = {**os.environ, "VLMCTL_CACHE_DIR": cache_dir or shared_cache_dir(), "NO_COLOR": "1"}
    env.pop("VLMCTL_API_KEY", None)
    if api_key:
        env["VLMCTL_API_KEY"] = api_key
    argv = [*_vlmctl(), "serve", "--port", str(port), "--log-file", str(engine_log), *args]
    if not ui:
        argv.append("--no-ui")
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout, proc, engine_log)
        url = ServerURL(f"http://127.0.0.1:{port}")
        url.api_base = f"{url}/v1"
        url.api_key = api_key
        url.log_path = engine_log
        url.pid = proc.pid
        yield url
    except BaseException:
        failed = True  # keep the logs for the failure report
        raise
    finally:
        kill_group(proc)
        if not failed and log_dir is None:
            shutil.rmtree(logs, ignore_errors=True)
