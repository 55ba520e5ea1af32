"""Ray across machines: per-node environment, bring-up, status, verify, teardown, compose files.

Nothing here imports Ray at module level; ``ray_node``, ``status`` and ``verify`` import it inside
the functions that talk to a cluster.
"""
from vlmctl.cluster.env import NodeEnv, node_env

__all__ = ["NodeEnv", "node_env"]
