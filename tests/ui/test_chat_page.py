"""The chat page in a real headless Chromium, against a real scripted OpenAI-compatible server.

Normal flows (question, image, video, regenerate, stop, clear, edit) also run against
``vlmctl serve``'s embedded demo in ``test_demo_page.py``; injection and failure cases need
scripted replies and stay here. Screenshots of every step: artifacts/ui/.
"""
from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def _last_request(api) -> dict:
    return api.log()["requests"][-1]


def _outcome_within_5s(api, wanted: str) -> str | None:
    """The last request's outcome once it is ``wanted`` (polled for up to 5 s), else the last one seen."""
    outcome = None
    for _ in range(50):
        outcome = _last_request(api)["outcome"]
        if outcome == wanted:
            break
        time.sleep(0.1)
    return outcome


def test_question_streams_an_answer(chat, scripted_page):
    chat.open(scripted_page.url)
    assert "Connected" in chat.page.locator("#endpoint-status").inner_text()
    assert chat.page.locator("#model-select input").input_value() == "scripted-model"
    chat.page.evaluate("""() => {
        window.__answerLengths = [];
        new MutationObserver(() => {
            const all = document.querySelectorAll('#chatbot [data-testid="bot"]');
            if (all.length) window.__answerLengths.push(all[all.length - 1].innerText.length);
        }).observe(document.querySelector('#chatbot'), {subtree: true, childList: true, characterData: true});
    }""")
    chat.send("What is **vlmctl**?")
    chat.wait_state("done")
    chat.shot("answered")
    answers = chat.answers()
    assert len(answers) == 1 and answers[0].startswith("You said: What is vlmctl?")
    lengths = sorted(set(chat.page.evaluate("window.__answerLengths")))
    assert len(lengths) >= 3, f"the answer arrived in one piece, not streamed: {lengths}"
    assert chat.user_messages() == 1


