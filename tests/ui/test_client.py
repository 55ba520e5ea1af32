"""The chat page's client side: rendering, history → messages, errors, real HTTP streaming."""
from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import time

import pytest

from vlmctl.errors import ConfigError
from vlmctl.ui.client import (
    ApiError,
    ChatClient,
    describe_http_error,
    drain_batches,
    media_part,
    normalise_api_base,
    render_markdown,
    to_messages,
)


def _run(coro):
    """asyncio.run in a worker thread (Playwright's sync API may own this thread's loop)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result(timeout=60)


def _elements(html: str) -> list[tuple[str, dict]]:
    """Every element the browser would build from ``html``: (tag, attributes)."""
    from html.parser import HTMLParser

    found: list[tuple[str, dict]] = []

    class Collector(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, dict(attrs)))

    Collector().feed(html)
    for _, attrs in found:
        assert not any(name.startswith("on") for name in attrs), attrs
    return found


@pytest.mark.parametrize("attack", [
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "<iframe src=javascript:alert(1)></iframe>",
    '<a href="javascript:alert(1)">x</a>',
    "<svg onload=alert(1)>",
])
def test_render_never_passes_raw_html(attack):
    html = render_markdown(f"before {attack} after")
    elements = _elements(html)
    assert {tag for tag, _ in elements} == {"p"}
    assert "&lt;" in html  # shown as text, not dropped


def test_render_drops_javascript_links_keeps_https():
    html = render_markdown("[bad](javascript:alert(1)) [good](https://example.org)")
    hrefs = [attrs.get("href") for tag, attrs in _elements(html) if tag == "a"]
    assert hrefs == ["https://example.org"]
    assert 'rel="noopener noreferrer nofollow"' in html


def test_render_code_block_keeps_blank_lines_and_angle_brackets():
    html = render_markdown("```python\nif a < b:\n\n    print('<b>')\n```")
    assert html.count("<pre>") == 1
    pre = html[html.index("<pre>"):html.index("</pre>")]
    assert "\n" not in pre and "&#10;&#10;" in pre
    assert "&lt;b&gt;" in pre and "<b>" not in pre


def test_render_markdown_basics():
    html = render_markdown("# Title\n\n**bold** and `code`\n\n| a | b |\n|---|---|\n| 1 | 2 |")
    assert "<h1>Title</h1>" in html and "<strong>bold</strong>" in html
    assert "<code>code</code>" in html and "<table>" in html


def test_messages_keep_media_in_their_own_turn(tmp_path):
    png, mp4 = tmp_path / "a.png", tmp_path / "b.mp4"
    png.write_bytes(b"\x89PNG fake")
    mp4.write_bytes(b"fake mp4")
    turns = [
        {"role": "user", "text": "look", "files": [str(png)]},
        {"role": "assistant", "text": "a picture"},
        {"role": "assistant", "text": "oops", "error": True},
        {"role": "user", "text": "and this", "files": [str(mp4)]},
        {"role": "assistant", "text": "a video"},
        {"role": "user", "text": "compare them", "files": []},
    ]
    messages = to_messages(turns, system_prompt="Be brief.")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    first, second = messages[1]["content"], messages[3]["content"]
    assert first[0]["type"] == "image_url"
    assert first[0]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()
    assert first[1] == {"type": "text", "text": "look"}
    assert second[0]["type"] == "video_url"
    assert second[0]["video_url"]["url"].startswith("data:video/mp4;base64,")
    assert messages[5]["content"] == "compare them"


def test_messages_without_resending_media(tmp_path):
    png = tmp_path / "cat.png"
    png.write_bytes(b"png")
    turns = [
        {"role": "user", "text": "look", "files": [str(png)]},
        {"role": "assistant", "text": "a cat"},
        {"role": "user", "text": "again", "files": [str(png)]},
    ]
    messages = to_messages(turns, resend_media=False)
    assert messages[0]["content"] == [
        {"type": "text", "text": "[earlier attachment not re-sent: cat.png]\nlook"}
    ]
    assert messages[2]["content"][0]["type"] == "image_url"


def test_media_part_rejects_other_files(tmp_path):
    doc = tmp_path / "notes.txt"
    doc.write_text("x")
    with pytest.raises(ApiError, match="neither an image nor a video"):
        media_part(str(doc))


@pytest.mark.parametrize("status,body,expected", [
    (400, '{"error": {"message": "This model\'s maximum context length is 4096 tokens."}}',
     "no longer fits the model's context"),
    (401, '{"error": {"message": "bad key"}}', "--api-key"),
    (404, '{"detail": "model x not found"}', "model x not found"),
    (500, "", "(empty response body)"),
    (503, "<html>down</html>", "HTTP 503"),
])
def test_http_errors_are_sentences(status, body, expected):
    assert expected in describe_http_error(status, body)


def test_api_base_normalised():
    assert normalise_api_base("http://h:8000") == "http://h:8000/v1"
    assert normalise_api_base("http://h:8000/v1/") == "http://h:8000/v1"
    assert normalise_api_base("https://h/openai/v1") == "https://h/openai/v1"
    with pytest.raises(ConfigError, match="not an http"):
        normalise_api_base("h:8000")


def test_drain_batches_joins_what_queued_up():
    async def source():
        for i in range(50):
            yield f"{i} "

    async def run():
        batches = []
        async for batch in drain_batches(source()):
            batches.append(batch)
            await asyncio.sleep(0.01)  # a slow page
        return batches

    batches = _run(run())
    assert "".join(batches) == "".join(f"{i} " for i in range(50))
    assert len(batches) < 50


@pytest.mark.integration
def test_stream_and_errors_over_real_http(scripted_api):
    client = ChatClient(scripted_api.api_base)

    async def collect(text):
        out = ""
        async for delta in client.stream_chat("scripted-model", [{"role": "user", "content": text}]):
            out += delta
        return out

    assert [m["id"] for m in _run(client.list_models())] == ["scripted-model"]
    assert _run(collect("hi")).startswith("You said: hi.")
    with pytest.raises(ApiError, match="HTTP 500"):
        _run(collect("HTTP500"))
    with pytest.raises(ApiError, match="no longer fits"):
        _run(collect("HTTP400CTX"))
    with pytest.raises(ApiError, match="closed the stream|connection .* was lost"):
        _run(collect("DISCONNECT"))


@pytest.mark.integration
def test_api_key_is_sent_as_bearer(scripted_api):
    client = ChatClient(scripted_api.api_base, api_key="s3cret")

    async def one():
        async for _ in client.stream_chat("scripted-model", [{"role": "user", "content": "hi"}]):
            pass

    _run(one())
    assert scripted_api.log()["requests"][-1]["authorization"] == "Bearer s3cret"


@pytest.mark.integration
def test_closing_the_stream_cancels_server_side(scripted_api):
    client = ChatClient(scripted_api.api_base)

    async def read_a_little():
        stream = drain_batches(client.stream_chat("scripted-model", [{"role": "user", "content": "LONG"}]))
        got = ""
        async for batch in stream:
            got += batch
            if "word3" in got:
                break
        await stream.aclose()
        return got

    assert "word3" in _run(read_a_little())
    deadline_outcome = None
    for _ in range(50):
        deadline_outcome = scripted_api.log()["requests"][-1]["outcome"]
        if deadline_outcome == "cancelled":
            break
        time.sleep(0.1)
    assert deadline_outcome == "cancelled"


@pytest.mark.integration
def test_unreachable_endpoint_is_a_sentence():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ApiError, match="Cannot reach"):
        _run(ChatClient(f"http://127.0.0.1:{port}/v1").list_models())
