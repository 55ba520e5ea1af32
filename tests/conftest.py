"""Shared test fixtures: hermetic by default (no GPU, no hub, no network beyond 127.0.0.1)."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    """Keep user state and debug switches out of every test."""
    monkeypatch.delenv("VLMCTL_DEBUG", raising=False)
    monkeypatch.delenv("VLMCTL_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("VLMCTL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VLMCTL_CALIBRATION_DIR", str(tmp_path / "calibration"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture(scope="session")
def demo_server():
    """One `vlmctl serve` demo server (API only, no chat page) for the whole session; yields its ServerURL.

    ``str(demo_server)`` is the base URL; ``demo_server.api_base`` adds ``/v1``. See tests/_servers.py.
    """
    from tests._servers import demo_server as start

    with start() as url:
        yield url
