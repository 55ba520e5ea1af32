"""The demo server's OpenAI-compatible surface (FastAPI): chat completions, models, health, metrics.

Imported only by the server process (it imports FastAPI at module level so route annotations resolve).

Errors use OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, with a 4xx status
and a message that names the value, the limit and the fix; the server keeps serving afterwards.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from vlmctl.serve.demo import DEMO_NOTICE
from vlmctl.serve.demo.media import MediaError, MediaLimits, load_image, load_video


class RequestError(Exception):
    """A request the server refuses: HTTP status, message and the offending parameter."""

    def __init__(self, status: int, message: str, param: str | None = None, kind: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param = status, message, param
        self.kind = kind or {401: "authentication_error", 404: "not_found_error", 413: "request_too_large"}.get(
            status, "invalid_request_error"
        )


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
    demo: bool = True
    notice: str = DEMO_NOTICE
    video_fps: float = 2.0
    threads: int | None = None
    info: dict[str, Any] = field(default_factory=dict)


def _error_body(status: int, message: str, param: str | None, kind: str) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": status}}


def _number(body: dict, name: str, default, lo=None, hi=None, integer=False):
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        kind = "an integer" if integer else "a number"
        raise RequestError(400, f"'{name}' must be {kind}, got {json.dumps(value)[:40]}.", name)
    if lo is not None and value < lo:
        raise RequestError(400, f"'{name}' must be at least {lo}, got {value}.", name)
    if hi is not None and value > hi:
        raise RequestError(400, f"'{name}' must be at most {hi}, got {value}.", name)
    return value


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
        self.prompt_tokens_total = 0

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
        if body.get("n", 1) != 1:
            raise RequestError(400, "'n' must be 1 on this server.", "n")
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise RequestError(400, "'stream' must be true or false.", "stream")
        temperature = _number(body, "temperature", 1.0, 0, 2)
        top_p = _number(body, "top_p", 1.0, 0, 1)
        if top_p <= 0:
            raise RequestError(400, "'top_p' must be greater than 0.", "top_p")
        seed = _number(body, "seed", None, integer=True)
        name = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
        max_tokens = _number(body, name, None, 1, integer=True)
        stop = body.get("stop") or []
        stop = [stop] if isinstance(stop, str) else stop
        if not isinstance(stop, list) or len(stop) > 4 or not all(isinstance(s, str) and s for s in stop):
            raise RequestError(400, "'stop' must be a string or a list of up to 4 non-empty strings.", "stop")
        options = body.get("stream_options") or {}
        include_usage = bool(isinstance(options, dict) and options.get("include_usage"))

        messages, media = parse_messages(body.get("messages"), opts.limits)
        images, videos, metadata = [], [], []
        try:
            for kind, url in media:
                if kind == "image":
                    images.append(load_image(url, opts.limits))
                else:
                    frames, fps = load_video(url, opts.limits, opts.video_fps)
                    videos.append(frames)
                    metadata.append((len(frames), fps))
        except MediaError as exc:
            raise RequestError(exc.status, str(exc), "messages") from None

        text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        kwargs: dict[str, Any] = {"text": [text], "return_tensors": "pt"}
        size = {"shortest_edge": min(28 * 28 * 4, opts.limits.max_pixels), "longest_edge": opts.limits.max_pixels}
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
        )
        return prepared, stream, include_usage

    # -- responses --------------------------------------------------------------------------
    def model_card(self) -> dict:
        card = {
            "id": self.opts.served_model_name,
            "object": "model",
            "created": self.created,
            "owned_by": "vlmctl",
            "root": str(self.opts.model_dir),
            "max_model_len": self.opts.max_model_len,
        }
        if self.opts.demo:
            card.update({"demo": True, "random_weights": True, "description": self.opts.notice})
        return card

    def metrics(self) -> str:
        eng = self.engine
        name = self.opts.served_model_name
        lines = [
            "# HELP vllm:num_requests_running Requests generating right now.",
            "# TYPE vllm:num_requests_running gauge",
            f'vllm:num_requests_running{{model_name="{name}"}} {eng.num_running}',
            "# HELP vllm:num_requests_waiting Requests queued for the engine.",
            "# TYPE vllm:num_requests_waiting gauge",
            f'vllm:num_requests_waiting{{model_name="{name}"}} {eng.num_waiting}',
            "# HELP vllm:prompt_tokens_total Prompt tokens processed.",
            "# TYPE vllm:prompt_tokens_total counter",
            f'vllm:prompt_tokens_total{{model_name="{name}"}} {self.prompt_tokens_total}',
            "# HELP vllm:generation_tokens_total Tokens generated.",
            "# TYPE vllm:generation_tokens_total counter",
            f'vllm:generation_tokens_total{{model_name="{name}"}} {eng.stats["generation_tokens"]}',
            "# HELP vlmctl_time_to_first_token_seconds Time from queueing to first token.",
            "# TYPE vlmctl_time_to_first_token_seconds summary",
            f"vlmctl_time_to_first_token_seconds_sum {eng.ttft_sum:.6f}",
            f"vlmctl_time_to_first_token_seconds_count {eng.stats['first_tokens']}",
            "# HELP vlmctl_requests_total Chat requests by outcome.",
            "# TYPE vlmctl_requests_total counter",
        ]
        lines += [f'vlmctl_requests_total{{outcome="{k}"}} {v}' for k, v in self.counts.items()]
        lines += [
            "# HELP vlmctl_requests_cancelled_total Requests stopped because the client went away.",
            "# TYPE vlmctl_requests_cancelled_total counter",
            f"vlmctl_requests_cancelled_total {eng.stats['cancelled']}",
            "# HELP vlmctl_demo_random_weights 1 when the served model is the random-weight demo.",
            "# TYPE vlmctl_demo_random_weights gauge",
            f"vlmctl_demo_random_weights {int(self.opts.demo)}",
        ]
        return "\n".join(lines) + "\n"


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


def create_app(opts: ServerOptions, server: DemoServer | None = None):
    """The FastAPI app. ``server`` may be passed in (tests); otherwise the model is loaded here."""
    server = server or DemoServer(opts)
    app = FastAPI(
        title="vlmctl demo server" if opts.demo else "vlmctl CPU server",
        description=opts.notice if opts.demo else "",
        docs_url=None,
        redoc_url=None,
    )
    app.state.server = server

    def error(exc: RequestError) -> JSONResponse:
        server.counts["client_error"] += 1
        return JSONResponse(_error_body(exc.status, exc.message, exc.param, exc.kind), status_code=exc.status)

    @app.middleware("http")
    async def auth(request: Request, call_next):
        if opts.api_key and request.url.path.startswith("/v1"):
            header = request.headers.get("authorization", "")
            token = header[7:] if header.lower().startswith("bearer ") else ""
            if not hmac.compare_digest(token.encode(), opts.api_key.encode()):
                return error(
                    RequestError(
                        401,
                        "Missing or wrong API key. Send 'Authorization: Bearer <key>' with the key given to "
                        "`vlmctl serve --api-key` (or VLMCTL_API_KEY).",
                    )
                )
        return await call_next(request)

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError):
        return error(exc)

    @app.get("/health")
    async def health():
        if not server.engine.alive:
            return JSONResponse({"status": "engine stopped"}, status_code=503)
        return {
            "status": "ok",
            "model": opts.served_model_name,
            "demo": opts.demo,
            "chat_path": opts.info.get("chat_path"),
        }

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [server.model_card()]}

    @app.get("/metrics")
    async def metrics():
        return PlainTextResponse(server.metrics(), media_type="text/plain; version=0.0.4")

    @app.get("/")
    async def root():
        if opts.info.get("chat_path"):
            return RedirectResponse(opts.info["chat_path"])
        return {"model": opts.served_model_name, "notice": opts.notice if opts.demo else "", "api": "/v1"}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise RequestError(415, f"Content-Type is '{ctype}'; send the request as application/json.")
        raw = await _read_body(request, opts.max_body_bytes)
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RequestError(400, f"request body is not valid JSON ({exc}).") from None
        if not isinstance(body, dict):
            raise RequestError(400, "request body must be a JSON object.")
        if server.engine.num_waiting >= opts.max_waiting:
            raise RequestError(503, f"the server is busy ({opts.max_waiting} requests queued); retry later.",
                               kind="server_busy")
        prepared, stream, include_usage = await run_in_threadpool(server.prepare, body)
        server.prompt_tokens_total += prepared.prompt_tokens
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
            """The next engine event; queued text deltas are merged into one (fewer, larger SSE chunks)."""
            while True:
                if seq.events.empty():
                    try:
                        event = await asyncio.wait_for(seq.events.get(), timeout=0.5)
                    except asyncio.TimeoutError:
                        if await request.is_disconnected():
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

        if not stream:
            parts = []
            try:
                while True:
                    event = await next_event()
                    if event is None:
                        return JSONResponse({}, status_code=499)
                    if event.kind == "delta":
                        parts.append(event.text)
                    elif event.kind == "error":
                        server.counts["server_error"] += 1
                        return JSONResponse(_error_body(500, event.text, None, "server_error"), status_code=500)
                    else:
                        break
            finally:
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
                        server.counts["server_error"] += 1
                        yield f"data: {json.dumps(_error_body(500, event.text, None, 'server_error'))}\n\n"
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
