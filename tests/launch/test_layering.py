"""The launch spec stays pure: importing it (or the planner) pulls in nothing heavy and nothing above it."""
from __future__ import annotations

import subprocess
import sys

import pytest

ABOVE = ("vlmctl.serve", "vlmctl.cluster", "vlmctl.cli", "vlmctl.ui", "vlmctl.bench")
HEAVY = ("ray", "vllm", "torch", "gradio", "transformers", "psutil")


@pytest.mark.parametrize("module", ["vlmctl.launch", "vlmctl.launch.shell", "vlmctl.plan"])
def test_imports_nothing_above_or_heavy(module):
    code = (f"import sys, {module}\n"
            f"bad = sorted(m for m in sys.modules if any(m == a or m.startswith(a + '.') for a in {ABOVE!r})"
            f" or m.split('.')[0] in {HEAVY!r})\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == ""


def test_the_planner_does_not_import_the_launch_spec():
    code = "import sys, vlmctl.plan, vlmctl.plan.build; print('vlmctl.launch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"
