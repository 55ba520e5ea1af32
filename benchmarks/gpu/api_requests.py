"""Requests through the OpenAI-compatible API (stdlib only): one image, the worst-case video, a normal mix.

    python3 benchmarks/gpu/api_requests.py --base http://127.0.0.1:8000/v1 --steps image,worst_video,normal_mix \
        --video /tmp/worst.mp4 --out result.json

Each step records HTTP status, seconds, prompt/completion tokens or the error body (first 300 chars).
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor


def _post(base: str, body: dict, timeout: float = 300.0) -> dict:
    req = urllib.request.Request(base + "/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    t0 = time.time()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data = json.loads(resp.read())
            usage = data.get("usage") or {}
            return {"status": resp.status, "secs": round(time.time() - t0, 2),
                    "prompt_tokens": usage.get("prompt_tokens"), "completion_tokens": usage.get("completion_tokens")}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, "secs": round(time.time() - t0, 2), "error": exc.read().decode(errors="replace")[:300]}
    except Exception as exc:  # noqa: BLE001 - connection refused / reset is the measurement
        return {"status": None, "secs": round(time.time() - t0, 2), "error": f"{type(exc).__name__}: {exc}"[:300]}


def _image_url(w: int, h: int, seed: int) -> str:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    arr = (np.linspace(0, 255, w)[None, :, None] + rng.integers(0, 60, (h, w, 3))).clip(0, 255).astype("uint8")
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _msg(model: str, parts: list[dict], max_tokens: int = 16) -> dict:
    return {"model": model, "max_tokens": max_tokens, "temperature": 0.0,
            "messages": [{"role": "user", "content": parts + [{"type": "text", "text": "Describe this."}]}]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--steps", default="image")
    ap.add_argument("--video", default="")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    with urllib.request.urlopen(args.base + "/models", timeout=30) as resp:
        model = json.loads(resp.read())["data"][0]["id"]
    results: dict = {"model": model}
    for step in args.steps.split(","):
        if step == "image":
            results[step] = _post(args.base, _msg(model, [{"type": "image_url", "image_url": {"url": _image_url(1280, 720, 1)}}]))
        elif step == "worst_video":
            with open(args.video, "rb") as fh:
                url = "data:video/mp4;base64," + base64.b64encode(fh.read()).decode()
            results[step] = _post(args.base, _msg(model, [{"type": "video_url", "video_url": {"url": url}}], 8), 600)
        elif step == "normal_mix":
            bodies = [_msg(model, [{"type": "image_url", "image_url": {"url": _image_url(1280, 720, i)}}]) for i in range(8)]
            bodies.append({"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "Hello there"}]})
            with ThreadPoolExecutor(9) as pool:
                outs = list(pool.map(lambda b: _post(args.base, b), bodies))
            results[step] = {"statuses": [o["status"] for o in outs], "max_secs": max(o["secs"] for o in outs),
                             "errors": [o.get("error") for o in outs if o.get("error")][:2]}
        print(step, json.dumps(results.get(step))[:400], flush=True)
    with open(args.out, "w") as fh:
        json.dump(results, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
