"""Start one vLLM engine (offline ``vllm.LLM``) and say how it went; ``vlmctl calibrate`` runs one per process.

    python -m vlmctl.calibrate.probe MODEL_DIR '{"gpu_memory_utilization": 0.9, ...}' [--load-format dummy]
    python -m vlmctl.calibrate.probe --gpu-only

Prints ``PROBE vllm=… torch=…``, then vLLM's own log, then ``PROBE READY`` or ``PROBE START FAILED …``; the caller
stops it once vLLM has logged the KV cache size. The engine process never touches CUDA itself (a CUDA context of its
own would take memory from the engine it measures): ``--gpu-only`` is a separate, short process that prints
``PROBE gpu=NAME total_bytes=N cc=X.Y`` and exits.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?")
    ap.add_argument("engine", nargs="?", help="vllm.LLM keyword arguments as JSON")
    ap.add_argument("--gpu-only", action="store_true", help="print the GPU line and exit")
    ap.add_argument("--load-format", default="dummy")
    ap.add_argument("--name", default="")
    args = ap.parse_args(argv)
    import torch  # before vllm: importing vllm first has failed on the GPU machine

    if args.gpu_only:
        free, total = torch.cuda.mem_get_info()
        major, minor = torch.cuda.get_device_capability()
        print(f"PROBE gpu={torch.cuda.get_device_name()} total_bytes={total} cc={major}.{minor} free_bytes={free}",
              flush=True)
        return 0
    if not args.model or not args.engine:
        ap.error("MODEL and ENGINE are required unless --gpu-only")
    kwargs = json.loads(args.engine)
    import vllm

    print(f"PROBE vllm={vllm.__version__} torch={torch.__version__} "
          f"V2_RUNNER_ENV={os.environ.get('VLLM_USE_V2_MODEL_RUNNER')}", flush=True)
    t0 = time.time()
    try:
        vllm.LLM(model=args.model, load_format=args.load_format, seed=0, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the failure is the measurement
        print(f"PROBE START FAILED after {time.time() - t0:.1f}s {type(exc).__name__}: {str(exc)[:500]}", flush=True)
        os._exit(3)
    print(f"PROBE READY after {time.time() - t0:.1f}s", flush=True)
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
