"""The request mix: text, images of chosen sizes, short videos; each entry with a weight."""
from __future__ import annotations

import random
import re
from dataclasses import dataclass

from vlmctl.bench.prompts import PromptMaker
from vlmctl.errors import ConfigError

_MIX_RE = re.compile(r"^(?P<kind>text|image|video)(?:@(?P<w>\d+)x(?P<h>\d+)(?:x(?P<f>\d+))?)?(?:=(?P<weight>\d+))?$")


@dataclass(frozen=True)
class MixEntry:
    """One kind of request: ``text``, ``image@WxH`` or ``video@WxHxFRAMES``, with a weight."""

    kind: str
    width: int = 0
    height: int = 0
    frames: int = 0
    weight: int = 1

    @property
    def label(self) -> str:
        """How the entry is written on the command line (and in results)."""
        if self.kind == "text":
            return "text"
        size = f"{self.width}x{self.height}" + (f"x{self.frames}" if self.kind == "video" else "")
        return f"{self.kind}@{size}"


def parse_mix(items: list[str] | tuple[str, ...]) -> list[MixEntry]:
    """Parse ``text=3 image@1024x768=1 video@448x448x8=1`` (weights default to 1)."""
    entries = []
    for item in items:
        for part in filter(None, (p.strip() for p in item.split(","))):
            m = _MIX_RE.match(part)
            if not m:
                raise ConfigError(
                    f"--mix '{part}' is not KIND[@WxH[xFRAMES]][=WEIGHT].",
                    fix="e.g. --mix text=2 --mix image@1024x768=1 --mix video@448x448x8=1")
            kind = m["kind"]
            if kind == "image" and not m["w"] or kind == "video" and not m["f"]:
                raise ConfigError(f"--mix '{part}' needs a size: image@WxH or video@WxHxFRAMES.",
                                  fix="e.g. image@512x512 or video@448x448x8")
            if kind == "text" and m["w"]:
                raise ConfigError(f"--mix '{part}': text takes no size.", fix="write text or text=WEIGHT")
            entry = MixEntry(kind, int(m["w"] or 0), int(m["h"] or 0), int(m["f"] or 0), int(m["weight"] or 1))
            _check_entry(entry, part)
            entries.append(entry)
    if not entries:
        entries = [MixEntry("text")]
    if sum(e.weight for e in entries) == 0:
        raise ConfigError("--mix weights sum to 0.", fix="give at least one entry a weight >= 1")
    return entries


#: Largest media the load generator makes: a side, the pixels of one image or frame, frames of one video.
MAX_SIDE, MAX_PIXELS, MAX_FRAMES, MAX_WEIGHT = 16384, 50_000_000, 1024, 1_000_000


def _check_entry(entry: MixEntry, part: str) -> None:
    if entry.kind != "text":
        if not (1 <= entry.width <= MAX_SIDE and 1 <= entry.height <= MAX_SIDE):
            raise ConfigError(f"--mix '{part}': width and height must be between 1 and {MAX_SIDE} pixels.",
                              fix="e.g. image@1024x768")
        if entry.width * entry.height > MAX_PIXELS:
            raise ConfigError(f"--mix '{part}' is {entry.width * entry.height:,} pixels; at most {MAX_PIXELS:,}.",
                              fix="e.g. image@4096x4096")
    if entry.kind == "video" and not 1 <= entry.frames <= MAX_FRAMES:
        raise ConfigError(f"--mix '{part}': a video has between 1 and {MAX_FRAMES} frames.",
                          fix="e.g. video@448x448x8")
    if entry.weight > MAX_WEIGHT:
        raise ConfigError(f"--mix '{part}': weight {entry.weight} is above {MAX_WEIGHT}.", fix="e.g. image@512x512=2")


class Workload:
    """Builds chat-completion bodies for the mix.

    Media come from a pool made once (``variants`` per entry, drawn at random: vLLM serves them from its prefix
    and encoder caches after their first use), or with ``distinct`` one new item per request (`media_feed`).
    """

    def __init__(self, mix: list[MixEntry], model: str, max_tokens: int, prompt: PromptMaker | int = 48,
                 variants: int = 4, seed: int = 0, ignore_eos: bool = False, distinct: bool = False) -> None:
        from vlmctl.bench import media

        self.mix, self.model, self.max_tokens = mix, model, max_tokens
        self.prompt = prompt if isinstance(prompt, PromptMaker) else PromptMaker(prompt)
        self.ignore_eos = ignore_eos
        self.rng = random.Random(seed)
        self.variants, self.distinct = variants, distinct
        self.media: dict[str, list[str]] = {}
        self.feeds: dict = {}
        self._executor = None
        labels = {e.label: e for e in mix if e.kind != "text"}
        if distinct and labels:
            from vlmctl.bench import media_feed

            self._executor = media_feed.executor()
            first = media_feed.SEED_BASE * (1 + abs(seed) % 1000)
            self.feeds = {label: media_feed.MediaFeed(e, first + i * 10**6, self._executor)
                          for i, (label, e) in enumerate(sorted(labels.items()))}
            return
        for label, entry in labels.items():
            if entry.kind == "image":
                self.media[label] = [media.data_uri(media.image_bytes(entry.width, entry.height, s), "image/jpeg")
                                     for s in range(variants)]
            else:
                self.media[label] = [
                    media.data_uri(media.video_bytes(entry.width, entry.height, entry.frames, seed=s), "video/mp4")
                    for s in range(variants)]

    @property
    def media_reuse(self) -> str:
        """``distinct`` or ``pool of N`` (for the result's meta)."""
        return "distinct" if self.distinct else f"pool of {self.variants}"

    def media_generation(self) -> dict | None:
        """Per mix entry with distinct media: items sent, ms per generated item, waits for generation."""
        return {label: feed.stats() for label, feed in self.feeds.items()} or None

    def close(self) -> None:
        """Stop making media ahead (distinct mode)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def _draw(self):
        entry = self.rng.choices(self.mix, weights=[e.weight for e in self.mix])[0]
        text = self.prompt.make(self.rng)
        if entry.kind == "text":
            return entry, text, None
        if self.feeds:
            return entry, text, self.feeds[entry.label].take()
        return entry, text, self.rng.choice(self.media[entry.label])

    def _body(self, entry: MixEntry, text: str, url: str | None) -> tuple[str, dict]:
        content: list[dict] = []
        if entry.kind == "image":
            content.append({"type": "image_url", "image_url": {"url": url}})
        elif entry.kind == "video":
            content.append({"type": "video_url", "video_url": {"url": url}})
        content.append({"type": "text", "text": text})
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": content if entry.kind != "text" else text}],
            "max_tokens": self.max_tokens,
            "temperature": 0.0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self.ignore_eos:
            body["ignore_eos"] = True
        return entry.label, body

    def next_request(self) -> tuple[str, dict]:
        """(mix label, request body) for the next request, drawn by weight (blocks while its media is made)."""
        entry, text, media = self._draw()
        if media is not None and not isinstance(media, str):
            media = self.feeds[entry.label].result(media)
        return self._body(entry, text, media)

    async def next_request_async(self) -> tuple[str, dict]:
        """`next_request` for the event loop: waiting for media being made does not stall requests in flight."""
        entry, text, media = self._draw()
        if media is not None and not isinstance(media, str):
            media = await self.feeds[entry.label].result_async(media)
        return self._body(entry, text, media)
