"""A stand-in for `python -m vlmctl.calibrate.probe` on a machine without a GPU: it replays the real vLLM 0.26.0 log
of one recorded engine (docs/validation/logs/NAME.log, from the project's H100) line by line, then stays up like an
engine until it is stopped; with ``--gpu-only`` it prints the H100's GPU line. ``STANDIN_HANG=1``: print the first lines only and never reach the KV cache size.

    python standin_engine.py MODEL ENGINE_JSON --load-format dummy --name NAME
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

LOGS = Path(__file__).resolve().parents[2] / "docs" / "validation" / "logs"
#: cudaMemGetInfo total of the H100 the logs were recorded on (79.18 GiB), compute capability 9.0.
GPU_LINE = "PROBE gpu=NVIDIA H100 80GB HBM3 total_bytes=85018574848 cc=9.0 free_bytes=84460732416"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?")
    ap.add_argument("engine", nargs="?")
    ap.add_argument("--load-format")
    ap.add_argument("--name")
    ap.add_argument("--gpu-only", action="store_true")
    args = ap.parse_args()
    if args.gpu_only:
        print(GPU_LINE, flush=True)
        return 0
    lines = [line for line in (LOGS / f"{args.name}.log").read_text().splitlines() if not line.startswith("# ")]
    hang = os.environ.get("STANDIN_HANG") == "1"
    if hang:
        lines = lines[:3]
    for line in lines:
        print(line, flush=True)
        time.sleep(0.005)
    while True:  # an engine stays up until it is stopped
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
