"""`vlmctl ui`: help, bad input, and the real page process against a real API."""
from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests._servers import stop
from vlmctl.cli.main import main

SCRIPTED = Path(__file__).resolve().parent.parent / "ui" / "scripted_server.py"


def test_help_has_examples(capsys):
    assert main(["ui", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Examples:" in out and "--api-base http://127.0.0.1:8000/v1" in out
    assert "127.0.0.1" in out  # the default bind address is stated


def test_bad_api_base_is_one_line_exit_2(capsys):
    assert main(["ui", "--api-base", "localhost:8000"]) == 2
    err = capsys.readouterr().err
    assert "--api-base 'localhost:8000' is not an http(s) URL" in err and "fix:" in err


@pytest.mark.integration
def test_ui_serves_the_page_on_localhost():
    api = subprocess.Popen([sys.executable, str(SCRIPTED), "--port", "0"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    page = None
    try:
        api_port = int(re.match(r"PORT (\d+)", api.stdout.readline()).group(1))
        page = subprocess.Popen(
            [sys.executable, "-m", "vlmctl.cli.main", "ui", "--api-base",
             f"http://127.0.0.1:{api_port}", "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        url = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and url is None:
            line = page.stdout.readline()
            if not line and page.poll() is not None:
                break
            match = re.search(r"Chat page: (http://127\.0\.0\.1:\d+/)", line)
            url = match.group(1) if match else None
        assert url, "vlmctl ui did not print its URL"
        html = urllib.request.urlopen(url, timeout=10).read().decode()
        assert "vlmctl chat" in html
        config = urllib.request.urlopen(url + "config", timeout=10).read().decode()
        assert '"elem_id":"chat-input"' in config.replace(" ", "")
    finally:
        for proc in (page, api):
            if proc is not None:
                stop(proc)


def test_busy_port_is_one_line_exit_2():
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "vlmctl.cli.main", "ui", "--api-base", "http://127.0.0.1:9/v1",
             "--port", str(port)],
            capture_output=True, text=True, timeout=120,
        )
    assert result.returncode == 2, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in result.stderr
    assert "Traceback" not in result.stderr
