"""Start/stop the tiny OpenAI-compatible server (tiny_openai_server.py) and read its counters."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests._servers import free_port

SERVER = Path(__file__).parent / "tiny_openai_server.py"


def start_server(*args: str) -> tuple[subprocess.Popen, str]:
    """Start the tiny server; return (process, api_base). Waits (bounded) until /stats answers."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(SERVER), "--port", str(port), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"tiny server exited: {proc.stdout.read().decode()[-2000:]}")
        try:
            if httpx.get(base + "/stats", timeout=1).status_code == 200:
                return proc, base + "/v1"
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("tiny server did not answer within 30 s")


def server_stats(api_base: str) -> dict:
    return httpx.get(api_base.removesuffix("/v1") + "/stats", timeout=5).json()
