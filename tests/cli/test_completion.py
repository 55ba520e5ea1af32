"""Shell completion as the README sets it up (click's _VLMCTL_COMPLETE protocol)."""
from __future__ import annotations

import os
import subprocess
import sys


def _complete(words: str, cword: int) -> list[str]:
    env = {**os.environ, "_VLMCTL_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    out = subprocess.run([sys.executable, "-m", "vlmctl.cli.main"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return [line.split(",", 1)[1] for line in out.stdout.splitlines() if "," in line]


def test_commands_and_options_complete():
    assert _complete("vlmctl k", 1) == ["k8s"]
    assert "bench" in _complete("vlmctl ", 1)
    assert _complete("vlmctl bench --max-c", 2) == ["--max-concurrency"]
    script = subprocess.run([sys.executable, "-m", "vlmctl.cli.main"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "_VLMCTL_COMPLETE": "bash_source"}).stdout
    assert "_vlmctl_completion()" in script and "complete " in script
