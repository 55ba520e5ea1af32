"""The chat page's side of an OpenAI-compatible API: requests, history → messages, safe rendering.

Pure Python, no Gradio: the page (``vlmctl.ui.app``), the tests and the latency benchmark call
these functions directly.

A conversation is a list of *turns* (plain dicts, so Gradio can keep them in ``gr.State``)::

    {"role": "user", "text": "What is this?", "files": ["/tmp/gradio/…/cat.png"]}
    {"role": "assistant", "text": "A cat.", "error": False}

Each turn's media stays in that turn: ``to_messages`` turns it into ``image_url`` /
``video_url`` parts of *that* user message, so the model sees earlier media where it was
shown, and nothing is merged into the newest turn.
"""
from __future__ import annotations

import asyncio
import base64
import json
import mimetypes
import os
import re
from collections.abc import AsyncIterator, Callable
from functools import lru_cache
from typing import Any

#: Tags the page may show from model output once Markdown is rendered (no img, no links to scripts).
ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "b", "i", "s", "del", "code", "pre", "kbd", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th",
    "td", "a", "span", "sup", "sub",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "code": {"class"},
    "ol": {"start"},
    "th": {"style"},
    "td": {"style"},
    "span": {"style"},
}
#: CSS properties that survive sanitising (syntax colours and table alignment only).
ALLOWED_STYLE_PROPERTIES = {"color", "font-weight", "font-style", "text-align"}

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp"}
VIDEO_EXTENSIONS = {".mp4", ".webm", ".mov", ".mkv", ".avi"}


class ApiError(Exception):
    """A request to the API failed; ``str(exc)`` is a sentence a person can act on."""


# ---------------------------------------------------------------------------------------------
# Rendering: Markdown → HTML → sanitised HTML. Raw HTML in model output is never passed through.


@lru_cache(maxsize=1)
def _markdown():
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.options["highlight"] = _highlight
    return md


def _highlight(code: str, lang: str, _attrs: str) -> str:
    """Colour a fenced code block with Pygments (inline colours, no stylesheet needed)."""
    if not lang:
        return ""
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import get_lexer_by_name
        from pygments.util import ClassNotFound
    except ImportError:
        return ""
    try:
        lexer = get_lexer_by_name(lang, stripall=False)
    except ClassNotFound:
        return ""
    html = highlight(code, lexer, HtmlFormatter(noclasses=True, nowrap=True, style="friendly"))
    return f'<pre><code class="language-{_safe_lang(lang)}">{html}</code></pre>\n'


def _safe_lang(lang: str) -> str:
    return re.sub(r"[^A-Za-z0-9_+-]", "", lang)[:32]


_PRE_BLOCK = re.compile(r"<pre>(.*?)</pre>", re.DOTALL)


def sanitize_html(html: str) -> str:
    """Keep only formatting tags and safe attributes (nh3); scripts, handlers and images go."""
    import nh3

    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        filter_style_properties=ALLOWED_STYLE_PROPERTIES,
        link_rel="noopener noreferrer nofollow",
    )


def render_markdown(text: str) -> str:
    """Model or user text → safe HTML for the chat view.

    Markdown is rendered with raw HTML off (a ``<script>`` in the text becomes visible text),
    then the result is sanitised with nh3 as a second wall. Newlines inside ``<pre>`` become
    ``&#10;`` so the page's own Markdown pass cannot split a code block at a blank line.
    """
    html = sanitize_html(_markdown().render(text or ""))
    html = _PRE_BLOCK.sub(lambda m: "<pre>" + m.group(1).replace("\n", "&#10;") + "</pre>", html)
    return html.strip()


# ---------------------------------------------------------------------------------------------
# History → OpenAI messages


def media_kind(path: str) -> str | None:
    """``"image"``, ``"video"`` or None, from the file's name (then its guessed MIME type)."""
    ext = os.path.splitext(path)[1].lower()
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext in VIDEO_EXTENSIONS:
        return "video"
    mime = mimetypes.guess_type(path)[0] or ""
    if mime.startswith("image/"):
        return "image"
    if mime.startswith("video/"):
        return "video"
    return None


def _mime(path: str, kind: str) -> str:
    mime = mimetypes.guess_type(path)[0]
    if mime and mime.startswith(kind + "/"):
        return mime
    return "image/png" if kind == "image" else "video/mp4"


#: Files up to this size keep their encoded form between turns (16 entries at most).
CACHE_MAX_BYTES = 16 * 1024 * 1024


def _encode(path: str, kind: str) -> str:
    with open(path, "rb") as fh:
        payload = base64.b64encode(fh.read()).decode("ascii")
    return f"data:{_mime(path, kind)};base64,{payload}"


@lru_cache(maxsize=16)
def _data_uri_cached(path: str, mtime_ns: int, size: int, kind: str) -> str:
    return _encode(path, kind)


