"""Chat page latency: time from a token leaving the API to it being visible in the page.

A real OpenAI-compatible server (tests/ui/scripted_server.py) streams numbered words ``w0000``,
``w0001``, … and logs the wall-clock time each one is written to the socket. The chat page
(``vlmctl.ui.app.build_app``) runs in this process in front of it; headless Chromium opens
the page, and a MutationObserver stamps each word at the first animation frame after it
enters the DOM (that is, when it can be painted). Latency = seen − sent, per word.

    .venv/bin/python benchmarks/ui_latency.py [--words 500] [--intervals 5,20,50] [--out PATH]

Prints a table and writes JSON (default artifacts/ui_latency.json). Target: p50 ≤ 100 ms.
Needs Debian's chromium at /usr/bin/chromium.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SERVER = REPO / "tests" / "ui" / "scripted_server.py"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TARGET_P50_MS = 100.0

OBSERVER_JS = """() => {
  window.__seen = {};
  const stamp = () => {
    const all = document.querySelectorAll('#chatbot [data-testid="bot"]');
    if (!all.length) return;
    const words = all[all.length - 1].innerText.match(/w\\d{4}/g) || [];
    const fresh = words.filter(w => !(w in window.__seen));
    if (!fresh.length) return;
    for (const w of fresh) window.__seen[w] = null;
    requestAnimationFrame(() => {
      const now = performance.timeOrigin + performance.now();
      for (const w of fresh) window.__seen[w] = now / 1000;
    });
  };
  new MutationObserver(stamp).observe(document.querySelector('#chatbot'),
    {subtree: true, childList: true, characterData: true});
}"""


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _start_server() -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, str(SERVER), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = proc.stdout.readline()
    match = re.match(r"PORT (\d+)", line or "")
    if not match:
        proc.kill()
        raise SystemExit(f"scripted server did not start: {line!r}")
    port = int(match.group(1))
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1).read()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("scripted server did not answer within 20 s")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def measure(words: int, intervals_ms: list[float]) -> dict:
    """Run one streamed answer per interval; return per-interval latency statistics (ms)."""
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(REPO / "src"))
    from vlmctl.ui.app import build_app

    server, port = _start_server()
    demo = build_app(f"http://127.0.0.1:{port}/v1")
    page_port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=page_port, prevent_thread_lock=True,
                quiet=True, footer_links=[])
    runs = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            for interval in intervals_ms:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(f"http://127.0.0.1:{page_port}/", timeout=30_000)
                page.wait_for_function(
                    "() => document.querySelector('#endpoint-status')"
                    " && document.querySelector('#endpoint-status').innerText.includes('Connected')",
                    timeout=30_000,
                )
                page.evaluate(OBSERVER_JS)
                box = page.locator("#chat-input textarea")
                box.fill(f"BENCH {words} {interval:g}")
                box.press("Enter")
                page.wait_for_function(
                    f"() => window.__seen && window.__seen['w{words - 1:04d}']",
                    timeout=(words * interval / 1000 + 60) * 1000,
                )
                seen = page.evaluate("window.__seen")
                sent = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/_log"))["sent"]
                latencies = [(seen[w] - sent[w]) * 1000 for w in sent if seen.get(w)]
                missing = [w for w in sent if not seen.get(w)]
                page.close()
                runs.append({
                    "interval_ms": interval,
                    "words": len(latencies),
                    "missing": len(missing),
                    "p50_ms": round(statistics.median(latencies), 1),
                    "p90_ms": round(_percentile(latencies, 90), 1),
                    "p99_ms": round(_percentile(latencies, 99), 1),
                    "max_ms": round(max(latencies), 1),
                    "mean_ms": round(statistics.fmean(latencies), 1),
                })
            browser.close()
    finally:
        demo.close()
        server.kill()
        server.wait(timeout=10)
    worst_p50 = max(run["p50_ms"] for run in runs)
    return {
        "benchmark": "ui_latency",
        "what": "token written by the API → first animation frame with it in the chat page",
        "target_p50_ms": TARGET_P50_MS,
        "pass": worst_p50 <= TARGET_P50_MS,
        "update_gap": os.environ.get("VLMCTL_UI_UPDATE_MS") or "adaptive (20 ms + 1 ms per 1000 answer characters, ≤ 200 ms)",
        "words_per_run": words,
        "runs": runs,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=500, help="words streamed per run")
    parser.add_argument("--intervals", default="5,20,50",
                        help="comma-separated gaps between words, in ms (one run each)")
    parser.add_argument("--out", default=str(REPO / "artifacts" / "ui_latency.json"))
    args = parser.parse_args(argv)
    intervals = [float(x) for x in args.intervals.split(",") if x.strip()]
    result = measure(args.words, intervals)
    header = f"{'gap ms':>7} {'words':>6} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'max ms':>7}"
    print(header)
    for run in result["runs"]:
        print(f"{run['interval_ms']:>7g} {run['words']:>6} {run['p50_ms']:>7.1f} "
              f"{run['p90_ms']:>7.1f} {run['p99_ms']:>7.1f} {run['max_ms']:>7.1f}")
    verdict = "PASS" if result["pass"] else "FAIL"
    print(f"target p50 ≤ {TARGET_P50_MS:g} ms: {verdict}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
