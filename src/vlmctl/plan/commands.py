"""Per-node environment and launch lines derived from a Plan (what `vlmctl plan --emit` prints).

The network part that depends on the node itself (which NIC routes to the head) is computed on
that node by `vlmctl cluster env`; here only what the plan and the cluster file fix.
"""
from __future__ import annotations

import shlex

from vlmctl.plan.schema import NodePlacement, Plan

RAY_PORT = 6379


def node_env(plan: Plan, node: NodePlacement) -> dict[str, str]:
    """Environment for the Ray/vLLM processes on ``node``."""
    env = dict(plan.env)
    env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, node.gpu_ids))
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env["VLLM_NO_USAGE_STATS"] = "1"
    if node.address:
        env["VLLM_HOST_IP"] = node.address
    if node.nic:
        env["GLOO_SOCKET_IFNAME"] = node.nic
        env["NCCL_SOCKET_IFNAME"] = "=" + node.nic
    return env


def node_commands(plan: Plan, node: NodePlacement) -> list[str]:
    """`ray start` for every node of a multi-node plan, and the `vllm serve` line on the head (first node)."""
    head = plan.nodes[0]
    lines = [f"export {k}={shlex.quote(v)}" for k, v in node_env(plan, node).items()]
    addr = f" --node-ip-address {node.address}" if node.address else ""
    if len(plan.nodes) > 1:
        if node.name == head.name:
            lines.append(f"ray start --head --port {RAY_PORT}{addr} --disable-usage-stats")
        else:
            lines.append(f"ray start --address {head.address or '<HEAD-ADDRESS>'}:{RAY_PORT}{addr} --disable-usage-stats")
    if node.name == head.name:
        if len(plan.nodes) > 1:  # vLLM's ray.init() takes no address; this one leaves no doubt which cluster
            lines.append(f"export RAY_ADDRESS={head.address or '<HEAD-ADDRESS>'}:{RAY_PORT}")
        lines.append(vllm_serve_line(plan))
    return lines


def vllm_serve_line(plan: Plan) -> str:
    """The `vllm serve …` line for the plan (built by vlmctl.serve.argv)."""
    from vlmctl.serve.argv import vllm_argv

    return shlex.join(vllm_argv(plan))
