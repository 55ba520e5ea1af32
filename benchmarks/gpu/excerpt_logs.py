"""Keep only the lines of engine logs that the validation uses (memory, KV cache, encoder, errors).

    python benchmarks/gpu/excerpt_logs.py LOG_DIR… --out docs/validation/logs
"""
import argparse
import re
from pathlib import Path

KEEP = re.compile(
    r"^# config|PROBE|Model loading took|Memory profiling takes|Initial free memory|Free memory after profiling"
    r"|Available KV cache memory|GPU KV cache size|Maximum concurrency|Encoder cache will be initialized"
    r"|CUDA graph memory|Graph capturing finished|No available memory|To serve at least one request"
    r"|OutOfMemoryError|CUDA out of memory|qk_reshaped|qwen2_5_vl\.py|ValueError|Error in memory profiling"
    r"|Chunked prefill is enabled|non-default args|Using .* backend|model_runner.py:\d+\] Using|V2 Model Runner"
    r"|Starting vLLM|Application startup complete|POST /v1/chat/completions|EngineDeadError|HTTP/1.1\" [45]\d\d"
)


def excerpt(text: str, max_lines: int = 120) -> str:
    lines = [ln[:600] for ln in text.splitlines() if KEEP.search(ln)]
    return "\n".join(lines[:max_lines]) + "\n"


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for d in args.dirs:
        for log in sorted(d.glob("*.log")):
            (args.out / log.name).write_text(excerpt(log.read_text(errors="replace")))
