"""Node checks for `vlmctl doctor`: each returns Findings (id, severity, message, fix).

Nothing here needs a GPU: without NVML the GPU checks say so instead of failing. NVML
(`nvidia-ml-py`) and torch are imported lazily, inside the checks that use them.
"""
from __future__ import annotations

import importlib.metadata
import ipaddress
import os
import platform
import re
import socket
from dataclasses import dataclass

from vlmctl.errors import VlmctlError
from vlmctl.findings import Finding

#: Ports a Ray + vLLM node listens on: Ray GCS, Ray dashboard, Ray client, vLLM API.
DEFAULT_PORTS = {6379: "Ray GCS", 8265: "Ray dashboard", 10001: "Ray client", 8000: "vLLM API"}
#: Packages whose versions must match on every node.
VERSIONED = ("vllm", "torch", "ray", "transformers", "nvidia-nccl-cu12", "nvidia-nccl-cu13")
MIN_SHM_BYTES = 1 << 30


@dataclass(frozen=True)
class Gpu:
    """One GPU as NVML reports it."""

    index: int
    name: str
    memory_total_bytes: int
    memory_free_bytes: int
    compute_capability: tuple[int, int]


def nvml_gpus() -> tuple[list[Gpu], str | None, str | None]:
    """(GPUs, driver version, why-not) via NVML; ``why-not`` is set when NVML is absent or fails."""
    try:
        import pynvml  # nvidia-ml-py
    except ImportError:
        return [], None, "nvidia-ml-py is not installed (pip install 'vlmctl[doctor]')"
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return [], None, f"NVML could not start: {exc}"
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        driver = driver.decode() if isinstance(driver, bytes) else driver
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(handle)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            cc = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            gpus.append(Gpu(i, name.decode() if isinstance(name, bytes) else name, mem.total, mem.free,
                            (int(cc[0]), int(cc[1]))))
        return gpus, driver, None
    finally:
        pynvml.nvmlShutdown()


def arch_supported(cc: tuple[int, int], arch_list: list[str]) -> bool:
    """True when a build with ``arch_list`` (torch.cuda.get_arch_list() form: sm_75, sm_90a, compute_90)
    can run on compute capability ``cc``: an exact sm_XY, or PTX (compute_XY) at or below it."""
    want = cc[0] * 10 + cc[1]
    for arch in arch_list:
        m = re.fullmatch(r"(sm|compute)_(\d+)[a-z]?", arch.strip())
        if not m:
            continue
        number = int(m.group(2))
        if m.group(1) == "sm" and number == want:
            return True
        if m.group(1) == "compute" and number <= want:
            return True
    return False


def attention_backends(cc: tuple[int, int], flashinfer: bool = False) -> tuple[str, str]:
    """(decoder attention backend, ViT attention backend) vLLM V1 picks on ``cc`` (vllm-memory.md §3.6)."""
    value = cc[0] + cc[1] / 10
    if value >= 8.0 and cc[0] != 10:
        decoder = "FLASH_ATTN"
    elif flashinfer and 7.5 <= value <= 12.1:
        decoder = "FLASHINFER"
    else:
        decoder = "TRITON_ATTN"
    vit = "FLASH_ATTN" if value >= 8.0 else "TORCH_SDPA"
    return decoder, vit


def check_gpus() -> list[Finding]:
    """GPUs, driver, bf16, attention backends and the installed torch's arch list vs each GPU."""
    gpus, driver, why_not = nvml_gpus()
    if why_not or not gpus:
        return [Finding(id="no-gpu", severity="info",
                        message=f"No NVIDIA GPU/NVML here ({why_not or 'NVML reports 0 GPUs'}); GPU checks "
                                "skipped. This node can plan, chat and bench, not serve on GPU.",
                        fix="run `vlmctl doctor` on each GPU node")]
    findings = [Finding(id="gpus", severity="info",
                        message=f"{len(gpus)} GPU(s), driver {driver}: " + "; ".join(
                            f"{g.index}: {g.name} {g.memory_total_bytes / 2**30:.1f} GiB "
                            f"(free {g.memory_free_bytes / 2**30:.1f}) CC {g.compute_capability[0]}."
                            f"{g.compute_capability[1]}" for g in gpus))]
    arch_list = torch_arch_list()
    flashinfer = _installed("flashinfer-python") or _installed("flashinfer")
    for g in gpus:
        cc = g.compute_capability
        if cc < (8, 0):
            findings.append(Finding(id="bf16-unsupported", severity="warning",
                                    message=f"GPU {g.index} ({g.name}) is CC {cc[0]}.{cc[1]}: no bfloat16.",
                                    fix="serve with --dtype half (vlmctl plan picks float16 here)"))
        decoder, vit = attention_backends(cc, flashinfer)
        findings.append(Finding(id="attention-backend", severity="info",
                                message=f"GPU {g.index}: vLLM V1 would use {decoder} (decoder) and {vit} "
                                        "(vision encoder)."))
        if arch_list and not arch_supported(cc, arch_list):
            findings.append(Finding(id="arch-missing", severity="error",
                                    message=f"torch was built for {' '.join(arch_list)}, which has no kernels "
                                            f"for GPU {g.index} (sm_{cc[0]}{cc[1]}): 'no kernel image is "
                                            "available' at start.",
                                    fix=f"install a torch/vLLM build with sm_{cc[0]}{cc[1]} "
                                        "(TORCH_CUDA_ARCH_LIST)"))
        if g.memory_free_bytes < 0.9 * g.memory_total_bytes:
            used = (g.memory_total_bytes - g.memory_free_bytes) / 2**30
            findings.append(Finding(id="gpu-memory-in-use", severity="warning",
                                    message=f"GPU {g.index} already has {used:.1f} GiB in use; "
                                            "gpu_memory_utilization is a share of TOTAL memory.",
                                    fix="free it (nvidia-smi) or lower --gpu-memory-utilization"))
    return findings


