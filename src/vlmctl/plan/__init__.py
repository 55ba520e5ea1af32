"""The planner: pure (no torch, Ray or vLLM), serialisable, the spine every other command consumes.

    result = make_plan("Qwen/Qwen2.5-VL-7B-Instruct", gpus="h100-80gb:1")
    result.ok, result.plan.kv_cache_tokens, result.findings
"""
from __future__ import annotations

from vlmctl.clusterspec import ClusterSpec, cluster_from_gpus, load_cluster
from vlmctl.engines.vllm import Calibration
from vlmctl.errors import ConfigError
from vlmctl.models.loader import load_model_spec
from vlmctl.plan.request import PlanRequest
from vlmctl.plan.schema import Alternative, GpuMemory, MediaLimits, NodePlacement, Plan, PlanResult
from vlmctl.validation import parse

__all__ = ["Alternative", "GpuMemory", "MediaLimits", "NodePlacement", "Plan", "PlanRequest", "PlanResult",
           "make_plan"]


def make_plan(model: str, *, cluster: ClusterSpec | str | None = None, gpus: str | None = None,
              constants: Calibration | None = None, **settings) -> PlanResult:
    """Plan ``model`` (catalog id or folder) on a cluster (object or YAML path) or ``gpus`` ("TYPE[:N],…").

    ``settings`` are PlanRequest fields with vLLM's names (tensor_parallel_size, max_model_len, …).
    ``constants`` replaces the calibration constants the profile or a calibration file would give (what
    ``vlmctl calibrate`` tries while fitting).
    """
    if (cluster is None) == (gpus is None):
        raise ConfigError("give exactly one of --cluster FILE and --gpus SPEC.",
                          fix="e.g. --gpus rtx-2080-ti:8,rtx-2080-ti:8 or --cluster cluster.yaml")
    if isinstance(cluster, str):
        cluster = load_cluster(cluster)
    spec_cluster = cluster if cluster is not None else cluster_from_gpus(gpus or "")
    req = parse(PlanRequest, settings, "plan options", "see `vlmctl plan --help`")
    spec = load_model_spec(model)
    from vlmctl.plan.build import build_result

    return build_result(model, spec, spec_cluster, req, constants)
