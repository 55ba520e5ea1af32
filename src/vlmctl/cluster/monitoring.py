"""Monitoring for a deployment: a Prometheus scrape config (vLLM's API server + Ray's nodes) and a Grafana board.

The board queries vLLM's metric names (``vllm/v1/metrics/loggers.py``), which `vlmctl serve`'s demo
exposes too (``vlmctl.serve.demo.metrics``), and Ray's node metrics (Ray's system-metrics reference:
``ray_node_cpu_utilization``, ``ray_node_mem_used``, ``ray_node_mem_total``, ``ray_node_gpus_utilization``,
``ray_node_gram_used``; the two GPU series exist only on nodes with GPUs). Ray's head writes the
address of every node's metrics agent to ``prom_metrics_service_discovery.json`` in its ``--temp-dir``
(``ray/_private/metrics_agent.py``, Ray 2.60), which the scrape config reads with ``file_sd_configs``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from vlmctl.cluster.env import state_dir
from vlmctl.clusterspec import ClusterSpec

RAY_SERVICE_DISCOVERY = "prom_metrics_service_discovery.json"
DASHBOARD_FILE = "grafana-dashboard.json"
PROMETHEUS_FILE = "prometheus.yml"
_MODEL = 'model_name=~"$model_name"'


def _quantiles(metric: str) -> list[tuple[str, str]]:
    return [(f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket{{{_MODEL}}}[$__rate_interval])))",
             f"p{int(q * 100)}") for q in (0.5, 0.99)]


#: (title, unit, [(PromQL, legend)]) per panel, in board order; vLLM first, then Ray.
VLLM_PANELS = [
    ("Requests running / waiting", "short", [(f"sum(vllm:num_requests_running{{{_MODEL}}})", "running"),
                                             (f"sum(vllm:num_requests_waiting{{{_MODEL}}})", "waiting")]),
    ("Finished requests / s by reason", "reqps",
     [(f"sum by (finished_reason) (rate(vllm:request_success_total{{{_MODEL}}}[$__rate_interval]))",
       "{{finished_reason}}")]),
    ("Time to first token", "s", _quantiles("vllm:time_to_first_token_seconds")),
    ("Inter-token latency", "s", _quantiles("vllm:inter_token_latency_seconds")),
    ("End-to-end request latency", "s", _quantiles("vllm:e2e_request_latency_seconds")),
    ("Tokens / s", "short", [(f"sum(rate(vllm:prompt_tokens_total{{{_MODEL}}}[$__rate_interval]))", "prompt"),
                             (f"sum(rate(vllm:generation_tokens_total{{{_MODEL}}}[$__rate_interval]))", "generation")]),
    ("Tokens per request (p50)", "short",
     [(f"histogram_quantile(0.5, sum by (le) (rate(vllm:request_prompt_tokens_bucket{{{_MODEL}}}[$__rate_interval])))",
       "prompt"),
      (f"histogram_quantile(0.5, sum by (le) (rate(vllm:request_generation_tokens_bucket{{{_MODEL}}}"
       "[$__rate_interval])))", "generation")]),
]
RAY_PANELS = [
    ("Ray node CPU %", "percent", [("ray_node_cpu_utilization", "{{instance}}")]),
    ("Ray node memory used", "bytes", [("ray_node_mem_used", "{{instance}}")]),
    ("GPU utilization % (Ray)", "percent", [("ray_node_gpus_utilization", "{{instance}} GPU {{GpuIndex}}")]),
    ("GPU memory used (Ray)", "mbytes", [("ray_node_gram_used", "{{instance}} GPU {{GpuIndex}}")]),
]


def dashboard(cluster: str) -> dict:
    """The Grafana dashboard (JSON model, schemaVersion 39) for one cluster."""
    panels, y = [], 0
    for row_title, specs in (("vLLM", VLLM_PANELS), ("Ray nodes", RAY_PANELS)):
        panels.append({"type": "row", "title": row_title, "collapsed": False, "id": len(panels) + 1,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        y += 1
        for i, (title, unit, targets) in enumerate(specs):
            panels.append({
                "type": "timeseries", "title": title, "id": len(panels) + 1,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": y + 8 * (i // 2)},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [{"expr": expr, "legendFormat": legend, "refId": chr(ord("A") + k)}
                            for k, (expr, legend) in enumerate(targets)],
            })
        y += 8 * ((len(specs) + 1) // 2)
    return {
        "title": f"vlmctl · {cluster}",
        "uid": re.sub(r"[^a-zA-Z0-9_-]", "-", f"vlmctl-{cluster}")[:40],
        "tags": ["vlmctl", "vllm", "ray"],
        "schemaVersion": 39,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "10s",
        "templating": {"list": [
            {"type": "datasource", "name": "datasource", "query": "prometheus", "label": "Prometheus"},
            {"type": "query", "name": "model_name", "label": "model",
             "datasource": {"type": "prometheus", "uid": "${datasource}"},
             "query": "label_values(vllm:num_requests_running, model_name)", "refresh": 2,
             "includeAll": True, "multi": True, "current": {"text": "All", "value": "$__all"}},
        ]},
        "panels": panels,
    }


_FUNCTIONS = {"sum", "rate", "by", "le", "histogram_quantile", "label_values", "model_name", "finished_reason"}


def queried_series(board: dict) -> set[str]:
    """Every series name the board's queries read (``*_bucket`` kept as written)."""
    names = set()
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = re.sub(r'\{[^}]*\}|\[[^]]*\]|"[^"]*"', " ", target["expr"])
            names |= {n for n in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr)
                      if n not in _FUNCTIONS and not re.fullmatch(r"\d.*", n)}
    return names


