"""Distinct media for every request: item ``n`` of a mix entry is drawn from its own seed, made ahead of need
by background threads, with a bounded number of items waiting in memory.

vLLM keys its prefix cache and encoder cache by a hash of each image's or video's content, so media that
recur skip the vision encoder and most of the prefill; a feed never repeats an item within a run.
"""
from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vlmctl.bench.workload import MixEntry

#: Bytes of generated media a feed keeps ready at most (per mix entry).
AHEAD_BYTES = 64 * 2**20
#: Seed of item 0 for ``--seed 0``; far from the pool's seeds (0, 1, 2, …) so no item equals a pool image.
SEED_BASE = 10**7


def make_item(entry: MixEntry, seed: int) -> str:
    """The data URI of one image or video of ``entry`` drawn from ``seed``."""
    from vlmctl.bench import media

    if entry.kind == "image":
        return media.data_uri(media.image_bytes(entry.width, entry.height, seed), "image/jpeg")
    return media.data_uri(media.video_bytes(entry.width, entry.height, entry.frames, seed=seed), "video/mp4")


def _estimate_bytes(entry: MixEntry) -> int:
    """A generous size of one item's data URI (JPEG about 1/10 of raw RGB, base64 4/3)."""
    frames = entry.frames if entry.kind == "video" else 1
    return max(1, entry.width * entry.height * 3 * frames // 6)


class MediaFeed:
    """Item after item of one mix entry, each from seed ``first_seed + n``, generated ``ahead`` items early."""

    def __init__(self, entry: MixEntry, first_seed: int, executor: ThreadPoolExecutor, ahead: int | None = None):
        self.entry, self.first_seed, self.executor = entry, first_seed, executor
        self.ahead = ahead or max(2, min(64, AHEAD_BYTES // _estimate_bytes(entry)))
        self.pending: list[Future] = []
        self.issued = 0
        self.made = 0
        self.make_s = 0.0
        self.waited_s = 0.0
        self.waits = 0
        self._lock = threading.Lock()
        self._fill()

    def _make(self, seed: int) -> str:
        start = time.perf_counter()
        item = make_item(self.entry, seed)
        with self._lock:
            self.made += 1
            self.make_s += time.perf_counter() - start
        return item

    def _fill(self) -> None:
        while len(self.pending) < self.ahead:
            seed = self.first_seed + self.issued + len(self.pending)
            self.pending.append(self.executor.submit(self._make, seed))

    def take(self) -> Future:
        """The future data URI of the next item (the next seed); queues one more to keep ``ahead`` waiting."""
        future = self.pending.pop(0)
        self.issued += 1
        self._fill()
        return future

    def result(self, future: Future) -> str:
        """Block until ``future`` is made, counting the wait."""
        if future.done():
            return future.result()
        start = time.perf_counter()
        try:
            return future.result()
        finally:
            self._waited(time.perf_counter() - start)

    async def result_async(self, future: Future) -> str:
        """Await ``future`` without blocking the event loop, counting the wait."""
        if future.done():
            return future.result()
        start = time.perf_counter()
        try:
            return await asyncio.wrap_future(future)
        finally:
            self._waited(time.perf_counter() - start)

    def _waited(self, seconds: float) -> None:
        self.waits += 1
        self.waited_s += seconds

    def stats(self) -> dict:
        """Items sent and the client-side cost: ms per generated item, and how long requests waited for one."""
        with self._lock:
            made, make_s = self.made, self.make_s
        return {"items": self.issued, "generated": made,
                "ms_per_item": round(make_s / made * 1e3, 2) if made else None,
                "waits": self.waits, "waited_ms": round(self.waited_s * 1e3, 1)}


def executor(workers: int | None = None) -> ThreadPoolExecutor:
    """Background threads that make media (PIL and PyAV release the GIL while encoding)."""
    return ThreadPoolExecutor(max_workers=workers or max(1, min(4, os.cpu_count() or 1)),
                              thread_name_prefix="vlmctl-bench-media")
