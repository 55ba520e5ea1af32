"""Small real media made locally for serve tests: PNG/JPEG images and an MP4 made with PyAV."""
from __future__ import annotations

import base64
import io


def png_bytes(width: int = 64, height: int = 48, color=(200, 30, 30)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, format="PNG")
    return buf.getvalue()


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def mp4_bytes(frames: int = 12, width: int = 64, height: int = 48, fps: int = 6) -> bytes:
    """A real H.264 (or MPEG-4) MP4: a moving bar, ``frames`` frames at ``fps``."""
    import av
    import numpy as np

    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        try:
            stream = container.add_stream("libx264", rate=fps)
        except Exception:
            stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            img = np.zeros((height, width, 3), dtype=np.uint8)
            img[:, (i * 5) % width : (i * 5) % width + 8] = (255, 255, 0)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def huge_png_bytes(side: int = 20000) -> bytes:
    """A 20000×20000 1-bit PNG: a few KB on the wire, 400 megapixels decoded (a decompression bomb)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("1", (side, side), 0).save(buf, format="PNG", optimize=True)
    return buf.getvalue()
