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
import contextlib
import io
import os
import stat
import threading
import time
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
    """Per network read, and (times three) for the whole fetch of one remote URL."""
    max_request_pixels: int = 100_000_000
    """Pixels one request may decode in all (images, then video frames as decoded); more is refused."""
    max_decoded_frames: int = 2_400
    """Video frames one request may decode before sampling (the rest is refused, not skipped)."""


class PixelBudget:
    """Server-wide cap on pixels being decoded at once; a request waits for room, then gets a 503.

    Decoded images are downscaled to the encoder's ``max_pixels`` at once, so only decoding itself
    needs the full size; this bounds how many full-size decodes run together.
    """

    def __init__(self, pixels: int, wait_s: float = 30.0) -> None:
        self.pixels, self.wait_s = pixels, wait_s
        self.in_use = 0
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def hold(self, pixels: int):
        pixels = min(pixels, self.pixels)
        with self._cond:
            if not self._cond.wait_for(lambda: self.in_use + pixels <= self.pixels, timeout=self.wait_s):
                raise MediaError(
                    f"the server is decoding {self.in_use:,} pixels of other requests' media (its limit is "
                    f"{self.pixels:,} at once); retry in a few seconds or send smaller images.",
                    503,
                )
            self.in_use += pixels
        try:
            yield
        finally:
            with self._cond:
                self.in_use -= pixels
                self._cond.notify_all()


#: Shared by every request of this server process.
DECODE_BUDGET = PixelBudget(100_000_000)


class RequestPixels:
    """Pixels one request has decoded so far, against ``MediaLimits.max_request_pixels``."""

    def __init__(self, limits: MediaLimits) -> None:
        self.limit, self.used = limits.max_request_pixels, 0

    def add(self, pixels: int, what: str) -> None:
        self.used += pixels
        if self.used > self.limit:
            raise MediaError(
                f"this request's media decode to more than {self.limit:,} pixels (at {what}); send fewer or "
                "smaller images, or a shorter or lower-resolution video.",
                413,
            )