def data_uri(path: str, kind: str) -> str:
    """The file as a ``data:`` URI; files up to 16 MiB are encoded once, then reused each turn."""
    st = os.stat(path)
    if st.st_size > CACHE_MAX_BYTES:
        return _encode(path, kind)
    return _data_uri_cached(path, st.st_mtime_ns, st.st_size, kind)


def media_part(path: str) -> dict[str, Any]:
    """One ``image_url`` or ``video_url`` content part for a local file (or an http(s) URL)."""
    kind = media_kind(path)
    if kind is None:
        raise ApiError(
            f"'{os.path.basename(path)}' is neither an image nor a video; "
            f"attach {', '.join(sorted(IMAGE_EXTENSIONS | VIDEO_EXTENSIONS))} files."
        )
    url = path if path.startswith(("http://", "https://", "data:")) else data_uri(path, kind)
    key = f"{kind}_url"
    return {"type": key, key: {"url": url}}


def to_messages(
    turns: list[dict[str, Any]], system_prompt: str = "", resend_media: bool = True
) -> list[dict[str, Any]]:
    """Turns → OpenAI chat messages.

    Each user turn's files become ``image_url`` / ``video_url`` parts of that same message,
    before its text. With ``resend_media=False`` only the newest user turn carries its media;
    earlier ones say in words what was shown (shorter prompts, the model loses the pixels).
    Error turns are the page's own notes and are never sent.
    """
    messages: list[dict[str, Any]] = []
    if system_prompt and system_prompt.strip():
        messages.append({"role": "system", "content": system_prompt.strip()})
    last_user = max((i for i, t in enumerate(turns) if t["role"] == "user"), default=-1)
    for index, turn in enumerate(turns):
        if turn.get("error"):
            continue
        if turn["role"] == "assistant":
            messages.append({"role": "assistant", "content": turn.get("text", "")})
            continue
        files = turn.get("files") or []
        if not files:
            messages.append({"role": "user", "content": turn.get("text", "")})
            continue
        parts: list[dict[str, Any]] = []
        if resend_media or index == last_user:
            parts.extend(media_part(f) for f in files)
            text = turn.get("text", "")
        else:
            names = ", ".join(os.path.basename(f) for f in files)
            text = f"[earlier attachment not re-sent: {names}]\n{turn.get('text', '')}".strip()
        if text:
            parts.append({"type": "text", "text": text})
        messages.append({"role": "user", "content": parts})
    return messages


# ---------------------------------------------------------------------------------------------
# HTTP


def normalise_api_base(api_base: str) -> str:
    """``http://host:8000`` → ``http://host:8000/v1``; a URL with a path is kept as given."""
    from vlmctl.endpoint import normalise_api_base as normalise

    return normalise(api_base, "--api-base")


def describe_http_error(status: int, body: str) -> str:
    """A readable sentence for an error response (OpenAI/vLLM/FastAPI bodies understood)."""
    detail = body.strip()
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        data = None
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data.get("message")))
        if isinstance(err, dict):
            detail = str(err.get("message") or err)
        elif err is not None:
            detail = str(err)
    detail = detail[:600] if detail else "(empty response body)"
    lowered = detail.lower()
    if "context length" in lowered or "maximum context" in lowered or "too long" in lowered:
        return (
            f"The conversation no longer fits the model's context (HTTP {status}): {detail} "
            "Clear the history, attach fewer or smaller images/videos, or lower max tokens."
        )
    if status in (401, 403):
        return f"The API refused the key (HTTP {status}): {detail} Start the page with --api-key."
    if status == 404:
        return f"Not found (HTTP {status}): {detail} Pick another model or check --api-base."
    if status == 429:
        return f"The server is busy (HTTP 429): {detail} Try again in a moment."
    if status >= 500:
        return f"The server failed (HTTP {status}): {detail}"
    return f"The API rejected the request (HTTP {status}): {detail}"


