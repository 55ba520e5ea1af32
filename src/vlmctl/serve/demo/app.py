"""The demo server's OpenAI-compatible surface (FastAPI): chat completions, models, health, metrics.

Imported only by the server process (it imports FastAPI at module level so route annotations resolve).

Every error, whichever layer raises it (routing, body parsing, validation, media, the engine, a bug),
uses OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, is counted in ``/metrics``,
and is a 4xx with a message that names the value, the rule and the fix when the client can fix it;
the server keeps serving afterwards. A guard in front of every route checks the Host header (a
loopback server answers only to loopback names, so DNS rebinding cannot reach it) and the API key
(``/v1``, ``/metrics``; the chat page has its own login when a key is set).
"""
from __future__ import annotations

import asyncio
import hmac
import json
import math
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from vlmctl.serve.demo import DEMO_NOTICE
from vlmctl.serve.demo.media import MediaError, MediaLimits, RequestPixels, load_image, load_video
from vlmctl.serve.safety import is_loopback

#: Signed 64-bit range: what OpenAI and vLLM accept for ``seed`` (and any integer field).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: Deepest JSON nesting a request may have (a chat request needs about 6 levels).
MAX_JSON_DEPTH = 32
#: Longest integer literal accepted in a request body (2**64 has 20 digits).
MAX_INT_DIGITS = 20
SHUTDOWN_MESSAGE = "the server is shutting down; this request was stopped. Retry once it is back."


