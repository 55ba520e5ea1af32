"""The calibration constants the planner uses: a vLLM version profile's, for one model runner.

Everything else in vlmctl.plan is vLLM's own arithmetic (source lines in docs/planner.md). The constants are the
terms vLLM *measures* at start-up and we can only estimate; each version's live in ``vlmctl.engines.vllm``.
"""
from __future__ import annotations

from vlmctl.engines.vllm import GIB, Calibration, profile

__all__ = ["GIB", "Calibration", "calibration"]


def calibration(vllm_version: str | None, model_runner: str | None = None) -> Calibration:
    """The constants for a vLLM version (or the nearest supported one) and model runner."""
    return profile(vllm_version).calibration(model_runner)
