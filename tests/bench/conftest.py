"""Bench fixtures: a real OpenAI-compatible streaming server on 127.0.0.1 (tiny_openai_server.py)."""
from __future__ import annotations

import pytest
from tests._servers import stop
from tests.bench.bench_helpers import start_server


@pytest.fixture
def tiny_server():
    """api_base of a fresh tiny OpenAI-compatible server (stats start at zero)."""
    proc, base = start_server("--token-delay", "0.002")
    try:
        yield base
    finally:
        stop(proc)


@pytest.fixture
def tiny_server_with_key():
    proc, base = start_server("--api-key", "sekret")
    try:
        yield base
    finally:
        stop(proc)
