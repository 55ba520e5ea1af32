"""A stand-in for `vllm serve … --distributed-executor-backend ray` that does what vLLM's Ray executor does
before it touches a GPU, and writes what every worker sees to ``$VLLM_STANDIN_REPORT`` (JSON).

The steps, as vLLM 0.26.0 and 0.33.0 do them (wheel sources, the same in both but where said):

* ``vllm/v1/executor/ray_utils.py`` ``initialize_ray_cluster``: ``ray.init(address=None)``, so ``RAY_ADDRESS``
  decides which cluster; one placement-group bundle ``{"GPU": 1.0}`` per rank (world = TP × PP), the first
  pinned to the driver's node with ``node:<VLLM_HOST_IP>: 0.001``, strategy ``PACK``.
* ``vllm/v1/executor/ray_executor.py`` ``RayDistributedExecutor._init_workers_ray``: one actor per bundle
  (``num_gpus=1``, ``num_cpus=0``, ``PlacementGroupSchedulingStrategy``); per worker, ``CUDA_VISIBLE_DEVICES``
  = the sorted Ray GPU ids of all workers on its node; then ``update_environment_variables`` with the driver's
  variables from ``vllm/ray/ray_env.py`` ``get_env_vars_to_copy``: vLLM's registered names (here: every
  ``VLLM_*``), names starting ``VLLM_``, ``LMCACHE_``, ``NCCL_``, ``UCX_``, ``HF_``, ``HUGGING_FACE_``, and
  ``PYTHONHASHSEED`` (0.33.0 adds ``FLASH_ATTENTION_``), minus ``WORKER_SPECIFIC_ENV_VARS`` (``ray_utils.py``)
  and the names in ``$VLLM_CONFIG_ROOT/ray_non_carry_over_env_vars.json``, each overwriting the worker's own.
  With ``VLLM_USE_RAY_V2_EXECUTOR_BACKEND=1`` (``RayExecutorV2``, the only Ray executor in 0.33.0) the driver
  sends everything (``vllm/v1/executor/ray_env_utils.py`` ``get_driver_env_vars``) minus the same two sets, and
  the worker applies it with ``setdefault`` (``ray_executor_v2.py`` ``RayWorkerProc``: fills in what the node's
  raylet did not set), while ``CUDA_VISIBLE_DEVICES`` always overwrites.

On this CPU machine Ray's "GPUs" are the count `ray start --num-gpus` declares; Ray hands out ids from each
raylet's ``CUDA_VISIBLE_DEVICES``, as it does on GPU nodes.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

PREFIXES = ("VLLM_", "FLASH_ATTENTION_", "LMCACHE_", "NCCL_", "UCX_", "HF_", "HUGGING_FACE_")
WORKER_SPECIFIC = {"VLLM_HOST_IP", "VLLM_HOST_PORT", "VLLM_NIXL_SIDE_CHANNEL_HOST", "LOCAL_RANK",
                   "CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES"}
SEEN = ("NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME", "VLLM_HOST_IP", "CUDA_VISIBLE_DEVICES", "VLMCTL_NODE")


def _non_carry_over() -> set[str]:
    root = os.environ.get("VLLM_CONFIG_ROOT") or os.path.join(
        os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"), "vllm")
    path = Path(os.path.expanduser(root), "ray_non_carry_over_env_vars.json")
    return set(json.loads(path.read_text())) if path.exists() else set()


def _v2() -> bool:
    return os.environ.get("VLLM_USE_RAY_V2_EXECUTOR_BACKEND") == "1"


def _to_copy() -> dict[str, str]:
    exclude = WORKER_SPECIFIC | _non_carry_over()
    if _v2():
        return {k: v for k, v in os.environ.items() if k not in exclude}
    names = {k for k in os.environ if k.startswith(PREFIXES)} | {"PYTHONHASHSEED"}
    return {k: os.environ[k] for k in names - exclude if k in os.environ}


def _flag(argv: list[str], name: str, default: str) -> str:
    return argv[argv.index(name) + 1] if name in argv else default


def main(argv: list[str]) -> None:
    import ray
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    world = int(_flag(argv, "--tensor-parallel-size", "1")) * int(_flag(argv, "--pipeline-parallel-size", "1"))
    ray.init(address=None, log_to_driver=False)
    bundles = [{"GPU": 1.0} for _ in range(world)]
    bundles[0][f"node:{os.environ['VLLM_HOST_IP']}"] = 0.001
    pg = ray.util.placement_group(bundles, strategy="PACK")
    ray.get(pg.ready(), timeout=60)

    @ray.remote(num_cpus=0, num_gpus=1)
    class Worker:
        def where(self):
            return ray.util.get_node_ip_address(), [int(i) for i in ray.get_gpu_ids()]

        def update_environment_variables(self, env: dict[str, str], fill_only: bool, devices: str) -> None:
            for key, value in env.items():
                if fill_only:
                    os.environ.setdefault(key, value)
                else:
                    os.environ[key] = value
            os.environ["CUDA_VISIBLE_DEVICES"] = devices

        def seen(self):
            return {"node_ip": ray.util.get_node_ip_address(), **{k: os.environ.get(k) for k in SEEN}}

    workers = [Worker.options(scheduling_strategy=PlacementGroupSchedulingStrategy(
        placement_group=pg, placement_group_capture_child_tasks=True, placement_group_bundle_index=i)).remote()
        for i in range(world)]
    where = ray.get([w.where.remote() for w in workers])
    by_node: dict[str, list[int]] = {}
    for ip, ids in where:
        by_node.setdefault(ip, []).extend(ids)
    copied = _to_copy()
    ray.get([w.update_environment_variables.remote(copied, _v2(), ",".join(map(str, sorted(by_node[ip]))))
             for w, (ip, _) in zip(workers, where)])
    report = {"driver": {k: os.environ.get(k) for k in (*SEEN, "RAY_ADDRESS", "VLLM_CONFIG_ROOT")},
              "copied": sorted(copied), "workers": ray.get([w.seen.remote() for w in workers]), "argv": argv}
    Path(os.environ["VLLM_STANDIN_REPORT"]).write_text(json.dumps(report, indent=2))
    ray.util.remove_placement_group(pg)
    ray.shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])
