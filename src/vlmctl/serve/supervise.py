"""Run an engine (vLLM or the demo server) as a child process and watch it come up.

The child gets its own session (process group) and its own log file. Progress is read from the log
(loading → profiling → graph capture → ready); readiness is ``/health`` answering 200 and
``/v1/models`` listing the model. If the child dies, its log goes through the failure
catalogue (:func:`vlmctl.failures.explain`) and :class:`~vlmctl.errors.ServeError` carries the
cause, the fix and the plan change. :meth:`Supervisor.stop` ends the whole process group (children included).
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
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


#: A KV-cache size further than this from the plan's (percent) is a finding.
KV_TOLERANCE_PCT = 5.0


def kv_check(plan, log_text: str):
    """(one line comparing vLLM's logged KV tokens with the plan's, a Finding when over ``KV_TOLERANCE_PCT``), or
    None when the log has no KV size yet or the plan predicts none."""
    from vlmctl.engines.vllm import profile
    from vlmctl.findings import Finding

    predicted = getattr(plan, "kv_cache_tokens", 0)
    measured = profile(getattr(plan, "vllm_version", None)).kv_tokens_in(log_text)
    if measured is None or not predicted:
        return None
    diff = 100.0 * (measured - predicted) / predicted
    line = f"KV cache: vLLM has {measured:,} tokens, the plan predicted {predicted:,} ({diff:+.1f} %)"
    if abs(diff) <= KV_TOLERANCE_PCT:
        return line, None
    return line, Finding(
        id="kv-prediction-off", severity="warning",
        message=f"vLLM's KV cache holds {measured:,} tokens, {diff:+.1f} % from the plan's {predicted:,}: the "
                f"planner's memory constants do not fit this node's vLLM and GPU (plan made for vLLM "
                f"{plan.vllm_version}).",
        fix="on this node: vlmctl calibrate MODEL_FOLDER (writes the calibration file plan reads), then plan again")


class Supervisor:
    """Start, watch and stop one engine process group."""

    def __init__(self, launch: Launch, on_phase: Callable[[str], None] | None = None, plan=None) -> None:
        self.launch = launch
        self.plan = plan
        self.on_phase = on_phase or (lambda name: None)
        self.proc: subprocess.Popen | None = None
        self._pump: threading.Thread | None = None
        self.phases: list[str] = []
        self.log_path = launch.log_path or Path(os.getcwd()) / f"vlmctl-serve-{launch.port}.log"
        self.patterns = phase_patterns(getattr(plan, "vllm_version", None))

    def start(self) -> None:
        """Start the child in its own session; its stdout+stderr go to the log file with secrets redacted."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")
        env = {**os.environ, **self.launch.env}
        try:
            self.proc = subprocess.Popen(
                self.launch.argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        except FileNotFoundError as exc:
            log.close()
            raise ServeError(
                f"cannot start '{self.launch.argv[0]}': not found on PATH.",
                fix="install vLLM on this node (pip install 'vlmctl[gpu]'), or run `vlmctl serve` with no model for the CPU demo",
            ) from exc
        secrets = [v.encode() for k, v in self.launch.env.items() if k.endswith("API_KEY") and v]
        if self.launch.api_key:
            secrets.append(self.launch.api_key.encode())
        self._pump = threading.Thread(target=_copy_redacted, args=(self.proc.stdout, log, secrets),
                                      name="vlmctl-engine-log", daemon=True)
        self._pump.start()

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

    def _get(self, path: str, timeout: float = 2.0) -> tuple[int, dict | None]:
        import json
        import urllib.error
        import urllib.request

        req = urllib.request.Request(self.launch.base_url + path)
        if self.launch.api_key:
            req.add_header("Authorization", f"Bearer {self.launch.api_key}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
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

    def kv_report(self):
        """The KV-cache check against the plan once the engine is ready (see :func:`kv_check`), or None."""
        return kv_check(self.plan, self.log_text()) if self.plan is not None else None

    def stall_error(self, text: str) -> ServeError | None:
        """A ServeError when the log ``text`` shows a failure vLLM waits on forever (no placement group)."""
        from vlmctl.failures import BY_ID, explain

        result = explain(text, self.plan)
        stuck = [m for m in result.matches if BY_ID[m.id].stalls]
        if not stuck:
            return None
        first = stuck[0].finding
        return ServeError(f"the engine is stuck and was stopped: [{first.id}] {first.message}\n  log: {self.log_path}",
                          fix=first.fix)

    def death_error(self) -> ServeError:
        """A ServeError explaining why the child exited: cause, fix and plan change from its log."""
        from vlmctl.failures import explain

        code = self.proc.returncode if self.proc else None
        self._drain()
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
        killed = _killed_by(code)
        if killed is not None:
            name, why, fix = killed
            return ServeError(f"the engine was killed by {name} (exit code {code}): {why}\n  log: {self.log_path}",
                              fix=fix)
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

    def watch(self, health_timeout_s: float = 30.0, on_unhealthy: str = "stop", poll_s: float = 2.0,
              on_note: Callable[[str], None] | None = None) -> int:
        """Block while the engine runs, checking ``/health``; return its exit code once it exits.

        When the process is alive but ``/health`` has not answered 200 for ``health_timeout_s`` (a frozen
        engine: stopped, deadlocked, swapping), say so, then ``stop`` (raise ServeError), ``restart`` (stop
        it, start it again, wait until ready) or ``warn`` (keep waiting).
        """
        assert self.proc is not None
        note = on_note or (lambda text: None)
        last_ok = time.monotonic()
        warned = False
        while True:
            try:
                return self.proc.wait(timeout=poll_s)
            except subprocess.TimeoutExpired:
                pass
            status, _ = self._get("/health", timeout=min(5.0, max(1.0, health_timeout_s / 3)))
            now = time.monotonic()
            if status == 200:
                if warned:
                    note(f"the engine answers /health again after {now - last_ok:.0f} s")
                last_ok, warned = now, False
                continue
            if self.proc.poll() is not None:
                return self.proc.returncode
            silent = now - last_ok
            if not warned and silent >= min(5.0, health_timeout_s / 2):
                warned = True
                note(f"the engine has not answered /health for {silent:.0f} s (its process is alive); "
                     f"acting after {health_timeout_s:.0f} s ({on_unhealthy})")
            if silent < health_timeout_s:
                continue
            message = (f"the engine has not answered /health for {silent:.0f} s although its process is alive: it is "
                       "frozen (stopped by a signal, deadlocked, or the machine is swapping)")
            if on_unhealthy == "warn":
                note(message + "; still waiting (--on-unhealthy warn)")
                last_ok, warned = now, True
                continue
            _signal_group(self.proc.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
            if on_unhealthy == "restart":
                note(message + "; restarting it")
                self.stop(grace_s=3.0)
                self.phases = []
                self.start()
                self.wait_ready()
                note("the engine is ready again")
                last_ok, warned = time.monotonic(), False
                continue
            self.stop(grace_s=3.0)
            raise ServeError(f"{message}; it was stopped.\n  log: {self.log_path}",
                             fix="vlmctl serve ... --on-unhealthy restart to restart it instead, or "
                                 "--health-timeout SECONDS to wait longer")

    def _drain(self, timeout_s: float = 2.0) -> None:
        """Let the log copier write what the exited child left in the pipe."""
        if self._pump is not None:
            self._pump.join(timeout=timeout_s)

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
        self.kill()

    def kill(self) -> None:
        """SIGKILL the child's process group now (a second Ctrl-C), and collect the child."""
        if self.proc is None:
            return
        _signal_group(self.proc.pid, signal.SIGKILL)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._drain()


def _copy_redacted(pipe, log, secrets: list[bytes]) -> None:
    """Copy the engine's output to its log line by line, with API keys (and ``?api_key=`` values) redacted."""
    try:
        for line in iter(pipe.readline, b""):
            for secret in secrets:
                line = line.replace(secret, b"<redacted>")
            log.write(_QUERY_SECRET.sub(rb"\1<redacted>", line))
            log.flush()
    except (OSError, ValueError):
        pass
    finally:
        log.close()


_QUERY_SECRET = re.compile(rb"(?i)([?&][^=&\s]*(?:key|token|secret|password|auth)[^=&\s]*=)[^&\s\"']*")

_SIGNAL_WHY = {
    signal.SIGKILL: ("it did not exit by itself: usually the kernel's out-of-memory killer (host RAM, not GPU "
                     "memory), or someone ran kill -9",
                     "check `dmesg | grep -i -E 'out of memory|killed process'`; lower --max-num-seqs or "
                     "free host memory, then start it again"),
    signal.SIGTERM: ("something outside vlmctl asked it to stop (kill, systemd, docker stop, a job scheduler)",
                     "find who stopped it, then start it again: vlmctl serve ..."),
    signal.SIGINT: ("an interrupt reached it directly (Ctrl-C in its process group, or kill -INT)",
                    "start it again: vlmctl serve ..."),
    signal.SIGSEGV: ("it crashed (segmentation fault) in native code: a CUDA/driver or library mismatch",
                     "vlmctl doctor, then check the last lines of the engine log"),
    signal.SIGABRT: ("it aborted in native code (an assertion in CUDA, NCCL or a C++ library)",
                     "vlmctl doctor, then check the last lines of the engine log"),
    signal.SIGBUS: ("it hit a bus error: often /dev/shm is too small for shared memory between processes",
                    "raise shm (docker --shm-size 16g), then start it again"),
}


def _killed_by(code: int | None) -> tuple[str, str, str] | None:
    """(signal name, why, fix) when exit ``code`` means a signal ended the process (-N, or 128+N from a shell)."""
    if code is None:
        return None
    number = -code if code < 0 else code - 128 if 128 < code < 160 else None
    if number is None:
        return None
    try:
        sig = signal.Signals(number)
    except ValueError:
        return None
    why, fix = _SIGNAL_WHY.get(sig, ("a signal from outside ended it", "start it again: vlmctl serve ..."))
    return sig.name, why, fix


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
