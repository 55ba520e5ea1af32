"""Supervision with real child processes: a fake vLLM (real process, real HTTP) and `vlmctl serve` itself."""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tests._servers import _descendant_groups, free_port, group_members, start_serve
from vlmctl.errors import ServeError
from vlmctl.serve.supervise import Launch, Supervisor, phases_in

FAKE = str(Path(__file__).parent / "fake_vllm.py")
pytestmark = [pytest.mark.integration]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _sup(tmp_path, *extra, api_key=None):
    port = free_port()
    phases: list[str] = []
    launch = Launch(argv=[sys.executable, FAKE, "--port", str(port), *extra], port=port, api_key=api_key,
                    log_path=tmp_path / "engine.log")
    return Supervisor(launch, on_phase=phases.append), phases


def test_phases_from_vllm_log_lines():
    from tests.serve.fake_vllm import LINES

    assert phases_in("\n".join(LINES)) == ["loading", "profiling", "graph capture"]
    assert phases_in("INFO:     Application startup complete.") == ["ready"]
    assert phases_in("INFO 12:00:00 [vlmctl-demo] Loading weights from /x") == ["loading"]


def test_ready_then_stop_kills_the_whole_group(tmp_path):
    sup, phases = _sup(tmp_path)
    sup.start()
    try:
        assert sup.wait_ready(timeout_s=30) == ["fake-qwen"]
        assert phases == ["loading", "profiling", "graph capture", "ready"]
        deadline = time.monotonic() + 5
        while len(group_members(sup.proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        members = group_members(sup.proc.pid)
        assert len(members) >= 2  # the fake engine and its worker
    finally:
        sup.stop(grace_s=5)
    time.sleep(0.2)
    assert not any(_alive(pid) for pid in members)


@pytest.mark.parametrize(
    "death, sig_id, words",
    [("kv", "kv-max-seq-len-v1", "plan change: max_model_len"), ("bf16", "bf16-unsupported", "float16")],
)
def test_death_is_explained_with_cause_fix_and_plan_change(tmp_path, death, sig_id, words):
    sup, phases = _sup(tmp_path, "--die", death)
    sup.start()
    with pytest.raises(ServeError) as info:
        sup.wait_ready(timeout_s=30)
    sup.stop(grace_s=2)
    err = info.value
    assert phases == ["loading"]
    assert err.message.startswith(f"the engine exited (code 1): [{sig_id}]")
    assert str(tmp_path / "engine.log") in err.message
    assert err.fix
    assert words in err.message + err.fix


def test_unknown_death_points_at_doctor_and_shows_likely_lines(tmp_path):
    sup, _ = _sup(tmp_path, "--die", "unknown")
    sup.start()
    with pytest.raises(ServeError) as info:
        sup.wait_ready(timeout_s=30)
    sup.stop(grace_s=2)
    assert "no known failure signature" in info.value.message
    assert "something nobody has seen before" in info.value.message
    assert info.value.fix.startswith("vlmctl doctor explain")


def test_wrong_api_key_is_reported(tmp_path):
    port = free_port()
    launch = Launch(argv=[sys.executable, FAKE, "--port", str(port), "--api-key", "right"], port=port,
                    api_key="wrong", log_path=tmp_path / "engine.log")
    sup = Supervisor(launch)
    sup.start()
    with pytest.raises(ServeError, match="rejects our API key"):
        sup.wait_ready(timeout_s=30)
    assert not _alive(sup.proc.pid)


def test_missing_engine_binary(tmp_path):
    sup = Supervisor(Launch(argv=["/nonexistent/vllm", "serve"], log_path=tmp_path / "x.log"))
    with pytest.raises(ServeError, match="not found"):
        sup.start()


def test_a_stalled_engine_is_stopped_and_explained_before_the_timeout(tmp_path):
    sup, _ = _sup(tmp_path, "--stall")
    sup.start()
    pgid = os.getpgid(sup.proc.pid)
    t0 = time.monotonic()
    with pytest.raises(ServeError) as exc:
        sup.wait_ready(timeout_s=120)
    assert time.monotonic() - t0 < 20
    assert "stuck" in str(exc.value) and "[ray-local-instance]" in str(exc.value)
    assert "RAY_ADDRESS" in exc.value.fix
    deadline = time.monotonic() + 10
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert group_members(pgid) == []


def test_timeout_stops_the_child(tmp_path):
    sup = Supervisor(Launch(argv=[sys.executable, "-c", "import time; time.sleep(60)"], port=free_port(),
                            log_path=tmp_path / "slow.log"))
    sup.start()
    with pytest.raises(ServeError, match="did not become ready within 1 s"):
        sup.wait_ready(timeout_s=1)
    assert not _alive(sup.proc.pid)


@pytest.mark.slow
def test_vlmctl_serve_ctrl_c_stops_engine_and_children(tmp_path):
    """`vlmctl serve` (demo) for real: ready output, then SIGINT (Ctrl-C) stops vlmctl and its engine."""
    proc, port, out = start_serve(tmp_path)
    try:
        deadline = time.monotonic() + 20
        while "Next:" not in out.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        text = out.read_text()
        assert f"http://127.0.0.1:{port}/v1" in text and "RANDOM weights" in text and "Next:" in text
        engine_groups = _descendant_groups(proc.pid)
        assert engine_groups
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert "stopped" in out.read_text()
        time.sleep(0.3)
        assert not any(group_members(g) for g in engine_groups)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
