"""Which processes `cluster down` may stop: only Ray's, only under this node's state folder."""
from __future__ import annotations

import subprocess
import sys

from vlmctl.cluster.ray_node import _is_ray, node_processes


def test_is_ray_tells_ray_processes_from_readers_of_their_files():
    assert _is_ray(["/v/lib/python3.11/site-packages/ray/core/src/ray/raylet/raylet", "--temp_dir=/tmp/vlmctl/a"])
    assert _is_ray(["/v/bin/python3", "-m", "ray.util.client.server", "--address=10.0.0.1:6379"])
    assert _is_ray(["ray::IDLE"]) and _is_ray(["ray-dashboard-NodeHead-0 (python -c ...)"])
    assert _is_ray(["/v/bin/ray", "start", "--temp-dir=/tmp/vlmctl/a"])
    assert not _is_ray(["tail", "-f", "/tmp/vlmctl/a/session_1/logs/raylet.out"])
    assert not _is_ray(["python3", "-c", "import array"])


def test_a_non_ray_process_naming_the_state_dir_is_left_alone(tmp_path):
    state = tmp_path / "lab-a"
    state.mkdir()
    reader = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", f"{state}/session_1/logs/raylet.out"])
    try:
        assert node_processes(state) == []
    finally:
        reader.kill()
        reader.wait(timeout=10)
