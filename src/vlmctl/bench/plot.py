"""PNG plot of a sweep: latency and throughput against concurrency (or request rate)."""
from __future__ import annotations

from pathlib import Path


def plot(result: dict, path: str | Path) -> Path:
    """Write ``path`` (PNG): left, TTFT/E2E percentiles; right, output tokens/s (bars) and requests/s."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = [lv for lv in result["levels"] if lv["summary"]["completed"]]
    by_rate = all(lv.get("rate") for lv in levels) and len({lv.get("concurrency") for lv in levels}) <= 1
    labels = [f"{lv['rate']:g}" if by_rate else f"{lv['concurrency'] or '∞'}" for lv in levels]
    xlabel = "request rate (req/s, Poisson arrivals)" if by_rate else "concurrent requests"
    xs = list(range(len(levels)))

    def series(metric: str, key: str) -> list[float]:
        return [(lv["summary"][metric] or {}).get(key, float("nan")) for lv in levels]

    fig, (lat, thr) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=100, constrained_layout=True)
    lat.plot(xs, series("ttft_s", "p50"), "o-", color="#1f77b4", label="TTFT p50")
    lat.plot(xs, series("ttft_s", "p99"), "o--", color="#1f77b4", alpha=0.55, label="TTFT p99")
    lat.plot(xs, series("e2e_s", "p50"), "s-", color="#d62728", label="end-to-end p50")
    lat.plot(xs, series("e2e_s", "p99"), "s--", color="#d62728", alpha=0.55, label="end-to-end p99")
    lat.set_ylabel("seconds")
    lat.set_ylim(bottom=0)
    lat.set_title("Latency per request (lower is better)", fontsize=10)
    lat.legend(fontsize=8, loc="upper left", frameon=False)

    tok = [lv["summary"]["output_throughput"] for lv in levels]
    req = [lv["summary"]["request_throughput"] for lv in levels]
    bars = thr.bar(xs, tok, width=0.55, color="#9467bd", alpha=0.35, label="output tokens/s")
    thr.bar_label(bars, labels=[f"{t:.0f}" for t in tok], fontsize=8, color="#6b4a8c", padding=2)
    thr.set_ylabel("output tokens / s", color="#6b4a8c")
    thr.set_ylim(0, max(tok + [1]) * 1.2)
    thr.set_title("Throughput (higher is better)", fontsize=10)
    req_ax = thr.twinx()
    req_ax.plot(xs, req, "o-", color="#2ca02c", label="requests/s")
    req_ax.set_ylim(0, max(req + [0.1]) * 1.35)
    req_ax.set_ylabel("requests / s", color="#2ca02c")
    handles = [bars, *req_ax.get_lines()]
    thr.legend(handles, [h.get_label() for h in handles], fontsize=8, loc="upper left", frameon=False)

    for ax in (lat, thr):
        ax.set_xticks(xs, labels)
        ax.set_xlabel(xlabel)
        ax.grid(True, axis="y", alpha=0.3)
        ax.spines[["top"]].set_visible(False)
    failed = sum(lv["summary"]["failed"] for lv in result["levels"])
    meta = result["meta"]
    notes = [f"{failed} failed" if failed else "", "interrupted: partial" if meta.get("interrupted") else ""]
    note = " · ".join(n for n in notes if n)
    fig.suptitle(f"{meta['model']} · {' '.join(meta['mix'])} · max_tokens {meta['max_tokens']}"
                 + (f"  ({note})" if note else ""), fontsize=10)
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out
