"""A small real OpenAI-compatible streaming server for bench tests (FastAPI + uvicorn on 127.0.0.1).

Streams ``max_tokens`` one-word chunks ``--token-delay`` apart, ends with a usage chunk when asked
(stream_options.include_usage), decodes every image/video it receives (PIL / PyAV) and counts what it
served at GET /stats (``distinct_media``: different decoded contents, as vLLM's cache keys hash them) so tests can check bench's counts against the server's. A prompt containing
FAIL500 gets HTTP 500; with --api-key, a wrong key gets 401.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import io
import json
import time

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

STATS = {"requests": 0, "ok": 0, "failed": 0, "prompt_tokens": 0, "completion_tokens": 0, "images": 0,
         "videos": 0, "video_frames": 0, "pixels": 0, "distinct_media": 0}
SEEN: set[str] = set()


def _media(url: str) -> tuple[str, int, int]:
    header, _, payload = url.partition(",")
    raw = base64.b64decode(payload)
    if header.startswith("data:image/"):
        from PIL import Image

        with Image.open(io.BytesIO(raw)) as image:
            _seen(image.tobytes())
            return "image", image.width * image.height, 1
    import av

    with av.open(io.BytesIO(raw)) as container:
        frames = [f for f in container.decode(video=0)]
        _seen(b"".join(f.to_ndarray().tobytes() for f in frames))
        return "video", frames[0].width * frames[0].height, len(frames)


def _seen(pixels: bytes) -> None:
    SEEN.add(hashlib.sha256(pixels).hexdigest())
    STATS["distinct_media"] = len(SEEN)


def build(token_delay: float, api_key: str | None) -> FastAPI:
    app = FastAPI()

    @app.get("/v1/models")
    async def models(request: Request):
        if api_key and request.headers.get("authorization") != f"Bearer {api_key}":
            return JSONResponse({"error": {"message": "bad key"}}, status_code=401)
        return {"object": "list", "data": [{"id": "tiny-vlm", "object": "model"}]}

    @app.get("/stats")
    async def stats():
        return STATS

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        STATS["requests"] += 1
        if api_key and request.headers.get("authorization") != f"Bearer {api_key}":
            STATS["failed"] += 1
            return JSONResponse({"error": {"message": "bad key"}}, status_code=401)
        body = await request.json()
        content = body["messages"][-1]["content"]
        parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
        text = " ".join(p.get("text", "") for p in parts if p["type"] == "text")
        if "FAIL500" in text:
            STATS["failed"] += 1
            return JSONResponse({"error": {"message": "boom"}}, status_code=500)
        prompt_tokens = len(text.split())
        for p in parts:
            if p["type"] in ("image_url", "video_url"):
                kind, pixels, frames = _media(p[p["type"]]["url"])
                STATS[kind + "s"] += 1
                STATS["pixels"] += pixels * frames
                if kind == "video":
                    STATS["video_frames"] += frames
                prompt_tokens += max(1, pixels // (28 * 28)) * max(1, frames // 2)
        n = int(body.get("max_tokens") or 16)
        usage = bool((body.get("stream_options") or {}).get("include_usage"))

        async def stream():
            created = int(time.time())
            for i in range(n):
                await asyncio.sleep(token_delay)
                chunk = {"id": "c", "object": "chat.completion.chunk", "created": created, "model": "tiny-vlm",
                         "choices": [{"index": 0, "delta": {"content": f"w{i} "}, "finish_reason": None}]}
                yield f"data: {json.dumps(chunk)}\n\n"
            done = {"id": "c", "object": "chat.completion.chunk", "created": created, "model": "tiny-vlm",
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}
            yield f"data: {json.dumps(done)}\n\n"
            if usage:
                u = {"id": "c", "object": "chat.completion.chunk", "created": created, "model": "tiny-vlm",
                     "choices": [], "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": n,
                                              "total_tokens": prompt_tokens + n}}
                yield f"data: {json.dumps(u)}\n\n"
            STATS["ok"] += 1  # counted before [DONE], so a client that saw [DONE] sees the count
            STATS["prompt_tokens"] += prompt_tokens
            STATS["completion_tokens"] += n
            yield "data: [DONE]\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token-delay", type=float, default=0.002)
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args()
    uvicorn.run(build(args.token_delay, args.api_key), host="127.0.0.1", port=args.port, log_level="warning")
