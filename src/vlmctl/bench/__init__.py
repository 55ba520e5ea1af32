"""Bench: multimodal load against any OpenAI-compatible endpoint, with `vllm bench serve` metrics.

``media`` makes images/videos locally, ``workload`` turns a request mix into chat bodies, ``loadgen``
sends them (fixed concurrency or Poisson rate, sweeps), ``metrics`` summarises, ``report`` and ``plot``
render, and ``compare`` lines two runs up.
"""
