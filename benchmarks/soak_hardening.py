"""Soak the embedded server with bad input, load and faults; print the figures as a table and write JSON.

    python benchmarks/soak_hardening.py [--out artifacts/soak-hardening.json] [--streams 256]

Starts `vlmctl serve` (the CPU demo, supervised, --health-timeout 5) on a free 127.0.0.1 port, then:

1. bad requests: a fixed corpus (numbers, JSON, strings, unsupported OpenAI features, routes, headers,
   media); counts answers that are 5xx, not in OpenAI's error shape, or 2xx for input that must be refused;
2. memory: the engine's RSS before, at peak and after four concurrent requests with a 5000x5000 PNG each;
3. a 6 MB prompt: seconds until it is refused;
4. non-streaming requests whose client leaves after 1 s: how many the server cancels;
5. concurrent multimodal streams: how many end without ``[DONE]``;
6. a frozen engine (SIGSTOP): seconds until `vlmctl serve` says so, and until it has stopped it.
"""
from __future__ import annotations

import argparse
import base64
import concurrent.futures
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _png(width: int, height: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (20, 120, 200)).save(buf, format="PNG")
    return buf.getvalue()


def _mp4(frames: int = 12) -> bytes:
    import av
    import numpy as np

    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=6)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            img = np.full((48, 64, 3), i * 10, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def _uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _image_msg(url: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "?"}]}]


