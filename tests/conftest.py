"""Shared test fixtures: hermetic by default (no GPU, no hub, no network beyond 127.0.0.1)."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    """Keep user state and debug switches out of every test."""
    monkeypatch.delenv("VLMCTL_DEBUG", raising=False)
    monkeypatch.delenv("VLMCTL_API_KEY", raising=False)
    monkeypatch.setenv("VLMCTL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("NO_COLOR", "1")