class ChatClient:
    """Async client for one OpenAI-compatible endpoint (``/models``, streamed ``/chat/completions``)."""

    def __init__(
        self,
        api_base: str,
        api_key: str | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 300.0,
    ) -> None:
        self.api_base = normalise_api_base(api_base)
        self.api_key = api_key
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _client(self, read_timeout: float | None = None):
        import httpx

        timeout = httpx.Timeout(
            connect=self.connect_timeout,
            read=read_timeout or self.read_timeout,
            write=60.0,
            pool=10.0,
        )
        return httpx.AsyncClient(timeout=timeout, headers=self._headers(), trust_env=False)

    async def list_models(self) -> list[dict[str, Any]]:
        """``GET /models``; each entry as the server gave it (``id``, ``max_model_len``, …)."""
        import httpx

        try:
            async with self._client(read_timeout=10.0) as http:
                resp = await http.get(f"{self.api_base}/models")
        except httpx.HTTPError as exc:
            raise ApiError(f"Cannot reach {self.api_base}: {_describe_transport(exc)}") from exc
        if resp.status_code != 200:
            raise ApiError(describe_http_error(resp.status_code, resp.text))
        try:
            return list(resp.json().get("data", []))
        except (ValueError, AttributeError) as exc:
            raise ApiError(f"{self.api_base}/models did not return a model list.") from exc

    async def stream_chat(
        self, model: str, messages: list[dict[str, Any]], params: dict[str, Any] | None = None
    ) -> AsyncIterator[str]:
        """Yield text deltas of a streamed chat completion; raise ApiError on any failure.

        Closing the iterator (Stop, a page closed) closes the HTTP stream; vLLM aborts a
        request whose client went away.
        """
        import httpx

        body = {"model": model, "messages": messages, "stream": True, **(params or {})}
        try:
            async with self._client() as http:
                async with http.stream(
                    "POST", f"{self.api_base}/chat/completions", json=body
                ) as resp:
                    if resp.status_code != 200:
                        text = (await resp.aread()).decode("utf-8", "replace")
                        raise ApiError(describe_http_error(resp.status_code, text))
                    finished = False
                    async for line in resp.aiter_lines():
                        delta, done = _parse_sse_line(line)
                        if delta:
                            yield delta
                        if done:
                            finished = True
                            break
                    if not finished:
                        raise ApiError(
                            "The API closed the stream before the answer was complete "
                            "(the server may have stopped). The partial answer is kept; "
                            "press Regenerate to try again."
                        )
        except httpx.HTTPError as exc:
            raise ApiError(
                f"The connection to {self.api_base} was lost: {_describe_transport(exc)} "
                "The partial answer is kept; press Regenerate to try again."
            ) from exc


def _parse_sse_line(line: str) -> tuple[str, bool]:
    """One server-sent-events line → (text delta, stream finished)."""
    if not line.startswith("data:"):
        return "", False
    data = line[5:].strip()
    if data == "[DONE]":
        return "", True
    try:
        event = json.loads(data)
    except ValueError:
        return "", False
    if isinstance(event, dict) and event.get("error"):
        err = event["error"]
        message = err.get("message") if isinstance(err, dict) else str(err)
        raise ApiError(f"The server reported an error mid-answer: {message}")
    text = ""
    for choice in event.get("choices") or []:
        delta = choice.get("delta") or {}
        text += delta.get("content") or ""
    return text, False


def _describe_transport(exc: Exception) -> str:
    name = type(exc).__name__
    detail = str(exc) or "no details"
    return f"{name}: {detail}."


async def drain_batches(
    stream: AsyncIterator[str],
    heartbeat: float | None = None,
    min_interval: Callable[[], float] | float = 0.0,
) -> AsyncIterator[str]:
    """Re-yield a delta stream, joining whatever arrived while the consumer was busy.

    A reader task pulls from ``stream``; each step yields everything queued so far, so a
    slow page never falls behind the server by a backlog of updates. ``min_interval``
    (seconds, or a function giving them) spaces updates out: the browser re-renders the
    whole answer per update, so long answers at high token rates get fewer, larger ones.
    With ``heartbeat`` (seconds), an empty string is yielded whenever nothing arrived for
    that long, so the consumer can check for Stop even while the model reads a video.
    """
    queue: asyncio.Queue = asyncio.Queue()
    end = object()
    loop = asyncio.get_running_loop()

    async def reader() -> None:
        try:
            async for delta in stream:
                queue.put_nowait(delta)
            queue.put_nowait(end)
        except BaseException as exc:  # handed to the consumer, re-raised there
            queue.put_nowait(exc)

    def take(item, chunks: list[str]):
        """Append queued deltas to ``chunks``; return the end marker or an error if met."""
        while True:
            if item is end or isinstance(item, BaseException):
                return item
            chunks.append(item)
            if queue.empty():
                return None
            item = queue.get_nowait()

    task = asyncio.create_task(reader())
    last_yield = -1e9
    try:
        while True:
            if heartbeat is None:
                item = await queue.get()
            else:
                try:
                    item = await asyncio.wait_for(queue.get(), heartbeat)
                except asyncio.TimeoutError:
                    yield ""
                    continue
            chunks: list[str] = []
            stop = take(item, chunks)
            interval = min_interval() if callable(min_interval) else min_interval
            wait = interval - (loop.time() - last_yield)
            if stop is None and wait > 0:
                await asyncio.sleep(wait)
                if not queue.empty():
                    stop = take(queue.get_nowait(), chunks)
            if chunks:
                last_yield = loop.time()
                yield "".join(chunks)
            if stop is end:
                return
            if stop is not None:
                raise stop
    finally:
        if not task.done():
            task.cancel()
            try:
                await task
            except BaseException:
                pass
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            try:
                await aclose()
            except BaseException:
                pass
