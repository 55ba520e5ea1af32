"""The demo server's Prometheus metrics, with vLLM's names, types, labels and buckets.

Names, label names (``model_name``, ``engine``; ``finished_reason`` on request counts) and bucket
boundaries follow vLLM's ``vllm/v1/metrics/loggers.py`` (``PrometheusStatLogger.__init__``, commit
005a810b, read 2026-11-29; ``vllm:inter_token_latency_seconds`` as vLLM 0.10+ names what it first
called ``vllm:time_per_output_token_seconds``, same buckets). The same dashboard therefore reads the
demo and a real vLLM. Measured in the engine thread, as vLLM measures in its engine: TTFT from
arrival to the first sampled token, inter-token latency per sampled token, end-to-end latency from
arrival to finish. vlmctl's own series keep the ``vlmctl_`` prefix.
"""
from __future__ import annotations

import time

#: vLLM's TTFT buckets (s).
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
                40.0, 80.0, 160.0, 640.0, 2560.0)
#: vLLM's inter-token latency buckets (s).
ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0,
               80.0)
#: vLLM's request latency buckets (s), used for end-to-end latency.
REQUEST_LATENCY_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
                           240.0, 480.0, 960.0, 1920.0, 7680.0)
#: vLLM's FinishReason values, each with a series from the start.
FINISH_REASONS = ("stop", "length", "abort")


def token_buckets(max_model_len: int) -> list[int]:
    """1, 2, 5, 10, 20, 50 … up to ``max_model_len`` (vLLM's ``build_1_2_5_buckets``)."""
    out, scale = [], 1
    while True:
        for m in (1, 2, 5):
            if m * scale > max_model_len:
                return out
            out.append(m * scale)
        scale *= 10


class DemoMetrics:
    """A registry of vLLM-named series; the engine thread calls ``token`` and ``finished``."""

    def __init__(self, model_name: str, max_model_len: int, engine, counts: dict[str, int], demo: bool) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self._engine, self._counts, self._demo = engine, counts, demo
        labels = ("model_name", "engine")
        self._labels = (model_name, "0")
        reg = self.registry

        def hist(name: str, doc: str, buckets) -> object:
            return Histogram(name, doc, labels, buckets=buckets, registry=reg).labels(*self._labels)

        self.ttft = hist("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
                         TTFT_BUCKETS)
        self.itl = hist("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.",
                        ITL_BUCKETS)
        self.e2e = hist("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.",
                        REQUEST_LATENCY_BUCKETS)
        self.prompt_hist = hist("vllm:request_prompt_tokens", "Number of prefill tokens processed.",
                                token_buckets(max_model_len))
        self.generation_hist = hist("vllm:request_generation_tokens", "Number of generation tokens processed.",
                                    token_buckets(max_model_len))
        self.prompt_tokens = Counter("vllm:prompt_tokens", "Number of prefill tokens processed.", labels,
                                     registry=reg).labels(*self._labels)
        self.generation_tokens = Counter("vllm:generation_tokens", "Number of generation tokens processed.", labels,
                                         registry=reg).labels(*self._labels)
        success = Counter("vllm:request_success", "Count of successfully processed requests.",
                          (*labels, "finished_reason"), registry=reg)
        self.success = {reason: success.labels(*self._labels, reason) for reason in FINISH_REASONS}
        reg.register(_LiveCollector(self))

    # -- called from the engine thread ------------------------------------------------------
    def token(self, seq, now: float) -> None:
        """One sampled token of ``seq`` (its first: TTFT and the prompt's tokens; later ones: a gap)."""
        previous = getattr(seq, "last_token_at", None)
        if previous is None:
            self.ttft.observe(now - seq.submitted)
            self.prompt_tokens.inc(seq.prepared.prompt_tokens)
        else:
            self.itl.observe(now - previous)
        seq.last_token_at = now
        self.generation_tokens.inc()

    def finished(self, seq, reason: str | None, completion_tokens: int) -> None:
        """``seq`` ended: ``stop``/``length``, ``abort`` (client gone), or None (an engine error: not a success)."""
        if reason is None:
            return
        self.success[reason if reason in self.success else "abort"].inc()
        self.e2e.observe(time.monotonic() - seq.submitted)
        self.prompt_hist.observe(seq.prepared.prompt_tokens)
        self.generation_hist.observe(completion_tokens)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class _LiveCollector:
    """Series read at scrape time: scheduler gauges and the server's own request counts."""

    def __init__(self, metrics: DemoMetrics) -> None:
        self.m = metrics

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        eng, labels = self.m._engine, list(self.m._labels)
        for name, doc, value in (
            ("vllm:num_requests_running", "Number of requests in model execution batches.", eng.num_running),
            ("vllm:num_requests_waiting", "Number of requests waiting to be processed.", eng.num_waiting),
        ):
            gauge = GaugeMetricFamily(name, doc, labels=["model_name", "engine"])
            gauge.add_metric(labels, value)
            yield gauge
        requests = CounterMetricFamily("vlmctl_requests", "Chat requests by outcome.", labels=["outcome"])
        for outcome, n in self.m._counts.items():
            requests.add_metric([outcome], n)
        yield requests
        yield CounterMetricFamily("vlmctl_requests_cancelled", "Requests stopped because the client went away.",
                                  value=eng.stats["cancelled"])
        yield GaugeMetricFamily("vlmctl_demo_random_weights", "1 when the served model is the random-weight demo.",
                                value=int(self.m._demo))