def torch_arch_list() -> list[str]:
    """The CUDA architectures the installed torch was built for ([] without torch or CUDA)."""
    if not _installed("torch"):
        return []
    import torch

    try:
        return list(torch.cuda.get_arch_list())
    except Exception:
        return []


def _installed(dist: str) -> bool:
    try:
        importlib.metadata.version(dist)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def versions() -> dict[str, str]:
    """Versions that must match across nodes (only those installed), plus Python."""
    out = {"python": platform.python_version()}
    for dist in VERSIONED:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def check_versions() -> list[Finding]:
    """One info finding listing the versions to compare with the other nodes."""
    shown = ", ".join(f"{k} {v}" for k, v in versions().items())
    return [Finding(id="versions", severity="info", message=f"Versions here: {shown}.",
                    fix="every node needs the same Ray, Python, vLLM, torch and NCCL (`vlmctl cluster verify`)")]


def interfaces() -> dict[str, list[str]]:
    """IPv4 addresses per NIC (``vlmctl.cluster.env.interfaces``: ``ip``, else psutil); empty if neither works."""
    from vlmctl.cluster.env import interfaces as read_interfaces

    try:
        return {name: i.addresses for name, i in read_interfaces().items() if i.addresses}
    except VlmctlError:
        return {}


def route_to(head: str) -> tuple[str | None, str | None]:
    """(NIC, source address) this node uses to reach ``head`` (``ip route get``, else a UDP probe)."""
    from vlmctl.cluster.env import route_to as kernel_route

    try:
        return kernel_route(socket.gethostbyname(head))
    except (OSError, VlmctlError):
        return None, None


def check_network(head: str | None = None) -> list[Finding]:
    """NICs, the NIC that routes to ``head``, and whether the hostname resolves to loopback."""
    findings: list[Finding] = []
    nics = interfaces()
    shown = "; ".join(f"{n} {' '.join(ips)}" for n, ips in nics.items()) or "none found"
    findings.append(Finding(id="nics", severity="info", message=f"NICs (IPv4): {shown}."))
    hostname = socket.gethostname()
    try:
        resolved = socket.gethostbyname(hostname)
    except OSError:
        resolved = None
    if resolved is None or ipaddress.ip_address(resolved).is_loopback:
        findings.append(Finding(
            id="hostname-loopback", severity="warning",
            message=f"Hostname {hostname!r} resolves to {resolved or 'nothing'}: Gloo will bind loopback and "
                    "other nodes cannot reach this one ('Unable to resolve hostname to a (local) address').",
            fix="set GLOO_SOCKET_IFNAME/NCCL_SOCKET_IFNAME to the NIC toward the head (vlmctl cluster up does), "
                "or map the hostname to a routable address in /etc/hosts"))
    else:
        findings.append(Finding(id="hostname", severity="info",
                                message=f"Hostname {hostname!r} resolves to {resolved}."))
    if head:
        nic, src = route_to(head)
        if nic is None:
            findings.append(Finding(id="head-unroutable", severity="error",
                                    message=f"No route from this node to head {head!r}.",
                                    fix="check the address, the network and the firewall"))
        elif nic == "lo":
            findings.append(Finding(id="head-route", severity="info",
                                    message=f"Head {head} is this node (route via lo)."))
        else:
            findings.append(Finding(
                id="head-route", severity="info",
                message=f"Head {head} is reached via NIC {nic} from {src}.",
                fix=f"on this node: GLOO_SOCKET_IFNAME={nic} NCCL_SOCKET_IFNAME=={nic} VLLM_HOST_IP={src} "
                    f"ray start --address={head}:6379 --node-ip-address={src}"))
    return findings


def check_shm(path: str = "/dev/shm") -> list[Finding]:
    """Warn when shared memory is small (Docker's 64 MiB default breaks NCCL and Ray)."""
    try:
        st = os.statvfs(path)
    except OSError:
        return [Finding(id="shm-missing", severity="warning", message=f"{path} is not available.",
                        fix="mount a tmpfs at /dev/shm (docker: --shm-size 10g or --ipc=host)")]
    size = st.f_frsize * st.f_blocks
    if size < MIN_SHM_BYTES:
        return [Finding(id="shm-small", severity="warning",
                        message=f"{path} is {size / 2**20:.0f} MiB; NCCL and Ray need more than 1 GiB.",
                        fix="docker run --shm-size 10g (or --ipc=host); compose: shm_size: 10gb")]
    return [Finding(id="shm", severity="info", message=f"{path} is {size / 2**30:.1f} GiB.")]


def port_in_use(port: int, host: str = "0.0.0.0") -> bool:
    """True when nothing can bind ``host:port`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def check_ports(ports: dict[int, str] | None = None) -> list[Finding]:
    """Ports Ray and vLLM need that something already holds."""
    ports = ports or DEFAULT_PORTS
    busy = [f"{p} ({what})" for p, what in ports.items() if port_in_use(p)]
    if busy:
        return [Finding(id="ports-in-use", severity="warning",
                        message=f"Ports already in use: {', '.join(busy)} (fine if Ray/vLLM already run here).",
                        fix="stop the old process (`ss -ltnp`) or pick other ports in the cluster file")]
    return [Finding(id="ports", severity="info",
                    message=f"Ports free: {', '.join(str(p) for p in ports)}.")]


def run_checks(head: str | None = None) -> list[Finding]:
    """Every node check, in display order."""
    return [*check_gpus(), *check_versions(), *check_network(head), *check_shm(), *check_ports()]
