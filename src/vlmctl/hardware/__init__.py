"""Hardware: the GPU catalog (and, in vlmctl.doctor, the local probe)."""
from vlmctl.hardware.gpus import GPUS, GpuType, gpu_type

__all__ = ["GPUS", "GpuType", "gpu_type"]
