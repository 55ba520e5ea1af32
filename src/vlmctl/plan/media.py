"""Media profiles: how much image/video a plan admits, from the richest to text-only.

The planner walks this ladder until a profile starts; every step costs the user something
(smaller images, no video), so the plan says which step it took and why.
"""
from __future__ import annotations

from dataclasses import dataclass

from vlmctl.models.spec import ModelSpec
from vlmctl.plan.request import PlanRequest



@dataclass(frozen=True)
class MediaProfile:
    """Limits for one plan: images/videos per prompt, largest image area, frames per video."""

    name: str
    images: int
    videos: int
    max_pixels: int
    frames: int
    rank: int
    """0 = everything the model can take; higher = more restricted."""
    fixed: bool = False
    """True when the user set the limits (never relaxed or tightened by the search)."""

    @property
    def vision_on(self) -> bool:
        return self.images > 0 or self.videos > 0


def ladder(spec: ModelSpec) -> list[MediaProfile]:
    """The search's media profiles, richest first."""
    full = spec.max_pixels
    frames = spec.family.max_frames_per_video
    px = spec.family.pixels_per_token(spec)
    steps = [
        ("full", 8, 1, full, frames),
        ("full images, no video", 8, 0, full, 0),
        ("1280-token images, video", 8, 1, 1280 * px, 16),
        ("512-token images, video", 4, 1, 512 * px, 16),
        ("512-token images, no video", 4, 0, 512 * px, 0),
        ("256-token images, no video", 2, 0, 256 * px, 0),
        ("128-token image, no video", 1, 0, 128 * px, 0),
        ("text only", 0, 0, min(full, 128 * px), 0),
    ]
    return [MediaProfile(n, i, v, min(px, full), f, rank) for rank, (n, i, v, px, f) in enumerate(steps)]


def profiles_for(spec: ModelSpec, req: PlanRequest, default_limit: int = 999) -> list[MediaProfile]:
    """The user's own limits as one fixed profile (a modality left out gets vLLM's ``default_limit``, from the
    version profile), or the ladder when none were given."""
    if req.limit_mm_per_prompt is None and req.mm_processor_kwargs is None:
        return ladder(spec)
    limits = req.limit_mm_per_prompt or {}
    kwargs = req.mm_processor_kwargs or {}
    return [MediaProfile(
        name="as given",
        images=limits.get("image", default_limit),
        videos=limits.get("video", default_limit),
        max_pixels=kwargs.get("max_pixels", spec.max_pixels),
        frames=kwargs.get("num_frames", spec.family.max_frames_per_video),
        rank=0, fixed=True,
    )]
