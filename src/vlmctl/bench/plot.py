"""PNG plot of a sweep: latency and throughput against concurrency (or request rate)."""
from __future__ import annotations

from pathlib import Path


def plot(result: dict, path: str | Path) -> Path:
    """Write ``path`` (PNG): left, TTFT/E2E percentiles; right, request and output-token throughput."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = [lv for lv in result["levels"] if lv["summary"]["completed"]]
    by_rate = all(lv.get("rate") for lv in levels) and len({lv.get("concurrency") for lv in levels}) <= 1
    xs = [lv["rate"] if by_rate else (lv["concurrency"] or 0) for lv in levels]
    xlabel = "request rate (req/s, Poisson)" if by_rate else "concurrent requests"

    def series(metric: str, key: str) -> list[float]:
        return [(lv["summary"][metric] or {}).get(key, float("nan")) for lv in levels]

    fig, (lat, thr) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110, constrained_layout=True)
    lat.plot(xs, series("ttft_s", "p50"), "o-", color="#1f77b4", label="TTFT p50")
    lat.plot(xs, series("ttft_s", "p99"), "o--", color="#1f77b4", alpha=0.6, label="TTFT p99")
    lat.plot(xs, series("e2e_s", "p50"), "s-", color="#d62728", label="E2E p50")
    lat.plot(xs, series("e2e_s", "p99"), "s--", color="#d62728", alpha=0.6, label="E2E p99")
    lat.set_xlabel(xlabel)
    lat.set_ylabel("seconds")
    lat.set_title("Latency (lower is better)")
    lat.grid(True, alpha=0.3)
    lat.legend(fontsize=8, loc="upper left")

    req = [lv["summary"]["request_throughput"] for lv in levels]
    tok = [lv["summary"]["output_throughput"] for lv in levels]
    thr.plot(xs, req, "o-", color="#2ca02c", label="requests/s")
    thr.set_xlabel(xlabel)
    thr.set_ylabel("requests / s", color="#2ca02c")
    thr.set_title("Throughput (higher is better)")
    thr.grid(True, alpha=0.3)
    tok_ax = thr.twinx()
    tok_ax.plot(xs, tok, "^-", color="#9467bd", label="output tokens/s")
    tok_ax.set_ylabel("output tokens / s", color="#9467bd")
    lines = thr.get_lines() + tok_ax.get_lines()
    thr.legend(lines, [ln.get_label() for ln in lines], fontsize=8, loc="upper left")
    for ax in (lat, thr):
        if not by_rate and len(xs) > 1 and min(xs) > 0 and max(xs) / min(xs) >= 8:
            ax.set_xscale("log", base=2)
        ax.set_xticks(xs)
        ax.set_xticklabels([f"{x:g}" for x in xs])
    meta = result["meta"]
    note = " (interrupted: partial)" if meta.get("interrupted") else ""
    fig.suptitle(f"{meta['model']} · {' '.join(meta['mix'])} · max_tokens {meta['max_tokens']}{note}", fontsize=10)
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out
