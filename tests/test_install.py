"""The README's install lines, run as written (wheel built from this checkout) into a fresh virtual environment
outside the repository: `vlmctl plan` must work from there, with only the planner's dependencies."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _install_block() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Install"):readme.index("## The demo")]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_install_lines_give_a_working_vlmctl_outside_the_repo(tmp_path):
    build, install = _install_block()
    assert build.startswith("python3 -m pip wheel") and install.startswith("python3 -m pip install")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}  # nothing of this checkout
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = f"{venv}/bin/python -m pip"
    build = build.replace("python3 -m pip", pip).replace("-w dist", f"-w {tmp_path}/dist")
    install = install.replace("python3 -m pip", pip).replace("./dist/", f"{tmp_path}/dist/")
    for line in (build, install):
        res = subprocess.run(["bash", "-c", line], cwd=ROOT if line is build else tmp_path, capture_output=True,
                             text=True, timeout=600, env=env)
        assert res.returncode == 0, f"{line}\n{res.stderr[-2000:]}"
    out = subprocess.run([f"{venv}/bin/vlmctl", "plan", "Qwen/Qwen2.5-VL-7B-Instruct", "--gpus", "h100-80gb:1",
                          "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert '"ok": true' in out.stdout
    listed = subprocess.run([f"{venv}/bin/python", "-m", "pip", "list", "--format=freeze"], capture_output=True,
                            text=True, timeout=120, env=env).stdout.lower()
    assert "torch" not in listed and "ray" not in listed  # the planner alone pulls nothing heavy
