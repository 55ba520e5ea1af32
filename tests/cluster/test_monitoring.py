"""The Grafana board and scrape config next to the compose files, and the demo's /metrics under the board's queries."""
from __future__ import annotations

import json

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from vlmctl.cluster.monitoring import dashboard, prometheus_config, queried_series, write_monitoring
from vlmctl.clusterspec import ClusterSpec
from vlmctl.serve.demo.metrics import ITL_BUCKETS, REQUEST_LATENCY_BUCKETS, TTFT_BUCKETS

SPEC = {"name": "lab", "model_path": "/models/q", "ports": {"api": 8123},
        "nodes": [{"name": "gpu-a", "address": "192.168.1.10", "gpu": "titan-rtx", "gpu_count": 2},
                  {"name": "gpu-b", "address": "192.168.1.11", "gpu": "rtx-2080-ti", "gpu_count": 4}]}


def _families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def _total(samples: dict, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


@pytest.mark.integration
def test_the_demo_exposes_every_vllm_series_the_board_queries(demo_server):
    """Same names, types, labels and buckets as vLLM, and the counts move with real requests."""
    before = _samples(httpx.get(f"{demo_server}/metrics", timeout=10).text)
    n, max_tokens = 3, 6
    completion = 0
    for i in range(n):
        r = httpx.post(f"{demo_server}/v1/chat/completions", timeout=120, json={
            "model": httpx.get(f"{demo_server}/v1/models").json()["data"][0]["id"], "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": f"count to {i}"}], "seed": i})
        assert r.status_code == 200, r.text
        completion += r.json()["usage"]["completion_tokens"]
    text = httpx.get(f"{demo_server}/metrics", timeout=10).text
    families, after = _families(text), _samples(text)
    exposed = {s.name for f in families.values() for s in f.samples}
    wanted = {name for name in queried_series(dashboard("lab")) if name.startswith("vllm:")}
    assert len(wanted) >= 10 and wanted <= exposed, wanted - exposed
    for name, buckets in (("vllm:time_to_first_token_seconds", TTFT_BUCKETS),
                          ("vllm:inter_token_latency_seconds", ITL_BUCKETS),
                          ("vllm:e2e_request_latency_seconds", REQUEST_LATENCY_BUCKETS)):
        assert families[name].type == "histogram"
        les = sorted({float(s.labels["le"]) for s in families[name].samples if s.name == name + "_bucket"})
        assert les == sorted([*buckets, float("inf")])
    assert families["vllm:num_requests_running"].type == "gauge"
    assert families["vllm:request_success"].type == "counter"
    labels = {s.labels["finished_reason"] for s in families["vllm:request_success"].samples}
    assert {"stop", "length", "abort"} <= labels
    assert all({"model_name", "engine"} <= set(s.labels) for s in families["vllm:prompt_tokens"].samples)

    def delta(name: str) -> float:
        return _total(after, name) - _total(before, name)

    assert delta("vllm:request_success_total") == n
    assert delta("vllm:time_to_first_token_seconds_count") == n
    assert delta("vllm:e2e_request_latency_seconds_count") == n
    assert delta("vllm:generation_tokens_total") == completion
    assert delta("vllm:inter_token_latency_seconds_count") == completion - n  # one gap between each pair of tokens
    assert delta("vllm:request_generation_tokens_sum") == completion
    assert delta("vllm:e2e_request_latency_seconds_sum") >= delta("vllm:time_to_first_token_seconds_sum") > 0


def test_board_is_a_grafana_dashboard_with_unique_ids_on_a_24_column_grid():
    board = dashboard("lab")
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        for target in panel.get("targets", []):
            assert target["expr"] and target["refId"]
    assert {"ray_node_cpu_utilization", "ray_node_mem_used", "ray_node_gpus_utilization"} <= queried_series(board)
    json.dumps(board)


def test_scrape_config_targets_vllm_on_the_head_and_rays_service_discovery(tmp_path):
    spec = ClusterSpec.model_validate(SPEC)
    config = prometheus_config(spec, state_root="/tmp/vlmctl")
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert jobs["vllm"]["static_configs"][0]["targets"] == ["192.168.1.10:8123"]
    assert jobs["ray"]["file_sd_configs"][0]["files"] == ["/tmp/vlmctl/lab-gpu-a/prom_metrics_service_discovery.json"]
    written = write_monitoring(spec, tmp_path, state_root="/tmp/vlmctl")
    assert {p.name for p in written} == {"prometheus.yml", "grafana-dashboard.json", "README.md"}
    assert yaml.safe_load((tmp_path / "monitoring" / "prometheus.yml").read_text()) == config
    assert json.loads((tmp_path / "monitoring" / "grafana-dashboard.json").read_text())["title"] == "vlmctl · lab"


@pytest.mark.parametrize("name", ["prometheus.yml", "grafana-dashboard.json"])
def test_monitoring_snapshots(tmp_path, name):
    """UPDATE_SNAPSHOT=1 rewrites tests/cluster/snapshots/monitoring/."""
    import os
    from pathlib import Path

    write_monitoring(ClusterSpec.model_validate(SPEC), tmp_path, state_root="/tmp/vlmctl")
    text = (tmp_path / "monitoring" / name).read_text()
    snapshot = Path(__file__).parent / "snapshots" / "monitoring" / name
    if os.environ.get("UPDATE_SNAPSHOT") == "1":
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        snapshot.write_text(text)
    assert text == snapshot.read_text(), f"{name} changed; if intended, rerun with UPDATE_SNAPSHOT=1"
