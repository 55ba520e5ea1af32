"""Every environment variable vlmctl reads or sets, listed once.

Read lazily through the functions below; never at import time.
"""
from __future__ import annotations

import os

#: Variables vlmctl *reads*.
READS = {
    "VLMCTL_DEBUG": "1 shows full tracebacks for known errors.",
    "VLMCTL_API_KEY": "API key that `vlmctl serve` enforces and `vlmctl ui`/`bench` send (or use --api-key-file).",
    "VLLM_API_KEY": "Read when VLMCTL_API_KEY is unset (the name `vllm serve` itself reads).",
    "VLMCTL_CACHE_DIR": "Where the embedded demo model and other caches live (default: the user cache dir).",
    "OPENAI_BASE_URL": "Base URL `vlmctl ui`/`bench` use when no --api-base/--base-url is given.",
    "OPENAI_API_KEY": "Key `vlmctl ui`/`bench` send when neither --api-key nor VLMCTL_API_KEY is set.",
    "NO_COLOR": "Any value turns colour off in terminal output.",
    "VLMCTL_STATE_ROOT": "Folder for per-node cluster state: Ray --temp-dir and vLLM config root (default /tmp/vlmctl).",
    "VLMCTL_CALIBRATION_DIR": "Folder of per-user calibration files (vllm-MAJOR.MINOR.json) that `vlmctl calibrate` "
                              "writes and `vlmctl plan` reads (default: the user config dir / vlmctl/calibration).",
    "VLMCTL_UI_UPDATE_MS": "Fixed gap between chat-page updates while streaming, in ms (default: adapts to answer length).",
}

#: Variables vlmctl *sets* for Ray and vLLM processes (see vlmctl.plan and vlmctl.cluster).
SETS = {
    "VLLM_WORKER_MULTIPROC_METHOD": "Always 'spawn': fork after CUDA init fails.",
    "VLLM_PP_LAYER_PARTITION": "Decoder layers per pipeline stage when the plan chose an uneven split.",
    "VLLM_USE_V2_MODEL_RUNNER": "'0' when the plan chose vLLM's V1 model runner (it reserves the vision encoder's peak).",
    "VLLM_HOST_IP": "This node's address as Ray sees it.",
    "NCCL_SOCKET_IFNAME": "The NIC that routes to the head, exact-match form '=name'.",
    "GLOO_SOCKET_IFNAME": "The same NIC, one concrete name.",
    "CUDA_VISIBLE_DEVICES": "The GPUs of this node that the cluster file lists.",
    "RAY_USAGE_STATS_ENABLED": "'0': no usage statistics.",
    "VLLM_NO_USAGE_STATS": "'1': no usage statistics.",
    "VLLM_API_KEY": "The API key for `vllm serve` (kept out of argv, so it never shows in `ps`).",
    "VLLM_CONFIG_ROOT": "Per-node folder holding ray_non_carry_over_env_vars.json, so vLLM's driver keeps its NIC values off Ray workers.",
    "VLMCTL_CLUSTER": "Set on Ray nodes: the cluster name (verify and down read it inside Ray tasks).",
    "VLMCTL_NODE": "Set on Ray nodes: the node name from the cluster file.",
    "VLMCTL_STATE_DIR": "Set on Ray nodes: that node's state folder (Ray --temp-dir).",
}


def debug() -> bool:
    """True when VLMCTL_DEBUG asks for tracebacks."""
    return os.environ.get("VLMCTL_DEBUG", "") not in ("", "0", "false")


def api_key() -> str | None:
    """The API key from VLMCTL_API_KEY, else VLLM_API_KEY (what `vllm serve` reads), if any."""
    return api_key_with_source()[0]


def api_key_with_source() -> tuple[str | None, str]:
    """(key, the variable it came from): VLMCTL_API_KEY, else VLLM_API_KEY."""
    for name in ("VLMCTL_API_KEY", "VLLM_API_KEY"):
        value = os.environ.get(name)
        if value:
            return value, name
    return None, "VLMCTL_API_KEY"


def openai_base_url() -> str | None:
    """OPENAI_BASE_URL, if set."""
    return os.environ.get("OPENAI_BASE_URL", "").strip() or None


def openai_api_key() -> str | None:
    """OPENAI_API_KEY, if set."""
    return os.environ.get("OPENAI_API_KEY") or None


def cache_dir() -> str:
    """vlmctl's cache folder (VLMCTL_CACHE_DIR, else XDG cache / vlmctl)."""
    explicit = os.environ.get("VLMCTL_CACHE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "vlmctl")


def state_root() -> str:
    """Root of per-node cluster state (VLMCTL_STATE_ROOT, default /tmp/vlmctl; short for Ray's socket paths)."""
    return os.environ.get("VLMCTL_STATE_ROOT") or "/tmp/vlmctl"


def ui_update_ms() -> float | None:
    """VLMCTL_UI_UPDATE_MS as a number, or None (then the chat page adapts its update rate)."""
    value = os.environ.get("VLMCTL_UI_UPDATE_MS", "").strip()
    try:
        return float(value) if value else None
    except ValueError:
        return None


def calibration_dir() -> str:
    """Where `vlmctl calibrate` writes and `vlmctl plan` looks for calibration files (VLMCTL_CALIBRATION_DIR, else
    XDG config / vlmctl / calibration)."""
    explicit = os.environ.get("VLMCTL_CALIBRATION_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "vlmctl", "calibration")