def test_image_turn_reaches_the_model_in_its_own_turn(chat, scripted_page, scripted_api, media):
    chat.open(scripted_page.url)
    chat.attach(media["png"], media["png"])
    chat.shot("attached")
    chat.send("What is in these images?")
    chat.wait_state("done")
    assert "This turn has 2 image(s) and 0 video(s)" in chat.answers()[-1]
    sent = _last_request(scripted_api)["messages"]
    parts = sent[-1]["content"]
    assert [p["type"] for p in parts] == ["image_url", "image_url", "text"]
    assert parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
    expect(chat.page.locator('#chatbot [data-testid="user"] img')).to_have_count(2, timeout=15_000)
    chat.shot("image-answered")

    chat.send("And now?")
    chat.wait_state("done")
    assert "This turn has 0 image(s)" in chat.answers()[-1]
    sent = _last_request(scripted_api)["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert [p["type"] for p in sent[0]["content"]] == ["image_url", "image_url", "text"]
    assert sent[2]["content"] == "And now?"
    chat.shot("follow-up")


def test_video_turn(chat, scripted_page, scripted_api, media):
    chat.open(scripted_page.url)
    chat.attach(media["mp4"])
    chat.send("Describe the clip.")
    chat.wait_state("done")
    assert "0 image(s) and 1 video(s)" in chat.answers()[-1]
    parts = _last_request(scripted_api)["messages"][-1]["content"]
    assert parts[0]["type"] == "video_url"
    assert parts[0]["video_url"]["url"].startswith("data:video/mp4;base64,")
    expect(chat.page.locator('#chatbot [data-testid="user"] video')).to_have_count(1, timeout=15_000)
    chat.shot("video-answered")


def test_regenerate_replaces_the_last_answer(chat, scripted_page, scripted_api):
    chat.open(scripted_page.url)
    chat.send("first")
    chat.wait_state("done")
    chat.send("second")
    chat.wait_state("done")
    before = _last_request(scripted_api)["messages"]
    chat.click("regen-btn")
    chat.wait_state("done")
    chat.shot("regenerated")
    answers = chat.answers()
    assert len(answers) == 2 and chat.user_messages() == 2
    assert answers[-1].startswith("You said: second.")
    assert _last_request(scripted_api)["messages"] == before


def test_stop_halts_a_long_answer_server_side(chat, scripted_page, scripted_api):
    chat.open(scripted_page.url)
    chat.send("Write a LONG essay.")
    chat.wait_answer_text("t.includes('word10')", count=1)
    assert chat.activity() == "busy"
    chat.click("stop-btn")
    chat.wait_state("stopped", timeout=15)
    length = len(chat.answers()[-1])
    time.sleep(1.0)
    assert len(chat.answers()[-1]) == length, "the answer kept growing after Stop"
    assert "(stopped)" in chat.answers()[-1] and "word2999" not in chat.answers()[-1]
    chat.shot("stopped")
    assert _outcome_within_5s(scripted_api, "cancelled") == "cancelled", "the server never saw the request go away"
    chat.send("still there?")
    chat.wait_state("done")
    assert chat.answers()[-1].startswith("You said: still there?")


def test_clear_empties_the_chat(chat, scripted_page, scripted_api):
    chat.open(scripted_page.url)
    chat.send("remember this")
    chat.wait_state("done")
    chat.click("clear-btn")
    chat.page.wait_for_function("() => !document.querySelector('#chatbot [data-testid=\"user\"]')")
    chat.shot("cleared")
    assert chat.answers() == []
    chat.send("fresh start")
    chat.wait_state("done")
    assert [m["role"] for m in _last_request(scripted_api)["messages"]] == ["user"]


def test_edit_and_resend_the_last_message(chat, scripted_page, scripted_api, media):
    chat.open(scripted_page.url)
    chat.send("one")
    chat.wait_state("done")
    chat.attach(media["png"])
    chat.send("tow")
    chat.wait_state("done")
    chat.click("edit-btn")
    chat.page.wait_for_function("() => document.querySelector('#chat-input textarea').value === 'tow'")
    assert chat.user_messages() == 1
    chat.textarea.fill("two")
    chat.textarea.press("Enter")
    chat.wait_state("done")
    chat.shot("edited")
    assert chat.answers()[-1].startswith("You said: two. This turn has 1 image(s)")
    assert [m["role"] for m in _last_request(scripted_api)["messages"]] == ["user", "assistant", "user"]


def test_system_prompt_and_sampling_overrides_are_sent(chat, scripted_page, scripted_api):
    chat.open(scripted_page.url)
    chat.toggle_settings()
    system = chat.page.locator("#system-prompt textarea")
    system.wait_for(state="visible")
    chat.page.wait_for_timeout(500)  # the accordion mounts its children as it opens
    system.click()
    system.press_sequentially("Answer in French.")
    system.press("Tab")
    expect(system).to_have_value("Answer in French.")
    chat.page.wait_for_timeout(300)
    chat.send("defaults")
    chat.wait_state("done")
    request = _last_request(scripted_api)
    shown = system.input_value()
    assert request["messages"][0] == {"role": "system", "content": "Answer in French."}, shown
    assert "temperature" not in request["params"] and request["params"]["max_tokens"] == 1024
    chat.page.get_by_label("Use the model's sampling defaults").uncheck()
    chat.page.wait_for_timeout(300)
    chat.send("overrides")
    chat.wait_state("done")
    params = _last_request(scripted_api)["params"]
    assert params["temperature"] == 0.7 and params["top_p"] == 0.8
    assert params["repetition_penalty"] == 1.05 and params["stream"] is True
    chat.shot("settings")


def test_no_injection_from_model_output_file_names_or_plan(chat, scripted_page, media):
    chat.open(scripted_page.url)
    chat.attach(media["evil_png"])
    chat.send("INJECT something")
    chat.wait_state("done")
    chat.shot("injection")
    assert chat.dialogs == []
    injected = chat.page.evaluate("""() => ({
        imgs: [...document.querySelectorAll('img')].filter(i => i.getAttribute('src') === 'x').length,
        handlers: [...document.querySelectorAll('*')].filter(e =>
            [...e.attributes].some(a => a.name.startsWith('on'))).length,
        scripts: document.querySelectorAll('#chatbot script, #plan-panel script').length,
        iframes: document.querySelectorAll('#chatbot iframe').length,
        jsLinks: [...document.querySelectorAll('a')].filter(a =>
            (a.getAttribute('href') || '').startsWith('javascript')).length,
        planBold: document.querySelectorAll('#plan-panel b').length,
    })""")
    assert injected == {"imgs": 0, "handlers": 0, "scripts": 0, "iframes": 0, "jsLinks": 0, "planBold": 0}
    answer = chat.answers()[-1]
    assert "<img src=x onerror=alert(1)>" in answer and "<script>alert(2)</script>" in answer
    assert "print('<b>ok</b>')" in answer  # code blocks keep their angle brackets
    assert "<script>alert(5)</script>" in chat.page.locator("#plan-panel").inner_text()
    chat.page.wait_for_timeout(500)
    assert chat.dialogs == []


@pytest.mark.parametrize("trigger,expected", [
    ("HTTP500", "The server failed (HTTP 500): engine crashed <b>badly</b>"),
    ("HTTP400CTX", "no longer fits the model's context"),
    ("DISCONNECT", "was lost: RemoteProtocolError"),
])
def test_api_errors_show_in_the_chat_and_the_page_keeps_working(chat, scripted_page, trigger, expected):
    chat.open(scripted_page.url)
    chat.send(f"please {trigger}")
    chat.wait_state("error")
    chat.shot(trigger.lower())
    answers = chat.answers()
    assert expected in answers[-1] and answers[-1].startswith("Error:")
    assert chat.page.locator('#chatbot [data-testid="bot"]').last.get_by_text("Error:").is_visible()
    if trigger == "DISCONNECT":
        assert "partial4" in answers[-2], "the partial answer was lost"
    assert chat.dialogs == []
    chat.send("hello again")
    chat.wait_state("done")
    assert chat.answers()[-1].startswith("You said: hello again.")


def test_api_going_away_mid_answer_shows_an_error(chat, own_scripted_api, page_server):
    page = page_server(own_scripted_api.api_base)
    chat.open(page.url)
    chat.send("LONG answer please")
    chat.wait_answer_text("t.includes('word5')", count=1)
    own_scripted_api.kill()
    chat.wait_state("error", timeout=20)
    chat.shot("api-gone")
    answers = chat.answers()
    assert "was lost" in answers[-1] or "closed the stream" in answers[-1]
    assert "word5" in answers[-2]
    chat.page.locator("button:has-text('↻')").click()
    chat.page.wait_for_function(
        "() => document.querySelector('#endpoint-status').innerText.includes('unreachable')",
        timeout=20_000,
    )
    chat.shot("status-unreachable")


_DROP_OR_PASTE_JS = """async ([b64, name, kind]) => {
  const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, {type: 'image/png'}));
  const box = document.querySelector('#chat-input textarea');
  if (kind === 'drop') {
    for (const type of ['dragenter', 'dragover', 'drop'])
      box.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: transfer}));
  } else {
    box.dispatchEvent(new ClipboardEvent('paste', {bubbles: true, cancelable: true, clipboardData: transfer}));
  }
}"""


def test_drag_and_drop_and_paste_attach_images(chat, scripted_page, scripted_api, media):
    import base64

    chat.open(scripted_page.url)
    png = base64.b64encode(media["png"].read_bytes()).decode()
    chat.page.evaluate(_DROP_OR_PASTE_JS, [png, "dropped.png", "drop"])
    chat.page.wait_for_function("() => document.querySelectorAll('#chat-input img').length === 1")
    chat.page.evaluate(_DROP_OR_PASTE_JS, [png, "pasted.png", "paste"])
    chat.page.wait_for_function("() => document.querySelectorAll('#chat-input img').length === 2")
    chat.shot("dropped-and-pasted")
    chat.send("Two ways in.")
    chat.wait_state("done")
    assert "This turn has 2 image(s)" in chat.answers()[-1]
    parts = _last_request(scripted_api)["messages"][-1]["content"]
    assert [p["type"] for p in parts] == ["image_url", "image_url", "text"]


def test_markdown_and_code_blocks_render(chat, scripted_page, media):
    chat.open(scripted_page.url)
    chat.attach(media["png"])
    chat.send("Describe this image in MARKDOWN, with code to redraw it.")
    chat.wait_state("done")
    last = chat.page.locator('#chatbot [data-testid="bot"]').last
    assert last.locator("h3").inner_text() == "What I see"
    assert last.locator("li").count() == 2 and last.locator("table td").count() == 4
    assert last.locator("strong").first.inner_text() == "1 image(s)"
    code = last.locator("pre code").inner_text()
    assert 'Image.new("RGB", (96, 64), (220, 40, 40))' in code
    assert "ImageDraw\n\nimage" in code, "the blank line inside the code block was lost"
    assert last.locator("pre code span[style]").count() > 3, "no syntax colours"
    chat.shot("markdown")


def test_stop_before_the_first_token(chat, scripted_page, scripted_api):
    chat.open(scripted_page.url)
    chat.send("SLOWSTART: think hard first")
    chat.wait_state("busy")
    time.sleep(0.5)
    started = time.monotonic()
    chat.click("stop-btn")
    chat.wait_state("stopped", timeout=10)
    assert time.monotonic() - started < 5
    assert chat.answers()[-1] == "(stopped before the first token)"
    assert _outcome_within_5s(scripted_api, "cancelled") == "cancelled"
    chat.shot("stopped-early")


def test_two_people_stream_at_the_same_time(browser, scripted_page):
    from tests.ui.conftest import ChatPage

    contexts = [browser.new_context(viewport={"width": 1280, "height": 900}) for _ in range(2)]
    try:
        pages = [ChatPage(ctx.new_page(), f"concurrent-{i}").open(scripted_page.url)
                 for i, ctx in enumerate(contexts)]
        for page in pages:
            page.send("LONG story for two")
        for page in pages:  # both stream at once: neither waits for the other to finish
            page.wait_answer_text("t.includes('word20')", count=1, timeout=20)
            assert page.activity() == "busy"
        for page in pages:
            page.click("stop-btn")
            page.wait_state("stopped", timeout=10)
        assert all(p.answers()[-1].endswith("(stopped)") for p in pages)
    finally:
        for ctx in contexts:
            ctx.close()


def test_copy_answer_copies_the_markdown(browser, scripted_page):
    from tests.ui.conftest import ChatPage

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        context.grant_permissions(["clipboard-read", "clipboard-write"])
        chat = ChatPage(context.new_page(), "copy").open(scripted_page.url)
        chat.send("MARKDOWN please")
        chat.wait_state("done")
        chat.page.wait_for_timeout(300)
        chat.click("copy-btn")
        chat.page.wait_for_timeout(300)
        copied = chat.page.evaluate("navigator.clipboard.readText()")
        assert copied.startswith("### What I see") and "```python\nfrom PIL import" in copied
        assert "<p>" not in copied
    finally:
        context.close()


def test_page_stays_local_and_offers_no_share_upload(chat, scripted_page, media):
    outside: list[str] = []
    chat.page.on("request", lambda r: None if r.url.startswith(
        ("http://127.0.0.1", "data:", "blob:")) else outside.append(r.url))
    chat.open(scripted_page.url)
    chat.attach(media["png"])
    chat.send("hello")
    chat.wait_state("done")
    expect(chat.page.locator('#chatbot [data-testid="user"] img')).to_have_count(1, timeout=15_000)
    share = chat.page.locator('#chatbot button[aria-label="Share"]')
    assert not any(share.nth(i).is_visible() for i in range(share.count())), "Share uploads to huggingface.co"
    assert outside == [], f"the page reached outside 127.0.0.1: {outside}"
