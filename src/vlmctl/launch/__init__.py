"""Pure: Plan (+ cluster file, + vLLM passthrough args) -> what every node runs.

    spec = build_launch(plan, cluster)
    spec.node("gpu-a").env, spec.node("gpu-a").ray_start(), spec.vllm_argv, spec.driver_env()

Every output renders this (`serve`, `serve --dry-run`, `compose`, `plan --emit`, `cluster env/up/join`);
nothing else computes an environment or a command line. Imports nothing above the planner.
"""
from __future__ import annotations

from vlmctl.launch.passthrough import check_passthrough
from vlmctl.launch.spec import (NIC_VARS, NON_CARRY_OVER, NON_CARRY_OVER_FILE, LaunchSpec, NodeLaunch, build_launch,
                                nic_env, non_carry_over_json, state_dir)

__all__ = ["NIC_VARS", "NON_CARRY_OVER", "NON_CARRY_OVER_FILE", "LaunchSpec", "NodeLaunch", "build_launch",
           "check_passthrough", "nic_env", "non_carry_over_json", "state_dir"]
