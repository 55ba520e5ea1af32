"""A stand-in for `vllm serve` in supervision tests: prints vLLM-like start-up lines, then either dies
with a real vLLM error text (``--die kv``/``--die bf16``/``--die unknown``), stalls like vLLM that joined no
Ray cluster (``--stall``), or serves /health and
/v1/models on ``--port`` until killed. It also starts a grandchild (like vLLM's workers) that
sleeps, so tests can check that stopping kills the whole group.
"""
from __future__ import annotations

import argparse
import http.server
import json
import os
import subprocess
import sys
import time
from pathlib import Path

LINES = [
    "INFO 11-24 21:00:01 [model_runner.py:1] Starting to load model /models/qwen...",
    "INFO 11-24 21:00:03 [default_loader.py:1] Loading weights took 1.52 seconds",
    "INFO 11-24 21:00:04 [gpu_worker.py:1] Available KV cache memory: 10.20 GiB",
    "INFO 11-24 21:00:05 [gpu_model_runner.py:1] Capturing CUDA graphs (mixed prefill-decode, PIECEWISE): 100%",
]
DEATHS = {
    "kv": "ValueError: To serve at least one request with the models's max seq len (128000), (7.03 GiB KV cache is "
    "needed, which is larger than the available KV cache memory (2.10 GiB). Based on the available memory, the "
    "estimated maximum model length is 38208. Try increasing `gpu_memory_utilization` or decreasing "
    "`max_model_len` when initializing the engine.",
    "bf16": "ValueError: Bfloat16 is only supported on GPUs with compute capability of at least 8.0. Your NVIDIA "
    "GeForce RTX 2080 Ti GPU has compute capability 7.5. You can use float16 instead by explicitly setting the "
    "`dtype` flag in CLI, for example: --dtype=half.",
    "unknown": "RuntimeError: something nobody has seen before went wrong",
}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--die", choices=sorted(DEATHS))
    p.add_argument("--die-after-ready", action="store_true")
    p.add_argument("--stall", action="store_true", help="print the real lines of vLLM joining no Ray cluster, then wait")
    p.add_argument("--api-key")
    args, _ = p.parse_known_args()
    args.die = args.die or os.environ.get("FAKE_VLLM_DIE") or None
    args.die_after_ready = args.die_after_ready or bool(os.environ.get("FAKE_VLLM_DIE_AFTER_READY"))
    args.api_key = args.api_key or os.environ.get("VLLM_API_KEY")
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # a worker in our group
    for line in LINES[: 2 if args.die else None]:
        print(line, flush=True)
        time.sleep(0.1)
    if args.stall:  # vLLM 0.26 on a per-node --temp-dir cluster without RAY_ADDRESS (tests/doctor/fixtures)
        fixture = Path(__file__).parents[1] / "doctor" / "fixtures" / "ray_local_instance_h100.log"
        for line in fixture.read_text().splitlines():
            if not line.startswith("#"):
                print(line, flush=True)
        time.sleep(600)
        return 1
    if args.die:
        print("Traceback (most recent call last):", flush=True)
        print(DEATHS[args.die], flush=True)
        return 1

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/v1/models" and args.api_key and self.headers.get("Authorization") != f"Bearer {args.api_key}":
                self.send_response(401)
                self.end_headers()
                return
            body = {"/health": b"", "/v1/models": json.dumps({"data": [{"id": "fake-qwen"}]}).encode()}.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *a):
            pass

    server = http.server.HTTPServer(("127.0.0.1", args.port), Handler)
    print(f"INFO:     Uvicorn running on http://127.0.0.1:{args.port}", flush=True)
    print("INFO:     Application startup complete.", flush=True)
    if args.die_after_ready:
        server.timeout = 0.2
        deadline = time.time() + 3
        while time.time() < deadline:
            server.handle_request()
        print(DEATHS["kv"], flush=True)
        return 1
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
