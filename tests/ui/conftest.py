"""Fixtures for the chat page: a scripted OpenAI-compatible server, the page, headless Chromium."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests._servers import free_port

HERE = Path(__file__).parent
REPO = HERE.parent.parent
ARTIFACTS = REPO / "artifacts" / "ui"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


class ScriptedServer:
    """``tests/ui/scripted_server.py`` in its own process; ``kill()`` makes the API go away."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "scripted_server.py"), "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        line = self.proc.stdout.readline()
        match = re.match(r"PORT (\d+)", line or "")
        if not match:
            self.kill()
            raise RuntimeError(f"scripted server did not start: {line!r}")
        self.port = int(match.group(1))
        self.api_base = f"http://127.0.0.1:{self.port}/v1"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.api_base + "/models", timeout=1).read()
                return
            except OSError:
                time.sleep(0.1)
        self.kill()
        raise RuntimeError("scripted server did not answer /v1/models within 20 s")

    def log(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_log", timeout=5) as resp:
            return json.load(resp)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def scripted_api():
    server = ScriptedServer()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def own_scripted_api():
    """A scripted server for one test (it may be killed on purpose)."""
    server = ScriptedServer()
    try:
        yield server
    finally:
        server.kill()


class PageServer:
    """``build_app`` launched in this process on a free 127.0.0.1 port."""

    def __init__(self, api_base: str, info: dict | None = None) -> None:
        from vlmctl.ui.app import build_app

        self.demo = build_app(api_base, None, info)
        port = free_port()
        self.demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True,
                         quiet=True, footer_links=[])
        self.url = f"http://127.0.0.1:{port}/"

    def close(self) -> None:
        self.demo.close()


@pytest.fixture
def page_server():
    """Start chat pages for one test: ``page_server(api_base, info=None)``; all closed after."""
    started: list[PageServer] = []

    def start(api_base: str, info: dict | None = None) -> PageServer:
        started.append(PageServer(api_base, info))
        return started[-1]

    try:
        yield start
    finally:
        for page in started:
            page.close()


@pytest.fixture(scope="session")
def scripted_page(scripted_api):
    """The chat page in front of the session's scripted server."""
    page = PageServer(scripted_api.api_base, info={
        "model": "scripted-model", "tensor_parallel_size": 2, "pipeline_parallel_size": 1,
        "dtype": "bfloat16", "max_model_len": 4096, "gpus": ["2× <b>A100</b>-80GB"],
        "demo": True, "demo_notice": "Scripted <script>alert(5)</script> replies.",
    })
    try:
        yield page
    finally:
        page.close()


@pytest.fixture(scope="module")
def browser():
    """Headless Debian chromium. Module-scoped: Playwright's sync API runs an event loop in this
    thread while it lives, which would break ``asyncio.run`` in tests collected after ours."""
    if not os.path.exists(CHROMIUM) and not shutil.which("chromium"):
        pytest.skip("Debian chromium is not installed (/usr/bin/chromium); "
                    "scripts/setup-env.sh installs it when run as root")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        exe = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
        chromium = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class ChatPage:
    """What a person does on the page, with bounded waits; screenshots go to artifacts/ui/."""

    def __init__(self, page, name: str) -> None:
        self.page = page
        self.name = name
        self.dialogs: list[str] = []
        self.step = 0
        page.on("dialog", self._on_dialog)

    def _on_dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def open(self, url: str) -> "ChatPage":
        self.page.goto(url, timeout=30_000)
        self.page.wait_for_selector("#endpoint-status", timeout=30_000)
        self.page.wait_for_function(
            "() => !document.querySelector('#endpoint-status').innerText.includes('Checking')",
            timeout=30_000,
        )
        return self

    @property
    def textarea(self):
        return self.page.locator("#chat-input textarea")

    def attach(self, *paths: str | Path) -> None:
        self.page.locator("#chat-input input[type=file]").set_input_files([str(p) for p in paths])
        # Uploads finish when the previews show up in the box.
        self.page.wait_for_function(
            f"() => document.querySelectorAll('#chat-input .thumbnail-item, #chat-input img,"
            f" #chat-input video').length >= {len(paths)}",
            timeout=30_000,
        )

    def _mark_stale(self) -> None:
        """Forget the last activity state, so ``wait_state`` waits for the next one."""
        self.page.evaluate("() => { const e = document.querySelector('#chat-activity .vlmctl-activity');"
                           " if (e) e.dataset.state = 'sent'; }")

    def send(self, text: str) -> None:
        self._mark_stale()
        self.textarea.fill(text)
        self.textarea.press("Enter")

    def click(self, elem_id: str) -> None:
        self._mark_stale()
        self.page.locator(f"#{elem_id}").click()

    def toggle_settings(self) -> None:
        self.page.locator("#chat-settings").get_by_role("button").first.click()

    def answers(self) -> list[str]:
        return self.page.locator('#chatbot [data-testid="bot"]').all_inner_texts()

    def user_messages(self) -> int:
        return self.page.locator('#chatbot [data-testid="user"]').count()

    def activity(self) -> str:
        return self.page.locator("#chat-activity .vlmctl-activity").get_attribute("data-state") or ""

    def wait_state(self, *states: str, timeout: float = 60) -> str:
        wanted = json.dumps(list(states))
        self.page.wait_for_function(
            f"() => {{ const e = document.querySelector('#chat-activity .vlmctl-activity');"
            f" return e && {wanted}.includes(e.dataset.state); }}",
            timeout=timeout * 1000,
        )
        return self.activity()

    def wait_answer_text(self, predicate_js: str, timeout: float = 30, count: int | None = None) -> None:
        """Wait until the last answer's text satisfies ``predicate_js`` (a JS expression on ``t``),
        and, with ``count``, until there are exactly that many answers."""
        need = "true" if count is None else f"all.length === {count}"
        self.page.wait_for_function(
            "() => { const all = document.querySelectorAll('#chatbot [data-testid=\"bot\"]');"
            f" if (!all.length || !({need})) return false; const t = all[all.length - 1].innerText;"
            f" return {predicate_js}; }}",
            timeout=timeout * 1000,
        )

    def shot(self, label: str) -> Path:
        self.step += 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{self.step:02d}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def chat(browser, request):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", request.node.name)[:60]
    try:
        yield ChatPage(page, name)
    finally:
        context.close()


@pytest.fixture(scope="session")
def media(tmp_path_factory):
    """A small PNG, a 2-second H.264 MP4, and a PNG whose file name is an HTML injection."""
    from PIL import Image, ImageDraw

    folder = tmp_path_factory.mktemp("media")
    image = Image.new("RGB", (96, 64), (220, 40, 40))
    ImageDraw.Draw(image).rectangle((30, 16, 66, 48), fill=(250, 250, 250))
    png = folder / "red-square.png"
    image.save(png)
    evil = folder / "<img src=x onerror=alert(7)>.png"
    shutil.copy(png, evil)
    mp4 = folder / "clip.mp4"
    _write_clip(mp4)
    return {"png": png, "evil_png": evil, "mp4": mp4}


def _write_clip(path: Path, frames: int = 16) -> None:
    import av
    import numpy as np

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(frames):
            frame = np.zeros((64, 64, 3), np.uint8)
            frame[:, :, 0] = i * 15
            frame[i * 3:i * 3 + 8, :, 1] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
