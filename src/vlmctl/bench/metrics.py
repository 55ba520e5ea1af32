"""Per-request records and their summary, with the definitions `vllm bench serve` uses.

TTFT: request sent -> first streamed token. ITL: gaps between streamed chunks after the first.
TPOT: (E2E - TTFT) / (output tokens - 1), per request with more than one output token.
E2E: request sent -> last byte. Throughputs divide by the benchmark duration (first send -> last
completion). Token counts come from the API's ``usage`` (``stream_options.include_usage``), never
from counting chunks; requests whose server sent no usage are counted in ``usage_missing``.
"""
from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field

PERCENTILES = (50, 90, 99)


@dataclass
class RequestRecord:
    """What one request did."""

    kind: str
    start: float
    ok: bool = False
    error: str | None = None
    """Error kind: http_4xx/http_5xx (with status), timeout, connect, stream, cancelled."""
    error_body: str | None = None
    """The start of what the server said (HTTP error body, error chunk) or the client exception."""
    ttft: float | None = None
    e2e: float | None = None
    itl: list[float] = field(default_factory=list)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    def to_dict(self) -> dict:
        """JSON-ready form (ITL rounded to µs)."""
        d = asdict(self)
        d["itl"] = [round(x, 6) for x in self.itl]
        return d


def _dist(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    out = {"mean": statistics.fmean(ordered), "median": statistics.median(ordered)}
    for p in PERCENTILES:
        out[f"p{p}"] = percentile(ordered, p)
    return {k: round(v, 6) for k, v in out.items()}


def percentile(ordered: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default, as vllm bench serve uses)."""
    if len(ordered) == 1:
        return ordered[0]
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summarize(records: list[RequestRecord], duration_s: float) -> dict:
    """The summary table of one load level."""
    done = [r for r in records if r.ok]
    errors: dict[str, int] = {}
    first_error = None
    for r in records:
        if not r.ok:
            errors[r.error or "unknown"] = errors.get(r.error or "unknown", 0) + 1
            if first_error is None and r.error != "cancelled":
                first_error = {"kind": r.error or "unknown", "body": r.error_body}
    prompt = sum(r.prompt_tokens or 0 for r in done)
    output = sum(r.completion_tokens or 0 for r in done)
    tpot = [(r.e2e - r.ttft) / (r.completion_tokens - 1) for r in done
            if r.completion_tokens and r.completion_tokens > 1 and r.ttft is not None]
    duration_s = max(duration_s, 1e-9)
    by_kind: dict[str, int] = {}
    for r in done:
        by_kind[r.kind] = by_kind.get(r.kind, 0) + 1
    return {
        "requests": len(records),
        "completed": len(done),
        "failed": len(records) - len(done),
        "errors": errors,
        "first_error": first_error,
        "completed_by_kind": by_kind,
        "usage_missing": sum(1 for r in done if r.completion_tokens is None),
        "duration_s": round(duration_s, 6),
        "total_input_tokens": prompt,
        "total_output_tokens": output,
        "request_throughput": round(len(done) / duration_s, 4),
        "output_throughput": round(output / duration_s, 3),
        "total_token_throughput": round((prompt + output) / duration_s, 3),
        "ttft_s": _dist([r.ttft for r in done if r.ttft is not None]),
        "tpot_s": _dist(tpot),
        "itl_s": _dist([x for r in done for x in r.itl]),
        "e2e_s": _dist([r.e2e for r in done if r.e2e is not None]),
    }
