"""A small, real OpenAI-compatible streaming server with scripted replies, for UI tests.

Run: ``python tests/ui/scripted_server.py [--port 0]``; it prints ``PORT <n>`` once listening.
The reply depends on the last user message's text:

    SLOWSTART   nothing for 30 s, then one word (Stop before the first token)
    LONG        a long answer, one word every 20 ms (for Stop); a closed connection is logged
    INJECT      HTML/script injection attempts plus a fenced code block
    MARKDOWN    a heading, a list, a table and a Python code block
    DISCONNECT  a few words, then the connection is cut without finishing the stream
    HTTP500     a 500 error body;  HTTP400CTX  vLLM's context-length 400 error
    BENCH n ms  n numbered words ``w0001`` … every ``ms`` ms; the send time of each is logged
    anything else: an echo naming the turn's images/videos and the number of messages.

``GET /_log`` returns every request (messages, outcome) and the send times of BENCH words.
"""


import argparse
import asyncio
import json
import socket
import sys
import time

MODEL_ID = "scripted-model"
MARKDOWN_REPLY = """### What I see

This turn has **{images} image(s)** and {videos} video(s). In the picture:

- a *red* rectangle
- a white square in the middle

| object | colour |
|---|---|
| background | red |
| square | white |

To draw it again:

```python
from PIL import Image, ImageDraw

image = Image.new("RGB", (96, 64), (220, 40, 40))
ImageDraw.Draw(image).rectangle((30, 16, 66, 48), fill="white")
```
"""


def _last_user(messages):
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content, 0, 0
        text = " ".join(p.get("text", "") for p in content if p.get("type") == "text")
        images = sum(1 for p in content if p.get("type") == "image_url")
        videos = sum(1 for p in content if p.get("type") == "video_url")
        return text, images, videos
    return "", 0, 0


def _chunk(text, finish=None):
    event = {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": MODEL_ID,
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}],
    }
    return f"data: {json.dumps(event)}\n\n".encode()


def build_app():
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, StreamingResponse

    app = FastAPI()
    log: list[dict] = []
    sent: dict[str, float] = {}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "max_model_len": 4096}]}

    @app.get("/_log")
    async def get_log():
        return {"requests": log, "sent": sent}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        messages = body.get("messages", [])
        text, images, videos = _last_user(messages)
        entry = {"messages": messages, "params": {k: v for k, v in body.items() if k != "messages"},
                 "outcome": "started", "text": text,
                 "authorization": request.headers.get("authorization")}
        log.append(entry)
        if "HTTP500" in text:
            entry["outcome"] = "500"
            return JSONResponse({"error": {"message": "engine crashed <b>badly</b>", "code": 500}}, 500)
        if "HTTP400CTX" in text:
            entry["outcome"] = "400"
            return JSONResponse({"error": {"message": (
                "This model's maximum context length is 4096 tokens. However, you requested "
                "9000 tokens (8000 in the messages, 1000 in the completion)."), "code": 400}}, 400)

        async def stream():
            try:
                if "SLOWSTART" in text:
                    await asyncio.sleep(30)  # like a long video prefill
                    yield _chunk("finally ")
                elif "LONG" in text:
                    for i in range(3000):
                        yield _chunk(f"word{i} ")
                        await asyncio.sleep(0.02)
                elif "INJECT" in text:
                    for piece in ["Here: <img src=x onerror=alert(1)> and ",
                                  "<script>alert(2)</script> ",
                                  "<iframe src=javascript:alert(3)></iframe> ",
                                  "[link](javascript:alert(4)) ",
                                  "\n\n```python\nif a < b:\n\n    print('<b>ok</b>')\n```\n"]:
                        yield _chunk(piece)
                        await asyncio.sleep(0.01)
                elif "MARKDOWN" in text:
                    reply = MARKDOWN_REPLY.format(images=images, videos=videos)
                    for i in range(0, len(reply), 12):
                        yield _chunk(reply[i:i + 12])
                        await asyncio.sleep(0.005)
                elif "DISCONNECT" in text:
                    for i in range(5):
                        yield _chunk(f"partial{i} ")
                        await asyncio.sleep(0.05)
                    entry["outcome"] = "cut"
                    raise ConnectionAbortedError("scripted disconnect")
                elif text.startswith("BENCH"):
                    parts = text.split()
                    count = int(parts[1]) if len(parts) > 1 else 100
                    interval = float(parts[2]) / 1000 if len(parts) > 2 else 0.05
                    for i in range(count):
                        word = f"w{i:04d}"
                        sent[word] = time.time()
                        yield _chunk(word + " ")
                        await asyncio.sleep(interval)
                else:
                    reply = (f"You said: {text}. This turn has {images} image(s) and "
                             f"{videos} video(s); the request had {len(messages)} message(s).")
                    for word in reply.split(" "):
                        yield _chunk(word + " ")
                        await asyncio.sleep(0.01)
                yield _chunk("", finish="stop")
                yield b"data: [DONE]\n\n"
                entry["outcome"] = "completed"
            except (asyncio.CancelledError, GeneratorExit):
                entry["outcome"] = "cancelled"
                raise

        return StreamingResponse(stream(), media_type="text/event-stream")

    return app


def main(argv=None):
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(build_app(), log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
