"""The normal flows on the page `vlmctl serve` mounts at /chat, in front of the embedded demo model.

The demo model is tiny and random, so answers are checked for arriving, streaming, being
replaced or stopping, not for what they say (tests/ui/test_chat_page.py checks content
against a scripted server). Screenshots: artifacts/ui/.
"""
from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from tests._servers import metric, scrape

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]


class ServedChat(str):
    """The page URL, plus ``metric(name)`` read from the same server's /metrics."""

    base: str

    def metric(self, name: str) -> float:
        return metric(scrape(self.base), name)


@pytest.fixture(scope="module")
def served_chat():
    """`vlmctl serve` (CPU demo) with the chat page mounted; yields the page URL."""
    from tests._servers import demo_server

    with demo_server(ui=True) as url:
        served = ServedChat(f"{url}/chat/")
        served.base = str(url)
        yield served


@pytest.fixture(scope="module")
def big_png(tmp_path_factory):
    """448×448: enough image tokens to see the image arrive in the prompt."""
    from PIL import Image, ImageDraw

    path = tmp_path_factory.mktemp("demo-media") / "big.png"
    image = Image.new("RGB", (448, 448), (30, 90, 200))
    ImageDraw.Draw(image).ellipse((100, 100, 348, 348), fill=(250, 200, 0))
    image.save(path)
    return path


def _short_answers(chat, max_tokens: int = 24) -> None:
    """Keep CPU answers short: set max tokens in the Settings panel."""
    chat.toggle_settings()
    number = chat.page.locator("#max-tokens input[type=number]")
    number.fill(str(max_tokens))
    number.press("Tab")
    chat.toggle_settings()


def test_demo_question_image_and_video(chat, served_chat, media, big_png):
    chat.open(served_chat)
    assert "Connected" in chat.page.locator("#endpoint-status").inner_text()
    panel = chat.page.locator("#plan-panel").inner_text()
    assert "vlmctl-demo" in panel and "demo model" in panel.lower()
    _short_answers(chat)

    chat.send("Hello, who are you?")
    chat.wait_state("busy", "done", timeout=120)
    chat.wait_state("done", timeout=120)
    assert chat.answers() and chat.answers()[-1].strip()
    chat.shot("question")

    chat.attach(media["png"])
    chat.send("What is in this image?")
    chat.wait_state("done", "error", timeout=120)
    assert chat.activity() == "done", chat.answers()[-1]
    assert len(chat.answers()) == 2 and chat.answers()[-1].strip()
    expect(chat.page.locator('#chatbot [data-testid="user"] img')).to_have_count(1, timeout=15_000)
    chat.shot("image")

    chat.attach(media["mp4"])
    chat.send("And what happens in this video?")
    chat.wait_state("done", "error", timeout=180)
    assert chat.activity() == "done", chat.answers()[-1]
    assert len(chat.answers()) == 3 and chat.answers()[-1].strip()
    expect(chat.page.locator('#chatbot [data-testid="user"] video')).to_have_count(1, timeout=15_000)
    chat.shot("video")


def test_demo_regenerate_stop_clear(chat, served_chat):
    chat.open(served_chat)
    _short_answers(chat)
    chat.send("Tell me a story.")
    chat.wait_state("done", timeout=120)
    chat.click("regen-btn")
    chat.wait_state("done", timeout=120)
    assert len(chat.answers()) == 1 and chat.user_messages() == 1
    assert chat.answers()[-1].strip()
    chat.shot("regenerated")

    _short_answers(chat, max_tokens=2048)
    # A random-weights model may sample its end-of-text token at any step; when an answer ends on its
    # own before Stop lands, ask again (bounded) so the test is about Stop, not about sampling luck.
    for attempt in range(4):
        chat.send("Now a very long story, please.")
        chat.wait_answer_text("t.length > 40", timeout=120, count=2 + attempt)
        cancelled = served_chat.metric("vlmctl_requests_cancelled_total")
        chat.click("stop-btn")
        if chat.wait_state("stopped", "done", timeout=20) == "stopped":
            break
    else:
        pytest.fail("every long answer ended on its own before Stop could be clicked")
    length = len(chat.answers()[-1])
    time.sleep(1.5)
    assert len(chat.answers()[-1]) == length, "the answer kept growing after Stop"
    assert "(stopped)" in chat.answers()[-1]
    chat.shot("stopped")
    deadline = time.monotonic() + 15
    while served_chat.metric("vlmctl_requests_cancelled_total") <= cancelled:
        assert time.monotonic() < deadline, "the server never cancelled the stopped request"
        time.sleep(0.2)

    chat.click("clear-btn")
    chat.page.wait_for_function("() => !document.querySelector('#chatbot [data-testid=\"user\"]')")
    assert chat.answers() == []
    chat.shot("cleared")
