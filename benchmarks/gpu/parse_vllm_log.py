"""Extract vLLM's memory and KV-cache figures from one engine log (``VLLM_LOGGING_LEVEL=DEBUG``).

The parser is vlmctl's own (:mod:`vlmctl.calibrate.logs`, patterns from the vLLM version profile); this module keeps
the name the GPU visit scripts import.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
from vlmctl.calibrate.logs import parse_log, table  # noqa: E402

__all__ = ["parse_log", "table"]
