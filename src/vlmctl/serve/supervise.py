"""Run an engine (vLLM or the demo server) as a child process and watch it come up.

The child gets its own session (process group) and its own log file. Progress is read from the log
(loading → profiling → graph capture → ready); readiness is ``/health`` answering 200 and
``/v1/models`` listing the model. If the child dies, its log goes through the doctor's failure
catalog (:func:`vlmctl.doctor.explain.explain`) and :class:`~vlmctl.errors.ServeError` carries the
cause, the fix and the plan change. :meth:`Supervisor.stop` ends the whole process group (children included).
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from vlmctl.errors import ServeError

#: Phase → log lines of the embedded demo server that announce it (vLLM's come from its version profile).
DEMO_PHASES: dict[str, str] = {
    "loading": r"\[vlmctl-demo\] (?:Building|Loading weights)",
    "profiling": r"\[vlmctl-demo\] .*warming up",
}


def phase_patterns(vllm_version: str | None = None) -> list[tuple[str, re.Pattern]]:
    """(phase, pattern) in start-up order: the vLLM profile's log phases, plus the demo server's lines."""
    from vlmctl.engines.vllm import profile

    out = []
    for name, rx in profile(vllm_version).log_phases:
        demo = DEMO_PHASES.get(name)
        out.append((name, re.compile(f"{rx}|{demo}" if demo else rx)))
    return out


PHASES = phase_patterns()
PHASE_NAMES = [name for name, _ in PHASES]


@dataclass
class Launch:
    """What to start and where it will answer."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    model_name: str | None = None
    log_path: Path | None = None

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"


#: Seconds between looks at the log for failures vLLM does not exit on.
STALL_CHECK_S = 3.0


def phases_in(text: str, patterns: list[tuple[str, re.Pattern]] | None = None) -> list[str]:
    """The phases the log text has reached, in order of first appearance."""
    seen = []
    for name, pattern in patterns or PHASES:
        if pattern.search(text):
            seen.append(name)
    return seen


class Supervisor:
    """Start, watch and stop one engine process group."""

    def __init__(self, launch: Launch, on_phase: Callable[[str], None] | None = None, plan=None) -> None:
        self.launch = launch
        self.plan = plan
        self.on_phase = on_phase or (lambda name: None)
        self.proc: subprocess.Popen | None = None
        self.phases: list[str] = []
        self.log_path = launch.log_path or Path(os.getcwd()) / f"vlmctl-serve-{launch.port}.log"
        self.patterns = phase_patterns(getattr(plan, "vllm_version", None))

    def start(self) -> None:
        """Start the child in its own session, stdout+stderr to the log file."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")
        env = {**os.environ, **self.launch.env}
        try:
            self.proc = subprocess.Popen(
                self.launch.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        except FileNotFoundError as exc:
            raise ServeError(
                f"cannot start '{self.launch.argv[0]}': not found on PATH.",
                fix="install vLLM on this node (pip install 'vlmctl[gpu]'), or run `vlmctl serve` with no model for the CPU demo",
            ) from exc
        finally:
            log.close()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _check_phases(self, text: str) -> None:
        for name in phases_in(text, self.patterns):
            if name not in self.phases:
                self.phases.append(name)
                self.on_phase(name)

    def _get(self, path: str) -> tuple[int, dict | None]:
        import json
        import urllib.error
        import urllib.request

        req = urllib.request.Request(self.launch.base_url + path)
        if self.launch.api_key:
            req.add_header("Authorization", f"Bearer {self.launch.api_key}")
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:
                body = resp.read()
                try:
                    return resp.status, json.loads(body) if body else None
                except ValueError:
                    return resp.status, None
        except urllib.error.HTTPError as exc:
            return exc.code, None
        except (OSError, urllib.error.URLError):
            return 0, None

    def wait_ready(self, timeout_s: float = 1800.0, poll_s: float = 0.25) -> list[str]:
        """Block until /health is 200 and /v1/models lists a model; return the model ids.

        Raises ServeError with the explained log if the child dies, or on timeout (the child is stopped).
        """
        assert self.proc is not None, "start() first"
        deadline = time.monotonic() + timeout_s
        next_stall_check = time.monotonic() + STALL_CHECK_S
        while time.monotonic() < deadline:
            text = self.log_text()
            self._check_phases(text)
            if self.proc.poll() is not None:
                raise self.death_error()
            if time.monotonic() >= next_stall_check:
                next_stall_check = time.monotonic() + STALL_CHECK_S
                stalled = self.stall_error(text)
                if stalled is not None:
                    self.stop()
                    raise stalled
            status, _ = self._get("/health")
            if status == 200:
                status, models = self._get("/v1/models")
                if status == 200 and models and models.get("data"):
                    if "ready" not in self.phases:
                        self.phases.append("ready")
                        self.on_phase("ready")
                    return [m.get("id") for m in models["data"]]
                if status == 401:
                    self.stop()
                    raise ServeError(
                        "the engine is up but rejects our API key on /v1/models.",
                        fix="pass the same --api-key (or VLMCTL_API_KEY) the engine was started with",
                    )
            time.sleep(poll_s)
        self.stop()
        raise ServeError(
            f"the engine did not become ready within {timeout_s:.0f} s (last phase: "
            f"{self.phases[-1] if self.phases else 'none'}); it was stopped. Log: {self.log_path}",
            fix=f"read {self.log_path}, or raise --ready-timeout",
        )

    def stall_error(self, text: str) -> ServeError | None:
        """A ServeError when the log ``text`` shows a failure vLLM waits on forever (no placement group)."""
        from vlmctl.doctor.explain import explain
        from vlmctl.doctor.signatures import BY_ID

        result = explain(text, self.plan)
        stuck = [m for m in result.matches if BY_ID[m.id].stalls]
        if not stuck:
            return None
        first = stuck[0].finding
        return ServeError(f"the engine is stuck and was stopped: [{first.id}] {first.message}\n  log: {self.log_path}",
                          fix=first.fix)

    def death_error(self) -> ServeError:
        """A ServeError explaining why the child exited: cause, fix and plan change from its log."""
        from vlmctl.doctor.explain import explain

        code = self.proc.returncode if self.proc else None
        text = self.log_text()
        result = explain(text, self.plan)
        if result.matches:
            first = result.matches[0].finding
            lines = [f"the engine exited (code {code}): [{first.id}] {first.message}"]
            lines += [f"  also: [{m.finding.id}] {m.finding.message}" for m in result.matches[1:3]]
            for key, change in result.plan_change.items():
                was = f"{change['from']} -> " if "from" in change else ""
                lines.append(f"  plan change: {key}: {was}{change['to']}  ({change['because']})")
            lines.append(f"  log: {self.log_path}")
            return ServeError("\n".join(lines), fix=first.fix)
        tail = result.suspicious_lines or text.strip().splitlines()[-8:]
        body = "\n    ".join(tail)
        return ServeError(
            f"the engine exited (code {code}) with no known failure signature. Likely lines:\n    {body}\n"
            f"  log: {self.log_path}",
            fix=f"vlmctl doctor explain {self.log_path}",
        )

    def wait(self) -> int:
        """Block until the child exits (Ctrl-C is the caller's to catch); return its exit code."""
        assert self.proc is not None
        return self.proc.wait()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM the child's process group, then SIGKILL what is left after ``grace_s``."""
        if self.proc is None:
            return
        pgid = self.proc.pid  # start_new_session: the child leads its own group
        _signal_group(pgid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(pgid, signal.SIGKILL)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if vlmctl itself dies (Linux), so nothing is orphaned."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
