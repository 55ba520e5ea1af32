"""Bench defaults from a Plan: the served model name, a mix inside the plan's media limits, a sweep around
its predicted concurrency."""
from __future__ import annotations

import math

from vlmctl.bench.workload import MixEntry


def load_plan(path: str):
    """A ``Plan`` from `vlmctl plan --json` output (a PlanResult) or a bare Plan JSON."""
    from vlmctl.plan.files import read_plan

    return read_plan(path)


def _fit(width: int, height: int, max_pixels: int, grid: int) -> tuple[int, int]:
    """Scale (width, height) down to at most ``max_pixels``, keeping the aspect, multiples of ``grid``."""
    if width * height > max_pixels:
        scale = math.sqrt(max_pixels / (width * height))
        width, height = int(width * scale), int(height * scale)
    return max(grid, width // grid * grid), max(grid, height // grid * grid)


def mix_from_plan(plan) -> list[MixEntry]:
    """Text, plus a 1024x768-class image and an 8-frame video when the plan admits them (scaled to fit)."""
    limits = plan.media_limits
    mix = [MixEntry("text", weight=2)]
    if limits.max_images > 0:
        w, h = _fit(1024, 768, limits.max_pixels, limits.pixel_grid)
        mix.append(MixEntry("image", w, h, weight=2))
    if limits.max_videos > 0 and limits.max_video_frames > 0:
        w, h = _fit(448, 448, limits.max_pixels, limits.pixel_grid)
        mix.append(MixEntry("video", w, h, min(8, limits.max_video_frames), weight=1))
    return mix


def concurrency_from_plan(plan) -> list[int]:
    """Powers of two up to twice the plan's predicted concurrency (at least 2, at most max_num_seqs, 64)."""
    top = min(plan.max_num_seqs, 64, max(2, 2 * math.ceil(plan.max_concurrency)))
    levels, c = [], 1
    while c <= top:
        levels.append(c)
        c *= 2
    return levels
