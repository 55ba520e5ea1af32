"""The GPU catalog: memory as CUDA reports it, compute capability, HBM bandwidth, dtypes.

``total_gib`` is what ``cudaMemGetInfo`` reports (what vLLM multiplies by
gpu_memory_utilization), not the marketing size. Values marked ``log`` were read from vLLM logs
quoted in the shared reference (vllm-memory.md §5) or measured on the project's GPU machine;
``spec`` values are derived from the card's MiB as nvidia-smi lists it, minus the usual
reservation, and may be off by ~0.1 GiB: put the real value in the cluster file
(``total_gib``) when you have it. ``tflops``, ``link`` and ``link_gbs`` (for the speed model) are datasheet
values: NVIDIA's dense fp16/bf16 tensor TFLOP/s with fp32 accumulate (half the fp16-accumulate figure on
GeForce Turing/Ampere), NVLink per-GPU bandwidth for SXM boards, PCIe x16 otherwise.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from vlmctl.errors import ConfigError, did_you_mean


@dataclass(frozen=True)
class GpuType:
    """One GPU model."""

    id: str
    name: str
    total_gib: float
    compute_capability: tuple[int, int]
    bandwidth_gbs: float
    """HBM/GDDR bandwidth in GB/s (10^9 bytes/s)."""
    source: str
    """``log`` (seen in a vLLM log or measured) or ``spec`` (derived from the spec sheet)."""
    aliases: tuple[str, ...] = ()
    tflops: float = 0.0
    """Dense fp16/bf16 tensor-core TFLOP/s with fp32 accumulation (datasheet; what cuBLAS runs for vLLM)."""
    link: str = "pcie"
    """How GPUs of one node talk: ``nvlink`` (SXM boards with NVLink/NVSwitch) or ``pcie``."""
    link_gbs: float = 12.0
    """Achievable one-direction GPU-to-GPU bandwidth over ``link`` in GB/s (NVLink: per GPU; PCIe: gen3 x16 ≈ 12,
    gen4 x16 ≈ 24)."""

    @property
    def cc(self) -> float:
        return self.compute_capability[0] + self.compute_capability[1] / 10

    @property
    def cc_str(self) -> str:
        return f"{self.compute_capability[0]}.{self.compute_capability[1]}"

    @property
    def bf16(self) -> bool:
        """bfloat16 needs compute capability 8.0 (vLLM platforms/cuda.py supported_dtypes)."""
        return self.compute_capability >= (8, 0)

    @property
    def dtypes(self) -> tuple[str, ...]:
        base = ("bfloat16", "float16", "float32") if self.bf16 else ("float16", "float32")
        return base + (("fp8",) if self.compute_capability >= (8, 9) else ())


GPUS: tuple[GpuType, ...] = (
    GpuType("t4", "Tesla T4 16GB", 14.75, (7, 5), 320, "spec", tflops=65, link="pcie", link_gbs=12),
    GpuType("rtx-2080-ti", "GeForce RTX 2080 Ti 11GB", 10.76, (7, 5), 616, "spec", ("2080ti",),
            tflops=53.8, link="pcie", link_gbs=12),
    GpuType("titan-rtx", "TITAN RTX 24GB", 23.65, (7, 5), 672, "spec", tflops=130, link="pcie", link_gbs=12),
    GpuType("v100-16gb", "Tesla V100 16GB", 15.77, (7, 0), 900, "spec", ("v100",),
            tflops=125, link="nvlink", link_gbs=150),
    GpuType("v100-32gb", "Tesla V100 32GB", 31.74, (7, 0), 900, "spec", tflops=125, link="nvlink", link_gbs=150),
    GpuType("rtx-3090", "GeForce RTX 3090 24GB", 23.56, (8, 6), 936, "log", ("3090",),
            tflops=71, link="pcie", link_gbs=24),
    GpuType("a10", "A10 24GB", 22.06, (8, 6), 600, "spec", tflops=125, link="pcie", link_gbs=24),
    GpuType("a10g", "A10G 24GB", 22.03, (8, 6), 600, "log", tflops=70, link="pcie", link_gbs=24),
    GpuType("rtx-4060", "GeForce RTX 4060 8GB", 7.99, (8, 9), 272, "log", ("4060", "rtx-4060-8gb"),
            tflops=31, link="pcie", link_gbs=12),
    GpuType("rtx-4090", "GeForce RTX 4090 24GB", 23.64, (8, 9), 1008, "spec", ("4090",),
            tflops=165, link="pcie", link_gbs=24),
    GpuType("l4", "L4 24GB", 22.05, (8, 9), 300, "spec", tflops=121, link="pcie", link_gbs=24),
    GpuType("l40s", "L40S 48GB", 44.42, (8, 9), 864, "log", tflops=362, link="pcie", link_gbs=24),
    GpuType("a100-40gb", "A100 40GB", 39.38, (8, 0), 1555, "log", ("a100-40",),
            tflops=312, link="nvlink", link_gbs=300),
    GpuType("a100-80gb", "A100 80GB", 79.15, (8, 0), 2039, "log", ("a100", "a100-80"),
            tflops=312, link="nvlink", link_gbs=300),
    GpuType("h100-80gb", "H100 80GB HBM3", 79.18, (9, 0), 3350, "log", ("h100",),
            tflops=989, link="nvlink", link_gbs=450),
    GpuType("h200", "H200 141GB", 139.8, (9, 0), 4800, "spec", ("h200-141gb",),
            tflops=989, link="nvlink", link_gbs=450),
)


def _norm(name: str) -> str:
    s = re.sub(r"[^a-z0-9]", "", name.lower())
    for prefix in ("nvidia", "geforce", "tesla"):
        s = s.removeprefix(prefix)
    return s


@functools.cache
def _index() -> dict[str, GpuType]:
    idx: dict[str, GpuType] = {}
    for gpu in GPUS:
        for name in (gpu.id, gpu.name, *gpu.aliases):
            idx[_norm(name)] = gpu
    return idx


def gpu_type(name: str) -> GpuType:
    """Find a GPU by id, name or alias, ignoring case and punctuation ('RTX 2080 Ti' == 'rtx-2080-ti')."""
    hit = _index().get(_norm(name))
    if hit is None:
        hint = did_you_mean(name, [g.id for g in GPUS], normalise=_norm)
        raise ConfigError(
            f"unknown GPU type '{name}'.{hint}",
            fix="run `vlmctl gpus` for the names; a GPU it does not list is declared in a cluster file (total_gib, compute_capability)",
        )
    return hit