def bad_corpus() -> list[tuple[str, str, dict]]:
    """(category, name, request) where request = {method, path, body (str/bytes), headers}: all must be refused."""
    hi = '"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2'
    out: list[tuple[str, str, dict]] = []

    def post(cat, name, body, ctype="application/json", **headers):
        if ctype is not None:
            headers["content-type"] = ctype
        out.append((cat, name, {"method": "POST", "path": "/v1/chat/completions", "body": body, "headers": headers}))

    for field, values in {
        "temperature": ["NaN", "Infinity", "-Infinity", "-0.5", "2.5", "1e999", '"hot"', "true", "[]"],
        "top_p": ["NaN", "0", "-1", "1.5", "Infinity", '"x"'],
        "frequency_penalty": ["5", "-3", "NaN", "Infinity"],
        "presence_penalty": ["2.5", "-2.5", "NaN"],
        "seed": [str(2**64), str(-(2**64)), "9" * 5000, "1.5", '"s"', "NaN"],
        "max_tokens": ["0", "-5", str(10**30), "1e999", "2.5", '"ten"', "NaN", "null"],
        "n": ["2", "0", "-1", "1.5", "NaN"],
    }.items():
        for value in values:
            if field == "max_tokens" and value == "null":
                continue
            post("numbers", f"{field}={value[:12]}", '{"messages": [{"role": "user", "content": "hi"}], "%s": %s}'
                 % (field, value))
    for depth in (40, 1000, 100_000):
        post("json", f"nesting {depth}", '{"messages": %s}' % ("[" * depth + "]" * depth))
    for name, body in [("not json", "{not json"), ("array", "[1, 2]"), ("string", '"hi"'), ("number", "5"),
                       ("null", "null"), ("empty", ""), ("truncated", '{"messages": [{"role": "us'),
                       ("invalid utf-8", b'{"messages": "\xff\xfe"}'), ("big int key", '{"%s": 1}' % ("9" * 5000))]:
        post("json", name, body)
    for name, text in [("lone high surrogate", "\\ud800"), ("lone low surrogate", "\\udc00 x"),
                       ("reversed pair", "\\udc00\\ud800")]:
        post("strings", name, '{"messages": [{"role": "user", "content": "%s"}], "max_tokens": 2}' % text)
    post("strings", "surrogate in part", json.dumps({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "a"}]}]}).replace('"a"', '"\\ud83d"'))
    for name, extra in [
        ("tools", '"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]'),
        ("tool_choice required", '"tool_choice": "required"'),
        ("tool_choice named", '"tool_choice": {"type": "function", "function": {"name": "f"}}'),
        ("json_schema", '"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}'),
        ("json_object", '"response_format": {"type": "json_object"}'),
        ("logprobs", '"logprobs": true'), ("top_logprobs", '"top_logprobs": 5'),
        ("functions", '"functions": [{"name": "f", "parameters": {}}]'), ("function_call", '"function_call": "auto"'),
        ("logit_bias", '"logit_bias": {"1": 5}'), ("audio", '"audio": {"voice": "alloy", "format": "wav"}'),
        ("modalities audio", '"modalities": ["text", "audio"]'),
    ]:
        post("unsupported", name, "{%s, %s}" % (hi, extra))
    for name, body in [("no messages", "{}"), ("empty messages", '{"messages": []}'),
                       ("messages string", '{"messages": "hi"}'), ("role wizard", '{"messages": [{"role": "wizard"}]}'),
                       ("part audio", '{"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}'),
                       ("unknown model", '{"model": "gpt-9", %s}' % hi), ("stream string", '{%s, "stream": "yes"}' % hi),
                       ("stop 5", '{%s, "stop": ["a","b","c","d","e"]}' % hi),
                       ("stream_options list", '{%s, "stream_options": [1]}' % hi),
                       ("huge prompt", json.dumps({"messages": [{"role": "user", "content": "word " * 20000}]}))]:
        post("fields", name, body)
    body = "{%s}" % hi
    post("headers", "no content-type", body, ctype=None)
    post("headers", "text/plain (cross-site form)", body, ctype="text/plain")
    post("headers", "form", "messages=hi", ctype="application/x-www-form-urlencoded")
    post("headers", "DNS-rebinding Host", body, host="attacker.example:8000")
    post("headers", "body over the limit", b'{"messages": "' + b"a" * (65 * 1024 * 1024) + b'"}')
    for method, path in [("GET", "/v1/completions"), ("POST", "/v1/completions"), ("GET", "/v1/models/nope"),
                         ("GET", "/v1/chat/completions"), ("PUT", "/v1/chat/completions"), ("DELETE", "/v1/models"),
                         ("GET", "/v1/embeddings"), ("POST", "/v1/responses"), ("GET", "/nope"), ("GET", "/docs"),
                         ("GET", "/openapi.json")]:
        out.append(("routes", f"{method} {path}", {"method": method, "path": path, "body": "{}" if method != "GET" else None,
                                                    "headers": {"content-type": "application/json"}}))
    png, video = _png(64, 64), _mp4()
    media = [
        ("corrupt png", _uri(b"\x89PNG\r\n\x1a\nnope", "image/png"), "image"),
        ("empty", "data:image/png;base64,", "image"),
        ("truncated png", _uri(_png(300, 300)[:-60], "image/png"), "image"),
        ("bad base64", "data:image/png;base64,@@@", "image"),
        ("no base64 marker", "data:image/png,abc", "image"),
        ("text/plain image", _uri(png, "text/plain"), "image"),
        ("remote (SSRF off)", "http://169.254.169.254/latest/meta-data", "image"),
        ("local path", "file:///etc/passwd", "image"),
        ("relative path", "cat.png", "image"),
        ("truncated mp4", _uri(video[: len(video) // 2], "video/mp4"), "video"),
        ("png as video", _uri(png, "video/mp4"), "video"),
        ("image/png as video", _uri(png, "image/png"), "video"),
        ("empty video", "data:video/mp4;base64,", "video"),
    ]
    for name, url, kind in media:
        part = {"type": f"{kind}_url", f"{kind}_url": {"url": url}}
        post("media", name, json.dumps({"messages": [{"role": "user", "content": [part]}], "max_tokens": 2}))
    from PIL import Image

    buf = io.BytesIO()
    Image.new("1", (20000, 20000), 0).save(buf, format="PNG", optimize=True)
    post("media", "20000x20000 bomb", json.dumps({"messages": _image_msg(_uri(buf.getvalue(), "image/png"))}))
    post("media", "5 images", json.dumps({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": _uri(png, "image/png")}}] * 5}]}))
    return out


def _send(client: httpx.Client, req: dict) -> httpx.Response:
    return client.request(req["method"], req["path"], content=req["body"], headers=req["headers"])


def _shaped(resp: httpx.Response) -> bool:
    try:
        error = resp.json()["error"]
        return bool(error["message"]) and error["code"] == resp.status_code and "type" in error and "param" in error
    except (ValueError, KeyError, TypeError):
        return False


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _counter(text: str, name: str) -> float:
    match = re.search("^" + re.escape(name) + r"\s+(\S+)", text, re.M)
    return float(match.group(1)) if match else 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="artifacts/soak-hardening.json")
    ap.add_argument("--streams", type=int, default=256, help="concurrent multimodal streams")
    ap.add_argument("--cancel", type=int, default=10, help="non-streaming requests abandoned after 1 s")
    args = ap.parse_args()

    port = _free_port()
    work = Path(tempfile.mkdtemp(prefix="vlmctl-soak-"))
    out_file = work / "serve.out"
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("VLMCTL_API_KEY", None)
    with open(out_file, "wb") as fh:
        serve = subprocess.Popen([sys.executable, "-m", "vlmctl.cli.main", "serve", "--port", str(port), "--no-ui",
                                  "--health-timeout", "5", "--log-file", str(work / "engine.log")],
                                 stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    figures: dict = {}
    try:
        deadline = time.monotonic() + 240
        while "Next:" not in out_file.read_text(errors="replace"):
            if time.monotonic() > deadline or serve.poll() is not None:
                print(out_file.read_text(errors="replace")[-2000:], file=sys.stderr)
                return 1
            time.sleep(0.5)
        engine = int(Path(f"/proc/{serve.pid}/task/{serve.pid}/children").read_text().split()[0])
        client = httpx.Client(base_url=base, timeout=120)

        # 1. bad requests
        corpus = bad_corpus()
        before = client.get("/metrics").text
        rows = []
        for cat, name, req in corpus:
            resp = _send(client, req)
            rows.append({"category": cat, "name": name, "status": resp.status_code, "shaped": _shaped(resp),
                         "message": (resp.json().get("error", {}).get("message", "") if _shaped(resp) else resp.text)[:160]})
        after = client.get("/metrics").text
        counted = sum(_counter(after, f'vlmctl_requests_total{{outcome="{o}"}}') - _counter(
            before, f'vlmctl_requests_total{{outcome="{o}"}}') for o in ("client_error", "server_error"))
        figures["bad_requests"] = {
            "total": len(rows),
            "5xx": sum(r["status"] >= 500 for r in rows),
            "accepted_2xx": sum(r["status"] < 300 for r in rows),
            "not_openai_shape": sum(not r["shaped"] for r in rows),
            "counted_in_metrics": int(counted),
            "by_category": {cat: sum(r["category"] == cat for r in rows) for cat in dict.fromkeys(r["category"] for r in rows)},
            "failures": [r for r in rows if r["status"] >= 500 or r["status"] < 300 or not r["shaped"]],
        }

        # 2. memory under four concurrent 5000x5000 PNGs (each under the per-image pixel cap)
        big = json.dumps({"messages": _image_msg(_uri(_png(5000, 5000), "image/png")), "max_tokens": 1})
        rss_before = _rss_mib(engine)
        peak = [rss_before]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak.append(_rss_mib(engine))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(lambda _: httpx.post(f"{base}/v1/chat/completions", content=big, timeout=120,
                                                          headers={"content-type": "application/json"}).status_code,
                                     range(4)))
        time.sleep(1.0)
        stop.set()
        sampler.join()
        figures["memory"] = {"requests": statuses, "rss_before_mib": round(rss_before),
                             "rss_peak_mib": round(max(peak)), "rss_after_mib": round(_rss_mib(engine)),
                             "grew_mib": round(max(peak) - rss_before), "kept_mib": round(_rss_mib(engine) - rss_before)}

        # 3. a 6 MB prompt
        huge = json.dumps({"messages": [{"role": "user", "content": "word " * 1_200_000}]})
        t0 = time.monotonic()
        resp = client.post("/v1/chat/completions", content=huge, headers={"content-type": "application/json"})
        figures["huge_prompt"] = {"bytes": len(huge), "status": resp.status_code,
                                  "seconds": round(time.monotonic() - t0, 3)}

        # 4. non-streaming requests abandoned by their clients
        cancelled_before = _counter(client.get("/metrics").text, "vlmctl_requests_cancelled_total")
        body = json.dumps({"messages": [{"role": "user", "content": "go on"}], "max_tokens": 3000, "temperature": 1.5,
                           "frequency_penalty": -2})

        def abandon(_):
            try:
                httpx.post(f"{base}/v1/chat/completions", content=body, headers={"content-type": "application/json"},
                           timeout=httpx.Timeout(30, read=1.0))
                return "finished"
            except httpx.ReadTimeout:
                return "abandoned"

        with concurrent.futures.ThreadPoolExecutor(args.cancel) as pool:
            outcomes = list(pool.map(abandon, range(args.cancel)))
        time.sleep(3.0)
        figures["disconnect"] = {"abandoned": outcomes.count("abandoned"), "cancelled_by_server": int(
            _counter(client.get("/metrics").text, "vlmctl_requests_cancelled_total") - cancelled_before)}

        # 5. concurrent multimodal streams
        image = _uri(_png(96, 64), "image/png")

        def stream(i):
            content = [{"type": "image_url", "image_url": {"url": image}}] if i % 2 else []
            msg = {"model": None, "messages": [{"role": "user", "content": content + [{"type": "text", "text": f"r{i}"}]}],
                   "max_tokens": 8, "stream": True}
            msg.pop("model")
            try:
                with httpx.stream("POST", f"{base}/v1/chat/completions", json=msg, timeout=300) as r:
                    lines = [ln for ln in r.iter_lines() if ln]
                return lines[-1] == "data: [DONE]"
            except httpx.HTTPError:
                return False

        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(64) as pool:
            done = list(pool.map(stream, range(args.streams)))
        figures["streams"] = {"streams": args.streams, "lost": done.count(False),
                              "seconds": round(time.monotonic() - t0, 1)}

        # 6. a frozen engine
        os.kill(engine, signal.SIGSTOP)
        t0 = time.monotonic()
        noticed = stopped = None
        while time.monotonic() - t0 < 60 and stopped is None:
            text = out_file.read_text(errors="replace")
            if noticed is None and "not answered /health" in text:
                noticed = time.monotonic() - t0
            if serve.poll() is not None:
                stopped = time.monotonic() - t0
            time.sleep(0.1)
        text = out_file.read_text(errors="replace")
        figures["frozen_engine"] = {"health_timeout_s": 5, "noticed_s": round(noticed, 1) if noticed else None,
                                    "stopped_s": round(stopped, 1) if stopped else None, "exit_code": serve.returncode,
                                    "message": next((ln.strip() for ln in text.splitlines() if "frozen" in ln), "")[:200]}
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGTERM)
            try:
                serve.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(serve.pid, signal.SIGKILL)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "figures": figures}, indent=1))
    from rich.table import Table

    from vlmctl.cli._output import console

    b, m, h, d, s, f = (figures[k] for k in ("bad_requests", "memory", "huge_prompt", "disconnect", "streams",
                                             "frozen_engine"))
    t = Table(title="vlmctl serve (CPU demo) under bad input, load and faults")
    for col in ("what", "measured", "wanted"):
        t.add_column(col)
    t.add_row("bad requests answered 5xx", f"{b['5xx']} / {b['total']}", "0")
    t.add_row("bad requests accepted (2xx)", f"{b['accepted_2xx']} / {b['total']}", "0")
    t.add_row("errors not in OpenAI's shape", f"{b['not_openai_shape']} / {b['total']}", "0")
    t.add_row("errors counted in /metrics", f"{b['counted_in_metrics']} / {b['total']}", f"{b['total']}")
    t.add_row("RSS growth, 4 × 5000×5000 PNG at once", f"{m['grew_mib']} MiB peak, {m['kept_mib']} MiB kept",
              "bounded")
    t.add_row("6 MB prompt refused after", f"{h['seconds']} s (HTTP {h['status']})", "< 1 s, 400")
    t.add_row("non-streaming requests cancelled when the client left", f"{d['cancelled_by_server']} / {d['abandoned']}",
              "all")
    t.add_row("concurrent multimodal streams lost", f"{s['lost']} / {s['streams']} ({s['seconds']} s)", "0")
    t.add_row("frozen engine (SIGSTOP) noticed / stopped", f"{f['noticed_s']} s / {f['stopped_s']} s (exit "
              f"{f['exit_code']})", "≤ health timeout + poll")
    con = console()
    con.width = max(con.width, 120)
    con.print(t)
    for r in b["failures"]:
        print(f"  {r['category']}: {r['name']}: HTTP {r['status']} {r['message'][:100]!r}")
    print(f"wrote {out}")
    ok = not b["failures"] and s["lost"] == 0 and d["cancelled_by_server"] >= d["abandoned"] and f["stopped_s"]
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
