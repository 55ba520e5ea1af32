"""What one node looks like from the inside: GPUs, CUDA arch list, versions, model folder, shm, disk.

These functions run inside a Ray task pinned to the node (see ``verify``), but need no Ray
themselves, so they also run (and are tested) locally. Nothing here raises on a missing GPU,
driver or package: absence is data, turned into findings by ``verify.analyse``.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import socket
from pathlib import Path

from pydantic import BaseModel, Field

#: Files whose content is hashed for the model fingerprint; everything else counts by size only.
HASHED_SUFFIXES = (".json", ".jinja", ".txt", ".model", ".py")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".msgpack", ".h5")
_MAX_HASHED_BYTES = 64 * 1024 * 1024
GIB = 1024 ** 3


class GpuProbe(BaseModel):
    """One GPU as NVML reports it."""

    index: int
    name: str
    compute_capability: str
    """``major.minor``, e.g. ``7.5``."""
    total_gib: float
    used_gib: float


class ModelProbe(BaseModel):
    """The model folder on one node."""

    path: str | None
    present: bool = False
    fingerprint: str | None = None
    """sha256 over (relative path, size, and for small config/index files their sha256)."""
    files: int = 0
    total_gib: float = 0.0
    hashes: dict[str, str] = Field(default_factory=dict)
    """sha256 of each hashed (config/index/tokenizer) file, by relative path."""


class NodeProbe(BaseModel):
    """Everything `cluster verify` compares across nodes."""

    node: str
    address: str
    hostname: str
    hostname_ip: str | None
    """What the hostname resolves to (Gloo binds there without GLOO_SOCKET_IFNAME)."""
    gpus: list[GpuProbe] = Field(default_factory=list)
    gpu_error: str | None = None
    """Why NVML saw nothing (no driver, no library, no device)."""
    cuda_visible_devices: str | None = None
    torch_cuda: str | None = None
    """CUDA version torch was built with (None: a CPU build)."""
    torch_arch_list: list[str] = Field(default_factory=list)
    """Architectures the installed torch carries kernels for, e.g. ``sm_80``, ``compute_90``."""
    versions: dict[str, str | None] = Field(default_factory=dict)
    model: ModelProbe
    shm_gib: float | None = None
    disk_free_gib: float | None = None
    """Free space on the filesystem that holds the model path (or its nearest existing parent)."""
    env: dict[str, str] = Field(default_factory=dict)
    """The network variables this node's Ray workers actually see."""
    interfaces: list[str] = Field(default_factory=list)


def probe_gpus() -> tuple[list[GpuProbe], str | None]:
    """All GPUs NVML sees (ignores CUDA_VISIBLE_DEVICES), or why it sees none."""
    try:
        import pynvml
    except ImportError:
        return [], "nvidia-ml-py is not installed (pip install 'vlmctl[cluster]')"
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # noqa: BLE001 - NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return [], f"NVML unavailable: {exc}"
    try:
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(h)
            name = name.decode() if isinstance(name, bytes) else name
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(h)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            gpus.append(GpuProbe(index=i, name=name, compute_capability=f"{major}.{minor}",
                                 total_gib=round(mem.total / GIB, 2), used_gib=round(mem.used / GIB, 2)))
        return gpus, None if gpus else "NVML found no GPU"
    except Exception as exc:  # noqa: BLE001
        return [], f"NVML error: {exc}"
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass


def _dist_version(*names: str) -> str | None:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def probe_torch() -> tuple[str | None, list[str], str | None]:
    """(torch CUDA version, compiled arch list, NCCL version) without touching a GPU."""
    try:
        import torch
    except ImportError:
        return None, [], None
    arch: list[str] = []
    flags = getattr(torch._C, "_cuda_getArchFlags", None)
    if torch.version.cuda and flags is not None:
        try:
            arch = (flags() or "").split()
        except Exception:  # noqa: BLE001
            arch = []
    nccl = None
    try:
        v = torch.cuda.nccl.version()
        nccl = ".".join(map(str, v)) if isinstance(v, tuple) else str(v)
    except Exception:  # noqa: BLE001 - CPU build, or libnccl missing
        nccl = None
    return torch.version.cuda, arch, nccl


def probe_versions(nccl: str | None) -> dict[str, str | None]:
    """Versions that must match across nodes."""
    return {
        "python": platform.python_version(),
        "ray": _dist_version("ray"),
        "vllm": _dist_version("vllm"),
        "torch": _dist_version("torch"),
        "transformers": _dist_version("transformers"),
        "nccl": nccl or _dist_version("nvidia-nccl-cu13", "nvidia-nccl-cu12", "nvidia-nccl-cu11"),
    }


def fingerprint_model(path: str | None) -> ModelProbe:
    """Sizes of every file plus sha256 of config/index/tokenizer files; weights are never read."""
    if not path:
        return ModelProbe(path=None)
    root = Path(path)
    if not root.is_dir():
        return ModelProbe(path=path, present=False)
    digest = hashlib.sha256()
    hashes: dict[str, str] = {}
    files, total = 0, 0
    for file in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
        rel = file.relative_to(root).as_posix()
        if rel.startswith((".cache/", ".git/")):
            continue
        size = file.stat().st_size
        files, total = files + 1, total + size
        line = f"{rel}\t{size}"
        if file.suffix in HASHED_SUFFIXES and not file.name.endswith(WEIGHT_SUFFIXES) and size <= _MAX_HASHED_BYTES:
            hashes[rel] = hashlib.sha256(file.read_bytes()).hexdigest()
            line += f"\t{hashes[rel]}"
        digest.update(line.encode() + b"\n")
    return ModelProbe(path=path, present=True, fingerprint=digest.hexdigest()[:16], files=files,
                      total_gib=round(total / GIB, 3), hashes=hashes)


def _free_gib(path: str | None) -> float | None:
    p = Path(path or "/")
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        st = os.statvfs(p)
    except OSError:
        return None
    return round(st.f_bavail * st.f_frsize / GIB, 2)


def _shm_gib() -> float | None:
    try:
        st = os.statvfs("/dev/shm")
    except OSError:
        return None
    return round(st.f_blocks * st.f_frsize / GIB, 2)


def _hostname_ip(host: str) -> str | None:
    try:
        return socket.gethostbyname(host)
    except OSError:
        return None


def probe_node(node: str, address: str, model_path: str | None) -> NodeProbe:
    """Probe the machine this runs on."""
    gpus, gpu_error = probe_gpus()
    cuda, arch, nccl = probe_torch()
    host = socket.gethostname()
    try:
        ifaces = sorted(os.listdir("/sys/class/net"))
    except OSError:
        ifaces = []
    env_keys = ("GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME", "VLLM_HOST_IP", "CUDA_VISIBLE_DEVICES",
                "VLLM_WORKER_MULTIPROC_METHOD", "VLMCTL_NODE")
    return NodeProbe(
        node=node, address=address, hostname=host, hostname_ip=_hostname_ip(host), gpus=gpus, gpu_error=gpu_error,
        cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"), torch_cuda=cuda, torch_arch_list=arch,
        versions=probe_versions(nccl), model=fingerprint_model(model_path), shm_gib=_shm_gib(),
        disk_free_gib=_free_gib(model_path), env={k: os.environ[k] for k in env_keys if k in os.environ},
        interfaces=ifaces,
    )