def prometheus_config(spec: ClusterSpec, *, state_root: str | None = None) -> dict:
    """Scrape vLLM's API server on the head and every Ray node the head's service discovery file lists."""
    head = spec.head_node
    discovery = state_dir(spec.name, head.name, state_root) / RAY_SERVICE_DISCOVERY
    return {
        "global": {"scrape_interval": "10s", "evaluation_interval": "10s"},
        "scrape_configs": [
            {"job_name": "vllm", "metrics_path": "/metrics",
             "static_configs": [{"targets": [f"{head.address or 'HEAD_ADDRESS'}:{spec.ports.api}"],
                                 "labels": {"cluster": spec.name}}]},
            {"job_name": "ray", "file_sd_configs": [{"files": [str(discovery)]}],
             "relabel_configs": [{"target_label": "cluster", "replacement": spec.name}]},
        ],
    }


def readme_text(spec: ClusterSpec, discovery: str) -> str:
    """How to run Prometheus and load the board."""
    head = spec.head_node
    return "\n".join([
        f"# Monitoring cluster '{spec.name}'",
        "",
        f"Generated by vlmctl. `{PROMETHEUS_FILE}` scrapes vLLM's `/metrics` on the head "
        f"({head.address or 'HEAD_ADDRESS'}:{spec.ports.api}) and every Ray node's metrics agent, listed by the head in",
        f"`{discovery}`. Prometheus must read that file: run it on the head. Under docker compose the file is",
        "inside the head's container; copy it out every minute (Ray rewrites it when nodes change):",
        "",
        "```",
        f"mkdir -p {Path(discovery).parent} && while true; do docker cp vlmctl-{spec.name}-{head.name}:{discovery} "
        f"{discovery}; sleep 60; done &",
        f"docker run -d --network host -v $PWD/{PROMETHEUS_FILE}:/etc/prometheus/prometheus.yml:ro "
        f"-v {Path(discovery).parent}:{Path(discovery).parent}:ro prom/prometheus",
        "```",
        "",
        f"Grafana: Dashboards → New → Import → upload `{DASHBOARD_FILE}`, pick the Prometheus data source.",
        "The vLLM panels read vLLM's own metric names, so they work against `vllm serve`, `vlmctl serve` and its",
        "CPU demo alike; the GPU panels fill only on nodes with GPUs. `vllm serve` leaves `/metrics` open; the CPU",
        "server started with an API key wants it there too: add `authorization: {credentials_file: /etc/prometheus/key}`",
        "to the `vllm` job and mount the key file.",
        "",
    ])


def write_monitoring(spec: ClusterSpec, out_dir: str | Path, *, state_root: str | None = None) -> list[Path]:
    """Write ``monitoring/{prometheus.yml, grafana-dashboard.json, README.md}`` under ``out_dir``."""
    out = Path(out_dir) / "monitoring"
    out.mkdir(parents=True, exist_ok=True)
    config = prometheus_config(spec, state_root=state_root)
    discovery = config["scrape_configs"][1]["file_sd_configs"][0]["files"][0]
    files = {
        PROMETHEUS_FILE: "# Generated by vlmctl; regenerate instead of editing.\n"
                         + yaml.safe_dump(config, sort_keys=False, width=120),
        DASHBOARD_FILE: json.dumps(dashboard(spec.name), indent=1) + "\n",
        "README.md": readme_text(spec, discovery),
    }
    written = []
    for name, text in files.items():
        (out / name).write_text(text)
        written.append(out / name)
    return written
