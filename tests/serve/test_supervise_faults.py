"""Faults after start-up, with real child processes: a frozen engine (SIGSTOP), an engine killed by a
signal, secrets in the engine's output, and a second Ctrl-C while `vlmctl serve` stops."""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tests._servers import free_port, start_serve
from vlmctl.errors import ServeError
from vlmctl.serve.supervise import Launch, Supervisor

FAKE = str(Path(__file__).parent / "fake_vllm.py")
pytestmark = [pytest.mark.integration]


def _ready_fake(tmp_path) -> Supervisor:
    port = free_port()
    sup = Supervisor(Launch(argv=[sys.executable, FAKE, "--port", str(port)], port=port,
                            log_path=tmp_path / "engine.log"))
    sup.start()
    sup.wait_ready(timeout_s=30)
    return sup


def test_a_frozen_engine_is_noticed_named_and_stopped(tmp_path):
    sup = _ready_fake(tmp_path)
    notes: list[str] = []
    try:
        os.kill(sup.proc.pid, signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(ServeError) as info:
            sup.watch(health_timeout_s=3, on_unhealthy="stop", poll_s=0.5, on_note=notes.append)
        assert time.monotonic() - started < 15
    finally:
        sup.stop(grace_s=1)
    assert "frozen" in info.value.message and "--on-unhealthy restart" in info.value.fix
    assert any("not answered /health" in n for n in notes)
    assert sup.proc.poll() is not None


def test_a_frozen_engine_is_restarted_when_asked(tmp_path):
    sup = _ready_fake(tmp_path)
    first = sup.proc.pid
    notes: list[str] = []
    try:
        os.kill(first, signal.SIGSTOP)

        def watch():
            try:
                sup.watch(health_timeout_s=2, on_unhealthy="restart", poll_s=0.5, on_note=notes.append)
            except ServeError:
                pass

        import threading

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while "the engine is ready again" not in notes and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "the engine is ready again" in notes
        assert sup.proc.pid != first and sup.alive()
    finally:
        sup.stop(grace_s=1)


@pytest.mark.parametrize("sig, words", [(signal.SIGKILL, "out-of-memory"), (signal.SIGSEGV, "segmentation")])
def test_an_engine_killed_by_a_signal_is_explained_as_such(tmp_path, sig, words):
    sup = _ready_fake(tmp_path)
    try:
        os.kill(sup.proc.pid, sig)
        code = sup.watch(health_timeout_s=30, poll_s=0.5)
        err = sup.death_error()
    finally:
        sup.stop(grace_s=1)
    assert code == -sig
    assert f"killed by {sig.name}" in err.message and words in err.message
    assert "no known failure signature" not in err.message


def test_secrets_in_engine_output_never_reach_the_log(tmp_path):
    script = ("import os; print('key', os.environ['VLLM_API_KEY']); "
              "print('GET /v1/models?api_key=hunter22&x=1 HTTP/1.1 200', flush=True)")
    sup = Supervisor(Launch(argv=[sys.executable, "-c", script], env={"VLLM_API_KEY": "s3cr3t-key"},
                            log_path=tmp_path / "engine.log"))
    sup.start()
    sup.wait()
    sup.stop(grace_s=1)
    text = (tmp_path / "engine.log").read_text()
    assert "s3cr3t-key" not in text and "hunter22" not in text
    assert "key <redacted>" in text and "?api_key=<redacted>&x=1" in text


@pytest.mark.slow
def test_second_ctrl_c_kills_a_frozen_engine_at_once(tmp_path):
    proc, _, out = start_serve(tmp_path, "--health-timeout", "600")
    engine = None
    try:
        engine = int(Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()[0])
        os.kill(engine, signal.SIGSTOP)  # a stopped engine ignores SIGTERM until continued
        proc.send_signal(signal.SIGINT)
        time.sleep(1.0)
        assert proc.poll() is None  # first Ctrl-C: SIGTERM sent, waiting out the grace period
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=8) == 0
        assert time.monotonic() - started < 6
        assert "killing the engine now" in out.read_text()
        assert not Path(f"/proc/{engine}").exists() or "Z" in Path(f"/proc/{engine}/stat").read_text().split()[2]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        if engine and Path(f"/proc/{engine}").exists():
            os.kill(engine, signal.SIGKILL)
