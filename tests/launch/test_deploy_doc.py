"""docs/deploy.md's CPU part runs as written: its files are written, its `bash cpu` blocks run line by line
with `vlmctl` on PATH, in a fresh folder."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
FENCE = re.compile(r"^```(\S+)([^\n]*)\n(.*?)^```", re.S | re.M)


def _blocks():
    return [(lang, info.strip(), body) for lang, info, body in FENCE.findall(DOC.read_text())]


def test_the_cpu_part_of_the_walkthrough_runs_as_written(tmp_path):
    blocks = _blocks()
    files = [(info.split("=", 1)[1], body) for lang, info, body in blocks if info.startswith("file=")]
    scripts = [body for lang, info, body in blocks if lang == "bash" and info == "cpu"]
    assert files and scripts
    for name, body in files:
        (tmp_path / name).write_text(body)
    shim = tmp_path / "bin" / "vlmctl"
    shim.parent.mkdir()
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m vlmctl.cli.main \"$@\"\n")
    shim.chmod(0o755)
    src = Path(__file__).resolve().parents[2] / "src"
    env = dict(os.environ, PATH=f"{shim.parent}:{os.environ['PATH']}", NO_COLOR="1", COLUMNS="200",
               PYTHONPATH=f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    outputs = []
    for script in scripts:
        for line in script.splitlines():
            if not line.strip():
                continue
            res = subprocess.run(["bash", "-euo", "pipefail", "-c", line], cwd=tmp_path, env=env,
                                 capture_output=True, text=True, timeout=180)
            assert res.returncode == 0, f"{line}\n{res.stdout}\n{res.stderr}"
            outputs.append(res.stdout)
    plan_out, commands, dry_run = outputs
    assert (tmp_path / "plan.json").exists()
    assert "# node gpu-a (192.168.1.10), head" in commands and "# node gpu-b (192.168.1.11), worker" in commands
    assert "ray_non_carry_over_env_vars.json" in commands and "vllm serve /models/Qwen2.5-VL-7B-Instruct" in commands
    assert "export RAY_ADDRESS=192.168.1.10:6379" in dry_run and "export VLLM_HOST_IP=192.168.1.10" in dry_run
    assert "VLLM_CONFIG_ROOT=/tmp/vlmctl/lab-gpu-a/vllm-config" in dry_run  # where `cluster up` writes the file


def test_every_vlmctl_command_in_the_walkthrough_exists():
    from vlmctl.cli.main import main

    seen = set()
    for lang, _, body in _blocks():
        if lang != "bash":
            continue
        for line in body.splitlines():
            for part in re.split(r"&&|\|", line.split("  #")[0]):
                words = part.split("$ ", 1)[-1].split()
                if words[:1] == ["vlmctl"] and len(words) > 1:
                    sub = [w for w in words[1:3] if not w.startswith("-")]
                    if tuple(sub) not in seen:
                        seen.add(tuple(sub))
                        assert main([*sub, "--help"]) == 0, sub
    assert {("cluster", "up"), ("cluster", "join"), ("serve",), ("plan",)} <= {s[:2] if s[0] == "cluster" else s[:1]
                                                                             for s in seen}
