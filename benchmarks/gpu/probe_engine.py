"""Start one vLLM engine (offline ``vllm.LLM``, dummy weights), report ready or the start failure, and
optionally send requests (a worst-case video, or a normal mix). Runs on the GPU machine, one process per
configuration; the calibration runner (calibrate.py) reads its log.

Usage: python3 probe_engine.py MODEL_DIR '{"gpu_memory_utilization": 0.9, ...}' [none|worst_video|normal_mix|worst_video+normal_mix]
"""
from __future__ import annotations

import json
import math
import os
import sys
import time


def _prompt(kind: str, n: int = 1) -> str:
    pad = "<|vision_start|><|video_pad|><|vision_end|>" if kind == "video" else "<|vision_start|><|image_pad|><|vision_end|>"
    return ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
            + pad * n + "Describe this.<|im_end|>\n<|im_start|>assistant\n")


def _frames(num: int, h: int, w: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(1, h, w, 3), dtype=np.uint8)
    return np.repeat(base, num, axis=0) ^ rng.integers(0, 255, size=(num, 1, 1, 3), dtype=np.uint8)


def _run_requests(llm, which: str) -> None:
    from PIL import Image
    from vllm import SamplingParams

    params = SamplingParams(max_tokens=8, temperature=0.0, ignore_eos=True)
    for step in which.split("+"):
        t0 = time.time()
        if step == "worst_video":
            frames = _frames(14, 3584, 3584, seed=1)
            reqs = [{"prompt": _prompt("video"), "multi_modal_data": {"video": frames}}]
        elif step == "normal_mix":
            img = Image.fromarray(_frames(1, 720, 1280, seed=2)[0])
            reqs = [{"prompt": _prompt("image"), "multi_modal_data": {"image": img}} for _ in range(8)]
            reqs += [{"prompt": _prompt("video"), "multi_modal_data": {"video": _frames(8, 360, 640, seed=3)}}]
            reqs += [{"prompt": "<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n"}]
        else:
            continue
        print(f"PROBE REQUEST {step} start", flush=True)
        try:
            outs = llm.generate(reqs, params)
            toks = sum(len(o.prompt_token_ids or []) for o in outs)
            print(f"PROBE REQUEST {step} ok prompt_tokens={toks} secs={time.time() - t0:.1f}", flush=True)
        except Exception as exc:  # noqa: BLE001 - the failure is the measurement
            print(f"PROBE REQUEST {step} FAILED {type(exc).__name__}: {str(exc)[:300]}", flush=True)
            return


def _kv_layout(worker) -> dict | None:
    """Runs inside the worker (collective_rpc): the KV cache config as plain data (groups, blocks, pages)."""
    cfg = getattr(worker.model_runner, "kv_cache_config", None)
    if cfg is None:
        return None
    groups = []
    for group in cfg.kv_cache_groups:
        spec = group.kv_cache_spec
        row = {"spec": type(spec).__name__, "layers": len(group.layer_names),
               "block_size": getattr(spec, "block_size", None), "page_size_bytes": getattr(spec, "page_size_bytes", None)}
        for key in ("num_kv_heads", "head_size", "dtype", "shapes", "dtypes", "sliding_window", "mamba_type",
                    "mamba_cache_mode", "num_speculative_blocks", "page_size_padded"):
            if hasattr(spec, key):
                row[key] = str(getattr(spec, key))
        if hasattr(spec, "shapes") and hasattr(spec, "dtypes"):  # a linear-attention (mamba) state: unpadded bytes
            row["state_bytes_unpadded"] = sum(math.prod(sh) * dt.itemsize for sh, dt in zip(spec.shapes, spec.dtypes))
        groups.append(row)
    vcfg = getattr(worker, "vllm_config", None)
    cache = getattr(vcfg, "cache_config", None)
    settings = {k: str(getattr(cache, k, None)) for k in ("block_size", "mamba_block_size", "mamba_cache_mode",
                                                          "mamba_cache_dtype", "mamba_ssm_cache_dtype",
                                                          "enable_prefix_caching", "cache_dtype")}
    settings["max_num_seqs"] = getattr(getattr(vcfg, "scheduler_config", None), "max_num_seqs", None)
    return {"num_blocks": cfg.num_blocks, "groups": groups, "cache_settings": settings,
            "tensors": [{"size": t.size, "shared_by": len(t.shared_by)} for t in cfg.kv_cache_tensors]}


def _report_layout(llm) -> None:
    """PROBE KVCFG {json} and PROBE SMI (GPU memory used by every process, MiB), when PROBE_KV_DUMP=1."""
    import subprocess

    if os.environ.get("PROBE_KV_DUMP") != "1":
        return
    try:
        print("PROBE KVCFG " + json.dumps(llm.collective_rpc(_kv_layout)[0], default=str), flush=True)
    except Exception as exc:  # noqa: BLE001 - optional detail; the log lines stay the measurement
        print(f"PROBE KVCFG FAILED {type(exc).__name__}: {str(exc)[:300]}", flush=True)
    smi = subprocess.run(["nvidia-smi", "--query-gpu=memory.used,memory.total", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True).stdout.strip()
    print(f"PROBE SMI used_total_mib={smi}", flush=True)


def main() -> int:
    model, kwargs = sys.argv[1], json.loads(sys.argv[2])
    requests = sys.argv[3] if len(sys.argv) > 3 else "none"
    import torch  # noqa: F401  (torch before vllm: see gpu-box.md)
    import vllm

    print(f"PROBE vllm={vllm.__version__} torch={torch.__version__} "
          f"V2_RUNNER_ENV={os.environ.get('VLLM_USE_V2_MODEL_RUNNER')}", flush=True)
    t0 = time.time()
    try:
        llm = vllm.LLM(model=model, load_format="dummy", seed=0, **kwargs)
    except Exception as exc:  # noqa: BLE001
        print(f"PROBE START FAILED after {time.time() - t0:.1f}s {type(exc).__name__}: {str(exc)[:500]}", flush=True)
        os._exit(3)
    print(f"PROBE READY after {time.time() - t0:.1f}s", flush=True)
    _report_layout(llm)
    _run_requests(llm, requests)
    print("PROBE DONE", flush=True)
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