class RequestError(Exception):
    """A request the server refuses: HTTP status, message and the offending parameter."""

    def __init__(self, status: int, message: str, param: str | None = None, kind: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param = status, message, param
        self.kind = kind or _KINDS.get(status, "server_error" if status >= 500 else "invalid_request_error")


_KINDS = {401: "authentication_error", 403: "permission_error", 404: "not_found_error", 413: "request_too_large",
          429: "rate_limit_error", 503: "server_busy"}


@dataclass
class ServerOptions:
    """Everything the demo app needs; the CLI fills it from flags (and the plan, when one is given)."""

    model_dir: Path
    served_model_name: str
    limits: MediaLimits
    max_model_len: int = 4096
    default_max_tokens: int = 128
    max_num_seqs: int = 64
    max_waiting: int = 512
    """Requests queued beyond the running ones; more are answered 503 (retry later)."""
    max_body_bytes: int = 64 * 1024 * 1024
    api_key: str | None = None
    bind_host: str = "127.0.0.1"
    """Address the server listens on; on loopback, requests must name a loopback host (DNS rebinding)."""
    demo: bool = True
    notice: str = DEMO_NOTICE
    video_fps: float = 2.0
    threads: int | None = None
    info: dict[str, Any] = field(default_factory=dict)


def _error_body(status: int, message: str, param: str | None, kind: str) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": status}}


def _number(body: dict, name: str, default, lo=None, hi=None, integer=False):
    """``body[name]`` as a finite number within [lo, hi] (integers: also within int64), else a 400 naming it."""
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer() and integer:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        kind = "an integer" if integer else "a number"
        raise RequestError(400, f"'{name}' must be {kind}, got {json.dumps(value)[:40]}.", name)
    if not math.isfinite(value):
        raise RequestError(400, f"'{name}' must be a finite number, got {value}.", name)
    if integer:
        lo = INT64_MIN if lo is None else lo
        hi = INT64_MAX if hi is None else hi
    if lo is not None and value < lo:
        raise RequestError(400, f"'{name}' must be at least {lo}, got {_short(value)}.", name)
    if hi is not None and value > hi:
        raise RequestError(400, f"'{name}' must be at most {hi}, got {_short(value)}.", name)
    return value


def _short(value) -> str:
    text = str(value)
    return text if len(text) <= 24 else f"{text[:10]}…({len(text)} digits)"


class _BadNumber:
    """A number literal the parser met that no field may hold; _check_tree names the field it sits in."""

    def __init__(self, problem: str) -> None:
        self.problem = problem


def _reject_constant(name: str) -> _BadNumber:
    return _BadNumber(f"is {name}, which is not valid JSON; send a finite number")


def _bounded_int(text: str):
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        return _BadNumber(f"is an integer with {digits} digits; integers must fit in 64 bits")
    return int(text)


def _finite_float(text: str):
    value = float(text)
    if not math.isfinite(value):
        return _BadNumber(f"is {text[:24]}, which overflows a 64-bit float; send a finite number")
    return value


def parse_body(raw: bytes) -> dict:
    """The request body as a JSON object: finite numbers, 64-bit integers, bounded nesting, valid Unicode."""
    try:
        body = json.loads(raw, parse_constant=_reject_constant, parse_int=_bounded_int, parse_float=_finite_float)
    except RecursionError:
        raise RequestError(400, f"request body is nested too deeply; at most {MAX_JSON_DEPTH} levels.") from None
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise RequestError(400, f"request body is not valid JSON ({exc}).") from None
    if isinstance(body, _BadNumber):
        raise RequestError(400, f"request body {body.problem}.")
    if not isinstance(body, dict):
        raise RequestError(400, "request body must be a JSON object.")
    _check_tree(body)
    return body


def _check_tree(body: dict) -> None:
    """Refuse nesting past MAX_JSON_DEPTH, unusable numbers and lone UTF-16 surrogates, naming where."""
    todo = [(body, "", 1)]
    while todo:
        node, where, depth = todo.pop()
        if depth > MAX_JSON_DEPTH:
            raise RequestError(400, f"request body is nested deeper than {MAX_JSON_DEPTH} levels (at {where}).")
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            path = f"{where}.{key}" if isinstance(node, dict) else f"{where}[{key}]"
            name = path.lstrip(".")
            param = name.split(".")[0].split("[")[0] or None
            if isinstance(value, _BadNumber):
                raise RequestError(400, f"'{name[:80]}' {value.problem}.", param)
            for text in ((key, value) if isinstance(node, dict) else (value,)):
                if isinstance(text, str) and not text.isascii():
                    try:
                        text.encode("utf-8")
                    except UnicodeEncodeError as exc:
                        bad = text[exc.start]
                        raise RequestError(
                            400,
                            f"{name[:80]} contains a lone UTF-16 surrogate (\\u{ord(bad):04x}) at character "
                            f"{exc.start}, which is not valid Unicode. Send text as UTF-8 (pair or drop the surrogate).",
                            param,
                        ) from None
            if isinstance(value, (dict, list)):
                todo.append((value, path, depth + 1))


#: OpenAI request fields this server does not implement, with what to do instead.
_UNSUPPORTED = {
    "tools": "tool calling is not supported by this server; drop 'tools' (and 'tool_choice')",
    "functions": "function calling ('functions', the legacy form of 'tools') is not supported by this server; "
                 "drop 'functions'",
    "function_call": "function calling is not supported by this server; drop 'function_call'",
    "logprobs": "log probabilities are not supported by this server; drop 'logprobs'",
    "top_logprobs": "log probabilities are not supported by this server; drop 'top_logprobs'",
    "logit_bias": "'logit_bias' is not supported by this server; drop it",
    "audio": "audio output is not supported by this server; drop 'audio'",
    "prediction": "predicted outputs are not supported by this server; drop 'prediction'",
    "web_search_options": "web search is not supported by this server; drop 'web_search_options'",
}


def refuse_unsupported(body: dict) -> None:
    """A 400 for an OpenAI feature this server would otherwise silently ignore."""
    for name, why in _UNSUPPORTED.items():
        value = body.get(name)
        if value in (None, False, [], {}):
            continue
        raise RequestError(400, f"'{name}' was given, but {why}.", name)
    choice = body.get("tool_choice")
    if choice not in (None, "none", "auto"):
        raise RequestError(400, f"'tool_choice' is {json.dumps(choice)[:60]}, but tool calling is not supported by "
                           "this server; drop 'tool_choice' or set it to \"none\".", "tool_choice")
    fmt = body.get("response_format")
    if fmt is not None:
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        if kind != "text":
            raise RequestError(400, f"'response_format' type {json.dumps(kind)} is not supported by this server "
                               "(no structured output: json_object/json_schema); drop 'response_format' or use "
                               "{\"type\": \"text\"}.", "response_format")
    modalities = body.get("modalities")
    if modalities is not None and modalities != ["text"]:
        raise RequestError(400, f"'modalities' {json.dumps(modalities)[:60]} is not supported; this server answers "
                           "with text only (drop 'modalities' or send [\"text\"]).", "modalities")


def parse_messages(messages: Any, limits: MediaLimits) -> tuple[list[dict], list[tuple[str, str]]]:
    """OpenAI messages → chat-template messages and the media to load, in order, as (kind, url)."""
    if not isinstance(messages, list) or not messages:
        raise RequestError(400, "'messages' must be a non-empty list of {role, content} objects.", "messages")
    out, media = [], []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or "role" not in msg:
            raise RequestError(400, f"messages[{i}] must be an object with 'role' and 'content'.", "messages")
        role = msg["role"]
        if role not in ("system", "user", "assistant"):
            raise RequestError(400, f"messages[{i}].role '{role}' is not supported; use system, user or assistant.")
        content = msg.get("content")
        if content is None or isinstance(content, str):
            out.append({"role": role, "content": content or ""})
            continue
        if not isinstance(content, list):
            raise RequestError(400, f"messages[{i}].content must be a string or a list of parts.", "messages")
        parts = []
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            where = f"messages[{i}].content[{j}]"
            if kind == "text":
                if not isinstance(part.get("text"), str):
                    raise RequestError(400, f"{where}.text must be a string.", "messages")
                parts.append({"type": "text", "text": part["text"]})
            elif kind in ("image_url", "video_url"):
                ref = part.get(kind)
                url = ref.get("url") if isinstance(ref, dict) else ref
                if not isinstance(url, str) or not url:
                    raise RequestError(400, f"{where}.{kind}.url must be a non-empty string.", "messages")
                media.append((kind[:5], url))
                parts.append({"type": kind[:5]})
            else:
                raise RequestError(
                    400, f"{where} has type '{kind}'; supported types are text, image_url and video_url.", "messages"
                )
        out.append({"role": role, "content": parts})
    n_images = sum(1 for k, _ in media if k == "image")
    n_videos = len(media) - n_images
    if n_images > limits.max_images:
        raise RequestError(
            400,
            f"request has {n_images} images; this deployment reserved memory for at most {limits.max_images} per "
            "request (plan media_limits.max_images). Send fewer images or re-plan with a higher image limit.",
            "messages",
        )
    if n_videos > limits.max_videos:
        raise RequestError(
            400,
            f"request has {n_videos} videos; this deployment reserved memory for at most {limits.max_videos} per "
            "request (plan media_limits.max_videos).",
            "messages",
        )
    return out, media


class DemoServer:
    """Request handling around an :class:`~vlmctl.serve.demo.engine.Engine`."""

    def __init__(self, opts: ServerOptions) -> None:
        from vlmctl.serve.demo.engine import Engine

        self.opts = opts
        self.engine = Engine(opts.model_dir, max_num_seqs=opts.max_num_seqs, threads=opts.threads)
        self.processor = self.engine.processor
        self.created = int(time.time())
        self.counts: dict[str, int] = {"ok": 0, "client_error": 0, "server_error": 0}
        self._chars_per_token: int | None = None
        self.stopping = False
        """Set when shutdown begins: open requests end with an error event, new ones get 503."""
        from vlmctl.serve.demo.metrics import DemoMetrics

        self.prom = DemoMetrics(opts.served_model_name, opts.max_model_len, self.engine, self.counts, opts.demo)
        self.engine.observer = self.prom

    # -- preparing a request (runs in a worker thread) --------------------------------------
    def prepare(self, body: dict):
        """Validate the body, load media and run the processor; returns (Prepared, stream, include_usage)."""
        from vlmctl.serve.demo.engine import Prepared

        opts = self.opts
        model = body.get("model")
        if model is not None and model != opts.served_model_name:
            raise RequestError(
                404, f"The model `{model}` does not exist. This server serves '{opts.served_model_name}'.", "model"
            )
        refuse_unsupported(body)
        if _number(body, "n", 1, integer=True) != 1:
            raise RequestError(400, "'n' must be 1 on this server (one answer per request); send n: 1.", "n")
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise RequestError(400, "'stream' must be true or false.", "stream")
        temperature = _number(body, "temperature", 1.0, 0, 2)
        top_p = _number(body, "top_p", 1.0, 0, 1)
        if top_p <= 0:
            raise RequestError(400, f"'top_p' must be greater than 0 (and at most 1), got {top_p}.", "top_p")
        frequency_penalty = _number(body, "frequency_penalty", 0.0, -2, 2)
        presence_penalty = _number(body, "presence_penalty", 0.0, -2, 2)
        seed = _number(body, "seed", None, integer=True)
        name = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
        max_tokens = _number(body, name, None, 1, integer=True)
        stop = body.get("stop") or []
        stop = [stop] if isinstance(stop, str) else stop
        if not isinstance(stop, list) or len(stop) > 4 or not all(isinstance(s, str) and s for s in stop):
            raise RequestError(400, "'stop' must be a string or a list of up to 4 non-empty strings.", "stop")
        options = body.get("stream_options") or {}
        if not isinstance(options, dict):
            raise RequestError(400, "'stream_options' must be an object like {\"include_usage\": true}.",
                               "stream_options")
        include_usage = bool(options.get("include_usage"))

        messages, media = parse_messages(body.get("messages"), opts.limits)
        self.check_text_length(messages)
        images, videos, metadata = [], [], []
        spent = RequestPixels(opts.limits)
        try:
            for kind, url in media:
                if kind == "image":
                    images.append(load_image(url, opts.limits, spent))
                else:
                    frames, fps = load_video(url, opts.limits, opts.video_fps, spent)
                    videos.append(frames)
                    metadata.append((len(frames), fps))
        except MediaError as exc:
            raise RequestError(exc.status, str(exc), "messages") from None

        text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        kwargs: dict[str, Any] = {"text": [text], "return_tensors": "pt"}
        grid = self.grid
        size = {"shortest_edge": min(grid * grid * 4, opts.limits.max_pixels), "longest_edge": opts.limits.max_pixels}
        if images:
            kwargs["images"] = images
            kwargs["images_kwargs"] = {"size": size}
        if videos:
            from transformers.video_utils import VideoMetadata

            kwargs["videos"] = videos
            kwargs["videos_kwargs"] = {
                "do_sample_frames": False,
                "video_metadata": [
                    VideoMetadata(total_num_frames=n, fps=fps, frames_indices=list(range(n))) for n, fps in metadata
                ],
            }
        try:
            inputs = dict(self.processor(**kwargs))
        except (ValueError, TypeError) as exc:
            raise RequestError(400, f"the processor could not prepare this media: {exc}", "messages") from None
        prompt_tokens = int(inputs["input_ids"].shape[1])
        limit = opts.max_model_len
        if prompt_tokens >= limit:
            raise RequestError(
                400,
                f"This model's maximum context length is {limit} tokens. However, your request has "
                f"{prompt_tokens} input tokens. Please reduce the length of the input messages.",
                "messages",
            )
        if max_tokens is None:
            max_tokens = min(opts.default_max_tokens, limit - prompt_tokens)
        elif prompt_tokens + max_tokens > limit:
            raise RequestError(
                400,
                f"This model's maximum context length is {limit} tokens. However, you requested "
                f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the messages, {max_tokens} in the "
                "completion). Please reduce the length of the messages or completion.",
                name,
            )
        prepared = Prepared(
            inputs=inputs,
            prompt_tokens=prompt_tokens,
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            stop=stop,
            frequency_penalty=frequency_penalty,
            presence_penalty=presence_penalty,
        )
        return prepared, stream, include_usage

    @property
    def grid(self) -> int:
        """Pixels per side of one LM token (patch × merge) of the served model's image processor."""
        image = self.processor.image_processor
        return int(getattr(image, "patch_size", 14)) * int(getattr(image, "merge_size", 2))

    @property
    def family(self) -> str | None:
        """The served checkpoint's ``model_type`` (qwen2_5_vl, qwen3_vl, ...)."""
        return getattr(self.engine.config, "model_type", None)

    def check_text_length(self, messages: list[dict]) -> None:
        """Refuse text that cannot fit before tokenizing it: no token spans more than ``chars_per_token``."""
        chars = sum(
            len(part["text"]) if isinstance(part, dict) else 0
            for msg in messages
            for part in (msg["content"] if isinstance(msg["content"], list) else [{"text": msg["content"]}])
            if not isinstance(part, dict) or "text" in part
        )
        least_tokens = chars // self.chars_per_token
        if least_tokens >= self.opts.max_model_len:
            raise RequestError(
                400,
                f"This model's maximum context length is {self.opts.max_model_len} tokens. However, your messages "
                f"have {chars:,} characters, at least {least_tokens:,} tokens. Please reduce the length of the "
                "input messages.",
                "messages",
            )

    @property
    def chars_per_token(self) -> int:
        """The longest token of the vocabulary, in characters (at least 1): a bound for the length check."""
        if self._chars_per_token is None:
            vocab = self.processor.tokenizer.get_vocab()
            self._chars_per_token = max(1, max((len(t) for t in vocab), default=1))
        return self._chars_per_token

    # -- responses --------------------------------------------------------------------------
    def model_card(self) -> dict:
        card = {
            "id": self.opts.served_model_name,
            "object": "model",
            "created": self.created,
            "owned_by": "vlmctl",
            "root": str(self.opts.model_dir),
            "max_model_len": self.opts.max_model_len,
            "family": self.family,
        }
        if self.opts.demo:
            card.update({"demo": True, "random_weights": True, "description": self.opts.notice})
        return card

    def metrics(self) -> bytes:
        """Prometheus text with vLLM's series (see :mod:`vlmctl.serve.demo.metrics`)."""
        return self.prom.render()


async def _read_body(request, cap: int) -> bytes:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > cap:
        raise RequestError(413, f"request body is {int(length):,} bytes; this server accepts at most {cap:,}.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise RequestError(413, f"request body is larger than {cap:,} bytes, the server's limit.")
        chunks.append(chunk)
    return b"".join(chunks)


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _host_name(host: str) -> str:
    """The name part of a Host header: 'a:80' -> 'a', '[::1]:80' -> '::1'."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    """ASGI middleware before every route: Host check on a loopback server, then the API key.

    A pure ASGI layer (not ``@app.middleware``) so routes see the client's own ``receive`` and
    notice a disconnect.
    """

    #: Paths the key protects; /health stays open for probes, the chat page has its own login.
    PROTECTED = ("/v1", "/metrics")

    def __init__(self, app, opts: ServerOptions, on_error) -> None:
        self.app, self.opts, self.on_error = app, opts, on_error
        self.loopback = is_loopback(opts.bind_host)

    def problem(self, scope) -> RequestError | None:
        host = _header(scope, b"host")
        if self.loopback and host is not None:
            name = _host_name(host.strip().lower())
            if not (is_loopback(name) or name == self.opts.bind_host):
                return RequestError(
                    403,
                    f"Host header '{host[:80]}' is not a loopback name; this server listens on "
                    f"{self.opts.bind_host} and answers only requests addressed to localhost or 127.0.0.1 (a "
                    "page on another site may be trying to reach it). Use http://127.0.0.1:PORT, or start the "
                    "server with --host and an API key to serve other names.",
                )
        path = scope.get("path", "")
        if self.opts.api_key and path.startswith(self.PROTECTED):
            header = _header(scope, b"authorization") or ""
            token = header[7:].strip() if header.lower().startswith("bearer ") else ""
            if not hmac.compare_digest(token.encode("utf-8", "replace"), self.opts.api_key.encode("utf-8")):
                return RequestError(
                    401,
                    "Missing or wrong API key. Send 'Authorization: Bearer <key>' with the key the server was "
                    "started with (--api-key-file or VLMCTL_API_KEY).",
                )
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            problem = self.problem(scope)
            if problem is not None:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                await self.on_error(problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _routes_hint(method: str, path: str) -> str:
    if path.rstrip("/") == "/v1/completions":
        return ("This server implements the chat API only: POST /v1/chat/completions with 'messages' "
                "(the legacy /v1/completions with 'prompt' is not served).")
    return ("This server answers POST /v1/chat/completions, GET /v1/models, GET /v1/models/{model}, "
            "GET /health and GET /metrics.")


def create_app(opts: ServerOptions, server: DemoServer | None = None):
    """The FastAPI app. ``server`` may be passed in (tests); otherwise the model is loaded here."""
    server = server or DemoServer(opts)
    app = FastAPI(
        title="vlmctl demo server" if opts.demo else "vlmctl CPU server",
        description=opts.notice if opts.demo else "",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.server = server

    def error(exc: RequestError) -> JSONResponse:
        server.counts["server_error" if exc.status >= 500 else "client_error"] += 1
        return JSONResponse(_error_body(exc.status, exc.message, exc.param, exc.kind), status_code=exc.status)

    app.add_middleware(Guard, opts=opts, on_error=error)

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError):
        return error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        method, path = request.method, request.url.path
        if exc.status_code == 404:
            message = f"{method} {path[:100]} is not a route of this server. {_routes_hint(method, path)}"
        elif exc.status_code == 405:
            message = f"{method} is not allowed on {path[:100]}. {_routes_hint(method, path)}"
        else:
            message = str(exc.detail)
        return error(RequestError(exc.status_code, message))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        first = (exc.errors() or [{}])[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error(RequestError(400, f"{where or 'request'}: {first.get('msg', 'invalid value')}.", where or None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        return error(RequestError(500, f"internal error while handling {request.url.path[:80]} "
                                  f"({type(exc).__name__}); the server keeps serving. Retry, and report it with "
                                  "the server log if it repeats."))

    @app.get("/health")
    async def health():
        if not server.engine.alive:
            return JSONResponse({"status": "engine stopped"}, status_code=503)
        return {
            "status": "ok",
            "model": opts.served_model_name,
            "demo": opts.demo,
            "family": server.family,
            "chat_path": opts.info.get("chat_path"),
        }

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [server.model_card()]}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str):
        if model_id != opts.served_model_name:
            raise RequestError(404, f"The model `{model_id[:100]}` does not exist. This server serves "
                               f"'{opts.served_model_name}'.", "model")
        return server.model_card()

    @app.get("/metrics")
    async def metrics():
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(server.metrics(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/")
    async def root():
        if opts.info.get("chat_path"):
            return RedirectResponse(opts.info["chat_path"])
        return {"model": opts.served_model_name, "notice": opts.notice if opts.demo else "", "api": "/v1"}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        raw_type = request.headers.get("content-type")
        if raw_type is None:
            raise RequestError(415, "the request has no Content-Type; send the body as JSON with "
                               "'Content-Type: application/json'.")
        ctype = raw_type.split(";")[0].strip().lower()
        if ctype != "application/json":
            raise RequestError(415, f"Content-Type is '{ctype[:60]}'; send the request as application/json.")
        raw = await _read_body(request, opts.max_body_bytes)
        body = parse_body(raw)
        if server.stopping:
            raise RequestError(503, SHUTDOWN_MESSAGE)
        if server.engine.num_waiting >= opts.max_waiting:
            raise RequestError(503, f"the server is busy ({opts.max_waiting} requests queued); retry later.",
                               kind="server_busy")
        prepared, stream, include_usage = await run_in_threadpool(server.prepare, body)
        seq = server.engine.submit(prepared, asyncio.get_running_loop())
        rid = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        name = opts.served_model_name

        def usage(completion: int) -> dict:
            return {
                "prompt_tokens": prepared.prompt_tokens,
                "completion_tokens": completion,
                "total_tokens": prepared.prompt_tokens + completion,
            }

        async def next_event():
            """The next engine event (queued text deltas merged into one), or None once the request is cancelled.

            On shutdown: an error event (the stream ends with it instead of being cut).
            """
            from vlmctl.serve.demo.engine import Event

            while True:
                if server.stopping:
                    seq.cancel()
                    return Event("error", text=SHUTDOWN_MESSAGE, finish_reason="shutdown")
                if seq.events.empty():
                    if seq.cancelled.is_set():
                        return None
                    try:
                        event = await asyncio.wait_for(seq.events.get(), timeout=0.25)
                    except asyncio.TimeoutError:
                        if stream and await request.is_disconnected():
                            seq.cancel()
                            return None
                        continue
                else:
                    event = seq.events.get_nowait()
                while event.kind == "delta" and not seq.events.empty():
                    following = seq.events.get_nowait()
                    if following.kind != "delta":
                        seq.events.put_nowait(following)  # only the end or an error can follow; keep its order
                        break
                    event.text += following.text
                return event

        def engine_error(event) -> RequestError:
            if event.finish_reason == "shutdown":
                return RequestError(503, event.text)
            return RequestError(500, event.text)

        if not stream:
            async def watch_disconnect():
                """The body is read: the next message from the client can only be its disconnect."""
                while True:
                    message = await request.receive()
                    if message["type"] == "http.disconnect":
                        seq.cancel()
                        return

            watcher = asyncio.create_task(watch_disconnect())
            parts = []
            try:
                while True:
                    event = await next_event()
                    if event is None:
                        server.counts["client_error"] += 1
                        return JSONResponse(_error_body(499, "client closed the request", None, "cancelled"),
                                            status_code=499)
                    if event.kind == "delta":
                        parts.append(event.text)
                    elif event.kind == "error":
                        return error(engine_error(event))
                    else:
                        break
            finally:
                watcher.cancel()
                seq.cancel()
            server.counts["ok"] += 1
            return {
                "id": rid,
                "object": "chat.completion",
                "created": created,
                "model": name,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "".join(parts)},
                        "finish_reason": event.finish_reason,
                    }
                ],
                "usage": usage(event.completion_tokens),
            }

        def chunk(delta: dict, finish: str | None = None, **extra) -> str:
            data = {
                "id": rid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": name,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
            return f"data: {json.dumps(data)}\n\n"

        async def events():
            try:
                yield chunk({"role": "assistant", "content": ""})
                while True:
                    event = await next_event()
                    if event is None:
                        return
                    if event.kind == "delta":
                        yield chunk({"content": event.text})
                    elif event.kind == "error":
                        exc = engine_error(event)
                        server.counts["server_error" if exc.status >= 500 else "client_error"] += 1
                        yield f"data: {json.dumps(_error_body(exc.status, exc.message, None, exc.kind))}\n\n"
                        break
                    else:
                        yield chunk({}, event.finish_reason)
                        if include_usage:
                            data = {
                                "id": rid,
                                "object": "chat.completion.chunk",
                                "created": created,
                                "model": name,
                                "choices": [],
                                "usage": usage(event.completion_tokens),
                            }
                            yield f"data: {json.dumps(data)}\n\n"
                        server.counts["ok"] += 1
                        break
                yield "data: [DONE]\n\n"
            finally:
                seq.cancel()

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    return app
