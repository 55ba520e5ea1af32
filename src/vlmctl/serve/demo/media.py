"""Turn OpenAI ``image_url`` / ``video_url`` parts into pixels, safely.

Every input is bounded before it is decoded: bytes, pixels (read from the header, so a
decompression bomb is refused before it is expanded), video duration and frames. Remote URLs are
refused unless the server was started with ``--allow-remote-media`` (no SSRF by default); local
paths (``file://`` or absolute) only from ``--allowed-media-dir``. Each refusal is a
:class:`MediaError` with a message that names the value, the limit and what to do.
"""
from __future__ import annotations

import base64
import binascii
import io
import os
from dataclasses import dataclass
from pathlib import Path


class MediaError(ValueError):
    """A media part the server refuses; ``status`` is the HTTP code to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class MediaLimits:
    """What one request may carry. The first four mirror ``Plan.media_limits``."""

    max_pixels: int
    """Area an image or frame is resized down to before the vision encoder (processor ``max_pixels``)."""
    max_images: int = 4
    max_videos: int = 1
    max_video_frames: int = 16
    """Frames sampled from a video (at most); more are never decoded into the encoder."""
    max_input_pixels: int = 25_000_000
    """Largest decoded image or frame (width × height) accepted at all; bigger is refused unread."""
    max_image_bytes: int = 20 * 1024 * 1024
    max_video_bytes: int = 50 * 1024 * 1024
    max_video_seconds: float = 120.0
    allow_remote: bool = False
    allowed_dir: str | None = None
    fetch_timeout_s: float = 10.0


_IMAGE_FORMATS = {"PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"}
_VIDEO_MIME = ("video/", "application/octet-stream")


def _fetch(url: str, kind: str, limits: MediaLimits, max_bytes: int) -> tuple[bytes, str]:
    """Bytes and media type of a data URI, an allowed local file, or (if enabled) a remote URL."""
    if url.startswith("data:"):
        header, sep, payload = url.partition(",")
        if not sep or ";base64" not in header:
            raise MediaError(f"{kind}_url data URI must look like 'data:<type>;base64,<data>'.")
        mime = header[5:].split(";")[0].strip().lower()
        if len(payload) > max_bytes * 4 // 3 + 8:
            raise MediaError(f"{kind} is larger than the {max_bytes // 1048576} MiB limit.", 413)
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise MediaError(f"{kind}_url data URI is not valid base64.") from None
        return data, mime
    if url.startswith(("http://", "https://")):
        if not limits.allow_remote:
            raise MediaError(
                f"remote {kind} URLs are disabled on this server ({url[:60]}). Send the {kind} inline as a "
                "data URI, or start the server with --allow-remote-media.",
                403,
            )
        import httpx

        with httpx.stream("GET", url, timeout=limits.fetch_timeout_s, follow_redirects=False) as resp:
            if resp.status_code != 200:
                raise MediaError(f"fetching {url[:80]} answered HTTP {resp.status_code}.")
            chunks, size = [], 0
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise MediaError(f"{kind} at {url[:80]} is larger than {max_bytes // 1048576} MiB.", 413)
                chunks.append(chunk)
            return b"".join(chunks), resp.headers.get("content-type", "").split(";")[0].lower()
    path = url[7:] if url.startswith("file://") else url
    if not os.path.isabs(path):
        raise MediaError(f"{kind}_url must be a data URI (data:...;base64,...), got '{url[:60]}'.")
    if not limits.allowed_dir:
        raise MediaError(
            f"local {kind} paths are disabled on this server. Send the {kind} as a data URI, or start "
            "the server with --allowed-media-dir DIR.",
            403,
        )
    root = Path(limits.allowed_dir).resolve()
    real = Path(path).resolve()
    if root != real and root not in real.parents:
        raise MediaError(f"{path} is outside the allowed media directory {root}.", 403)
    if not real.is_file():
        raise MediaError(f"{path} does not exist.", 404)
    if real.stat().st_size > max_bytes:
        raise MediaError(f"{path} is larger than the {max_bytes // 1048576} MiB limit.", 413)
    return real.read_bytes(), ""


def load_image(url: str, limits: MediaLimits):
    """Decode an ``image_url`` into an RGB PIL image, refusing empty, corrupt, truncated or huge input."""
    from PIL import Image

    data, mime = _fetch(url, "image", limits, limits.max_image_bytes)
    if mime and not mime.startswith("image/"):
        raise MediaError(f"image_url has content type '{mime}'; expected image/png, image/jpeg or image/webp.", 415)
    if not data:
        raise MediaError("image is empty (0 bytes).")
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise MediaError(
            f"image is too large to decode safely ({exc}); this server accepts at most "
            f"{limits.max_input_pixels:,} pixels. Downscale it before sending.",
            413,
        ) from None
    except Exception:
        raise MediaError(f"image data is not a readable image ({len(data)} bytes; PNG, JPEG, WEBP expected).") from None
    if img.format not in _IMAGE_FORMATS:
        raise MediaError(f"image format {img.format} is not accepted; send PNG, JPEG or WEBP.", 415)
    width, height = img.size
    if width * height > limits.max_input_pixels:
        raise MediaError(
            f"image is {width}x{height} = {width * height:,} pixels; this server accepts at most "
            f"{limits.max_input_pixels:,}. Downscale it before sending.",
            413,
        )
    if width < 1 or height < 1:
        raise MediaError(f"image has no pixels ({width}x{height}).")
    try:
        img.load()
    except Exception as exc:
        raise MediaError(f"image data is corrupt or truncated ({exc}).") from None
    return img.convert("RGB")


def load_video(url: str, limits: MediaLimits, fps: float):
    """Decode a ``video_url`` into ``(frames[T,H,W,3] uint8, sampled_fps)``, at most ``max_video_frames``.

    Frames are sampled uniformly at about ``fps`` (even count, as Qwen2.5-VL groups frames in pairs).
    """
    import av
    import numpy as np

    data, mime = _fetch(url, "video", limits, limits.max_video_bytes)
    if mime and not mime.startswith(_VIDEO_MIME):
        raise MediaError(f"video_url has content type '{mime}'; expected video/mp4 or video/webm.", 415)
    if not data:
        raise MediaError("video is empty (0 bytes).")
    try:
        container = av.open(io.BytesIO(data))
    except Exception:
        raise MediaError(f"video data is not a readable video ({len(data)} bytes; MP4 or WEBM expected).") from None
    with container:
        if not container.streams.video:
            raise MediaError("video has no video stream.")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        if width * height > limits.max_input_pixels:
            raise MediaError(
                f"video frames are {width}x{height}; this server accepts at most {limits.max_input_pixels:,} pixels.",
                413,
            )
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        duration = float(stream.duration * stream.time_base) if stream.duration else None
        if duration is None and container.duration:
            duration = container.duration / 1_000_000
        if duration is not None and duration > limits.max_video_seconds:
            raise MediaError(
                f"video is {duration:.1f} s long; this server accepts at most {limits.max_video_seconds:.0f} s.", 413
            )
        max_decoded = int(limits.max_video_seconds * max(rate, 1.0)) + 1
        kept: list = []  # (index, frame); decimated so memory stays bounded for long videos
        stride, decoded = 1, 0
        try:
            for frame in container.decode(stream):
                if decoded % stride == 0:
                    kept.append((decoded, frame.to_ndarray(format="rgb24")))
                    if len(kept) > 4 * limits.max_video_frames:
                        kept, stride = kept[::2], stride * 2
                decoded += 1
                if decoded > max_decoded:
                    raise MediaError(f"video has more than {max_decoded} frames (limit {limits.max_video_seconds:.0f} s).", 413)
        except MediaError:
            raise
        except Exception as exc:
            if not kept:
                raise MediaError(f"video data is corrupt ({exc}).") from None
    if not kept:
        raise MediaError("video has no decodable frames.")
    seconds = decoded / rate
    wanted = max(2, min(limits.max_video_frames, round(seconds * fps)))
    wanted -= wanted % 2
    idx = np.linspace(0, len(kept) - 1, wanted).round().astype(int)
    sampled = np.stack([kept[i][1] for i in idx])
    return sampled, wanted / max(seconds, 1e-6)
