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


def predicted_levels(plan, result: dict, k=None) -> list[dict]:
    """The plan's speed model for each measured level, for the same workload as the bench sent it.

    One row per level: the speed model's workload, concurrency, measured and predicted output tok/s, median TTFT and
    TPOT (ms). Media drawn from a pool (``meta.media_reuse`` "pool of N", and results that predate it) are
    predicted as prefix-cache hits (``image@WxH:repeat``), as vLLM served them; with ``--distinct-media`` as new
    media. Empty when the mix has several kinds, the levels are rate-driven, or the plan's model or GPUs are not
    in the catalog. ``k``: the speed constants (default: the plan's vLLM version's, with the host factor of the
    calibration file the plan was made with, when it still has one).
    """
    import dataclasses

    from vlmctl.engines.vllm.speed import speed_constants
    from vlmctl.errors import ConfigError
    from vlmctl.models.loader import load_model_spec
    from vlmctl.plan import speed as spd

    mix = result["meta"]["mix"]
    if len(mix) != 1:
        return []
    try:
        spec = load_model_spec(plan.model_path or plan.model)
        label = mix[0].split("=")[0]
        if label != "text" and result["meta"].get("media_reuse", "pool") != "distinct":
            label += ":repeat"
        work = spd.parse_workload(label)
        replica = spd.replica_from_plan(spec, plan)
    except (ConfigError, OSError, StopIteration):
        return []
    k = k or _plan_constants(plan)
    media = spd.media_tokens(spec, work, plan.media_limits.max_pixels)
    rows = []
    for level in result["levels"]:
        s = level["summary"]
        if not level.get("concurrency") or level.get("rate") or not s["completed"] or not s["ttft_s"]:
            continue
        prompt = s["total_input_tokens"] / s["completed"]
        out = max(1, round(s["total_output_tokens"] / s["completed"]))
        shaped = dataclasses.replace(work, prompt_tokens=max(1, round(prompt) - media - spd.template_tokens(spec)),
                                     output_tokens=out)
        sp = spd.predict(spec, replica, plan.data_parallel_size, shaped, level["concurrency"], k,
                         requests=s["completed"])
        rows.append({"workload": work.label, "concurrency": level["concurrency"],
                     "output_tokens_per_s": (s["output_throughput"], round(sp.output_tokens_per_s, 1)),
                     "ttft_ms": (round(s["ttft_s"]["p50"] * 1e3, 1), round(sp.ttft_ms, 1)),
                     "tpot_ms": (round(s["tpot_s"]["p50"] * 1e3, 2) if s["tpot_s"] else None, round(sp.tpot_ms, 2))})
    return rows


def _plan_constants(plan):
    """The speed constants ``plan.speed`` was predicted with: the version's, and the calibration file's host
    factor when the file is still readable."""
    from vlmctl.engines.vllm.speed import speed_constants, with_host_factor
    from vlmctl.errors import ConfigError
    from vlmctl.plan.calibration import read_calibration_file

    k = speed_constants(plan.vllm_version)
    if plan.calibration_file:
        try:
            data = read_calibration_file(plan.calibration_file)
        except ConfigError:
            return k
        if data.speed is not None:
            return with_host_factor(k, data.speed.host_factor, plan.calibration_file)
    return k
