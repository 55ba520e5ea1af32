"""The failure catalogue: every signature, in matching order, grouped by subsystem module."""
from __future__ import annotations

from vlmctl.failures import hardware, loading, memory, multimodal, network, process, ray_cluster
from vlmctl.failures.signature import SUBSYSTEMS, Signature

CATALOG: tuple[Signature, ...] = (
    *network.SIGNATURES, *ray_cluster.SIGNATURES, *memory.SIGNATURES, *loading.SIGNATURES,
    *hardware.SIGNATURES, *multimodal.SIGNATURES, *process.SIGNATURES,
)
BY_ID: dict[str, Signature] = {s.id: s for s in CATALOG}

__all__ = ["BY_ID", "CATALOG", "SUBSYSTEMS", "Signature"]
