"""The API key: from a file or the environment, never in `ps` or a log, protecting /v1, /metrics and the
chat page; a key that cannot travel in an HTTP header is one clear line, exit 2."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests._servers import _descendant_groups, _vlmctl, demo_server, group_members

httpx = pytest.importorskip("httpx", reason="needs the demo extra")

KEY = "k3y-from-a-file-0123456789"


def _cmdlines(pid: int) -> str:
    pids = {pid, *(p for g in {pid} | _descendant_groups(pid) for p in group_members(g, zombies=True))}
    out = []
    for p in pids:
        try:
            out.append(Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            pass
    return "\n".join(out)


@pytest.mark.integration
def test_key_file_protects_v1_and_metrics_and_stays_out_of_ps_and_logs(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    (tmp_path / "logs").mkdir()
    with demo_server(args=("--api-key-file", str(key_file)), log_dir=str(tmp_path / "logs")) as server:
        good = {"Authorization": f"Bearer {KEY}"}
        assert httpx.get(f"{server.api_base}/models").status_code == 401
        assert httpx.get(f"{server}/metrics").status_code == 401
        assert httpx.get(f"{server}/metrics", headers=good).status_code == 200
        assert httpx.get(f"{server.api_base}/models", headers=good).status_code == 200
        assert httpx.get(f"{server}/health").status_code == 200
        leaked = httpx.get(f"{server.api_base}/models?api_key={KEY}")  # a client that puts it in the URL
        assert leaked.status_code == 401
        assert KEY not in _cmdlines(server.pid)
        logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "logs").iterdir())
        assert "/v1/models?api_key=<redacted>" in logs and KEY not in logs


@pytest.mark.parametrize("key", ["ключ-пароль", "tab\tinside", "ünïcödé"])
def test_a_key_that_cannot_be_an_http_header_is_one_line_exit_2(key, tmp_path):
    env = {**os.environ, "VLMCTL_API_KEY": key, "NO_COLOR": "1"}
    proc = subprocess.run([*_vlmctl(), "serve", "--dry-run"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("error: the API key from VLMCTL_API_KEY has")
    assert "api-key-file" in proc.stderr


def test_key_sources_and_their_warnings(tmp_path, monkeypatch):
    from vlmctl.errors import ConfigError
    from vlmctl.serve.safety import read_api_key

    key_file = tmp_path / "key"
    key_file.write_text("abc\n")
    key_file.chmod(0o644)
    key, warnings = read_api_key(None, str(key_file))
    assert key == "abc" and "chmod 600" in warnings[0]
    key, warnings = read_api_key("def", None)
    assert key == "def" and "`ps`" in warnings[0]
    monkeypatch.setenv("VLLM_API_KEY", "from-vllm")
    assert read_api_key(None, None) == ("from-vllm", [])
    monkeypatch.setenv("VLMCTL_API_KEY", "from-vlmctl")
    assert read_api_key(None, None)[0] == "from-vlmctl"
    for bad in (tmp_path / "missing", tmp_path):
        with pytest.raises(ConfigError):
            read_api_key(None, str(bad))
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="no key"):
        read_api_key(None, str(tmp_path / "empty"))


def test_help_shows_no_key_on_the_command_line():
    proc = subprocess.run([*_vlmctl(), "serve", "--help"], capture_output=True, text=True, timeout=60)
    examples = proc.stdout.split("Examples:")[1].split("Options:")[0]
    assert "--api-key-file" in examples and '--api-key "' not in examples and "--api-key K" not in examples


@pytest.mark.slow
@pytest.mark.integration
def test_chat_page_asks_for_the_key():
    pytest.importorskip("gradio", reason="the chat page needs the ui extra")
    with demo_server(api_key=KEY, ui=True) as server:
        assert httpx.get(f"{server}/health").json()["chat_path"] == "/chat"
        config = httpx.get(f"{server}/chat/config", follow_redirects=True, timeout=30)
        assert config.status_code == 401 and "key as the password" in config.text  # Gradio's login, not the chat
        with httpx.Client(base_url=str(server), timeout=30, follow_redirects=True) as browser:
            assert browser.post("/chat/login", data={"username": "me", "password": "wrong"}).status_code == 400
            assert browser.post("/chat/login", data={"username": "me", "password": KEY}).status_code == 200
            assert browser.get("/chat/config").status_code == 200