def _fit(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    """(width, height) scaled down, aspect kept, to at most ``max_pixels`` (unchanged when already within)."""
    if width * height <= max_pixels:
        return width, height
    scale = (max_pixels / (width * height)) ** 0.5
    return max(1, int(width * scale)), max(1, int(height * scale))


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
        return _fetch_remote(url, kind, limits, max_bytes)
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
    try:
        info = os.stat(real)
    except FileNotFoundError:
        raise MediaError(f"{path} does not exist.", 404) from None
    except OSError as exc:
        raise MediaError(f"{path} cannot be read by the server ({exc.strerror}).", 403) from None
    if not stat.S_ISREG(info.st_mode):
        what = ("a directory" if stat.S_ISDIR(info.st_mode) else "a named pipe (FIFO)" if stat.S_ISFIFO(info.st_mode)
                else "a socket" if stat.S_ISSOCK(info.st_mode) else "a device")
        raise MediaError(f"{path} is {what}, not a regular file; point {kind}_url at an {kind} file.")
    if info.st_size > max_bytes:
        raise MediaError(f"{path} is larger than the {max_bytes // 1048576} MiB limit.", 413)
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as fh:
            return fh.read(max_bytes + 1), ""
    except OSError as exc:
        raise MediaError(f"{path} cannot be read by the server ({exc.strerror}).", 403) from None


def _fetch_remote(url: str, kind: str, limits: MediaLimits, max_bytes: int) -> tuple[bytes, str]:
    """GET a remote URL within a total deadline (3 × the per-read timeout); every failure is a MediaError."""
    import httpx

    deadline = time.monotonic() + 3 * limits.fetch_timeout_s
    short = url[:80]
    try:
        with httpx.stream("GET", url, timeout=limits.fetch_timeout_s, follow_redirects=False) as resp:
            if resp.status_code != 200:
                raise MediaError(f"fetching {short} answered HTTP {resp.status_code}; send the {kind} inline as a "
                                 "data URI, or a URL that answers 200.", 502)
            chunks, size = [], 0
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise MediaError(f"{kind} at {short} is larger than {max_bytes // 1048576} MiB.", 413)
                if time.monotonic() > deadline:
                    raise MediaError(f"fetching {short} took longer than {3 * limits.fetch_timeout_s:.0f} s in all; "
                                     f"send the {kind} inline as a data URI.", 504)
                chunks.append(chunk)
            return b"".join(chunks), resp.headers.get("content-type", "").split(";")[0].lower()
    except httpx.InvalidURL as exc:
        raise MediaError(f"{kind}_url {short!r} is not a valid URL ({exc}).") from None
    except httpx.TimeoutException:
        raise MediaError(f"fetching {short} timed out after {limits.fetch_timeout_s:.0f} s; send the {kind} "
                         "inline as a data URI.", 504) from None
    except httpx.HTTPError as exc:
        raise MediaError(f"fetching {short} failed ({type(exc).__name__}: {exc}); check the URL is reachable "
                         f"from the server, or send the {kind} inline as a data URI.", 502) from None


def load_image(url: str, limits: MediaLimits, spent: RequestPixels | None = None):
    """Decode an ``image_url`` into an RGB PIL image, refusing empty, corrupt, truncated or huge input.

    The result is downscaled (aspect kept) to at most ``limits.max_pixels``, the encoder's input size.
    """
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
    (spent or RequestPixels(limits)).add(width * height, f"an image of {width}x{height}")
    target = _fit(width, height, limits.max_pixels)
    with DECODE_BUDGET.hold(width * height):
        if img.format == "JPEG":
            img.draft("RGB", target)  # decode at a reduced scale where JPEG allows it
        try:
            img.load()
        except Exception as exc:
            raise MediaError(f"image data is corrupt or truncated ({exc}).") from None
        if img.mode != "RGB":
            img = img.convert("RGB")
        if img.size != target:
            img = img.resize(target, Image.Resampling.BICUBIC, reducing_gap=2.0)
    return img


def load_video(url: str, limits: MediaLimits, fps: float, spent: RequestPixels | None = None):
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
    looks_mp4 = data[4:8] == b"ftyp"
    try:
        container = av.open(io.BytesIO(data))
    except Exception:
        if looks_mp4:
            raise MediaError(
                f"video starts like an MP4 but cannot be read ({len(data):,} bytes): it is truncated or its index "
                "(moov box) is missing. Send the whole file; if it was cut while recording, re-encode it "
                "(ffmpeg -i in.mp4 -movflags +faststart out.mp4)."
            ) from None
        raise MediaError(f"video data is not a readable video ({len(data)} bytes; MP4 or WEBM expected).") from None
    spent = spent or RequestPixels(limits)
    with container:
        if container.format.name.endswith("_pipe") or container.format.name in ("image2", "gif"):
            kind = container.format.name.replace("_pipe", "").upper()
            raise MediaError(f"video_url holds a still image ({kind}), not a video; send it as an image_url part.",
                             415)
        if not container.streams.video:
            raise MediaError(
                "video has no video stream"
                + (" (an MP4 with audio only, or cut before its video track)." if looks_mp4 else ".")
            )
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        if width < 1 or height < 1:
            raise MediaError(f"video frames have no pixels ({width}x{height}); the file is truncated or corrupt.")
        kept_w, kept_h = _fit(width, height, limits.max_pixels)
        kept_w, kept_h = kept_w + kept_w % 2, kept_h + kept_h % 2
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
        max_decoded = min(int(limits.max_video_seconds * max(rate, 1.0)) + 1, limits.max_decoded_frames)
        kept: list = []  # (index, frame) at the encoder's size; decimated so memory stays bounded
        stride, decoded = 1, 0
        try:
            for frame in container.decode(stream):
                decoded += 1
                if decoded > max_decoded:
                    raise MediaError(
                        f"video has more than {max_decoded} frames (limits: {limits.max_video_seconds:.0f} s, "
                        f"{limits.max_decoded_frames} decoded frames); send a shorter clip.",
                        413,
                    )
                if (decoded - 1) % stride == 0:
                    spent.add(kept_w * kept_h, f"video frame {decoded}")
                    kept.append((decoded - 1, frame.to_ndarray(format="rgb24", width=kept_w, height=kept_h)))
                    if len(kept) > 4 * limits.max_video_frames:
                        kept, stride = kept[::2], stride * 2
        except MediaError:
            raise
        except Exception as exc:
            if not kept:
                raise MediaError(f"video data is corrupt ({exc}).") from None
    if not kept:
        raise MediaError("video has no decodable frames" + (": the MP4 is truncated or corrupt." if looks_mp4 else "."))
    seconds = decoded / rate
    wanted = max(2, min(limits.max_video_frames, round(seconds * fps)))
    wanted -= wanted % 2
    idx = np.linspace(0, len(kept) - 1, wanted).round().astype(int)
    sampled = np.stack([kept[i][1] for i in idx])
    return sampled, wanted / max(seconds, 1e-6)
