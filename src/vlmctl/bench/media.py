"""Images and short videos generated locally (no downloads), as data URIs for OpenAI chat requests."""
from __future__ import annotations

import base64
import io
import random
from functools import lru_cache


@lru_cache(maxsize=4)
def _gradient(width: int, height: int):
    """The background of every frame of one size (resizing it costs more than the rest of a frame)."""
    from PIL import Image

    return Image.linear_gradient("L").resize((width, height)).convert("RGB")


def _frame(width: int, height: int, seed: int, t: int = 0):
    from PIL import ImageDraw

    rng = random.Random(seed * 1000 + t)
    image = _gradient(width, height).copy()
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randrange(4, max(5, min(width, height) // 4))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    draw.text((8 + 4 * t % max(1, width - 60), 8), f"#{seed}.{t}", fill=(255, 255, 255))
    return image


def image_bytes(width: int, height: int, seed: int = 0) -> bytes:
    """A JPEG of ``width`` x ``height`` with seeded shapes (different seeds defeat the mm cache)."""
    buf = io.BytesIO()
    _frame(width, height, seed).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def video_bytes(width: int, height: int, frames: int, fps: int = 2, seed: int = 0) -> bytes:
    """An H.264 MP4 (PyAV) of ``frames`` frames at ``fps``; width/height rounded down to even numbers."""
    import av
    import numpy as np

    width, height = max(2, width // 2 * 2), max(2, height // 2 * 2)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for t in range(frames):
            frame = av.VideoFrame.from_ndarray(np.asarray(_frame(width, height, seed, t)), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def data_uri(payload: bytes, mime: str) -> str:
    """``data:<mime>;base64,…``"""
    return f"data:{mime};base64,{base64.b64encode(payload).decode()}"
