"""``vllm`` with dummy weights: the vLLM CLI with ``--load-format dummy`` appended (GPU machine, no weights).

Use as vlmctl's launcher: ``vlmctl serve --plan plan.json --vllm-bin 'python3 benchmarks/gpu/vllm_dummy.py'``,
or directly: ``python3 benchmarks/gpu/vllm_dummy.py serve MODEL_DIR --enforce-eager …``.
"""
import sys

import torch  # noqa: F401  (torch before vllm: gpu-box.md)

if __name__ == "__main__":
    if "--load-format" not in sys.argv:
        sys.argv += ["--load-format", "dummy"]
    sys.argv[0] = "vllm"
    from vllm.entrypoints.cli.main import main

    sys.exit(main())
