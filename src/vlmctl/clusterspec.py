"""The cluster file (YAML): which machines, which GPUs, which NIC, where the model lives.

Example::

    name: lab
    model_path: /models/Qwen2.5-VL-72B-Instruct   # same path on every node
    nodes:
      - name: gpu-a
        address: 192.168.1.10
        gpu: rtx-2080-ti
        gpu_ids: [0, 1, 2, 3, 4, 5, 6, 7]
        nic: enp134s0f0
      - name: gpu-b
        address: 192.168.1.11
        gpu: rtx-2080-ti
        gpu_count: 8

A GPU that `vlmctl gpus` does not list is declared on its node::

      - name: gpu-c
        address: 192.168.1.12
        gpu: rtx-3080
        gpu_count: 2
        total_gib: 9.77            # torch.cuda.mem_get_info()[1] / 2**30
        compute_capability: "8.6"  # nvidia-smi --query-gpu=compute_cap --format=csv
        bandwidth_gbs: 760         # optional: memory bandwidth, GB/s (the batch-1 decode bound)

`vlmctl cluster schema` prints the JSON Schema of this file (for editors).
`--gpus TYPE[:COUNT],…` on the command line builds the same object (one node per entry).
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from vlmctl.errors import ConfigError
from vlmctl.hardware.gpus import GPUS, GpuType, gpu_type
from vlmctl.validation import parse

#: Addresses `ray start` replaces with the machine's network address (ray/_private/services.py
#: resolve_ip_for_localhost), so Ray's node address and VLLM_HOST_IP would disagree.
RAY_REWRITTEN_ADDRESSES = ("127.0.0.1", "localhost", "::1")


#: Names that become file and folder names (state under VLMCTL_STATE_ROOT, generated files): no '/', no '..'.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
#: GPUs one node can have (gpu_count's bound, and the ids below it).
MAX_GPUS_PER_NODE = 64


class Ports(BaseModel):
    """Ports the cluster uses (Ray defaults)."""

    model_config = ConfigDict(extra="forbid")

    ray: int = Field(6379, ge=1, le=65535)
    """Ray GCS port on the head (`ray start --head --port`)."""
    dashboard: int = Field(8265, ge=1, le=65535)
    """Ray dashboard port."""
    api: int = Field(8000, ge=1, le=65535)
    """OpenAI-compatible API port of `vlmctl serve`."""

    @model_validator(mode="after")
    def _distinct(self) -> "Ports":
        used: dict[int, str] = {}
        for name in ("ray", "dashboard", "api"):
            port = getattr(self, name)
            if port in used:
                raise ValueError(f"ports.{used[port]} and ports.{name} are both {port}; the head listens on each, "
                                 "so they must differ")
            used[port] = name
        return self


class NodeSpec(BaseModel):
    """One machine."""

    model_config = ConfigDict(extra="forbid")

    name: str
    """Unique node name (used in findings and generated files)."""
    address: str | None = None
    """IP address or hostname the other nodes reach this one at; the first node is the head."""
    gpu: str
    """GPU type as `vlmctl gpus` lists it (case and punctuation ignored)."""
    gpu_count: int | None = Field(None, ge=1, le=64)
    """How many GPUs to use; defaults to len(gpu_ids), else 1."""
    gpu_ids: list[int] | None = None
    """Physical GPU ids to use (becomes CUDA_VISIBLE_DEVICES); defaults to 0..gpu_count-1."""
    nic: str | None = None
    """Network interface for NCCL/Gloo; default: the one that routes to the head."""
    model_path: str | None = None
    """Model folder on this node; defaults to the cluster's model_path."""
    total_gib: float | None = Field(None, gt=0, le=4096, allow_inf_nan=False)
    """Per-GPU memory as torch.cuda.mem_get_info reports it as total; overrides the catalog's. With
    compute_capability it declares a GPU the catalog does not list."""
    compute_capability: str | None = Field(None, pattern=r"^\d{1,2}\.\d$")
    """CUDA compute capability, e.g. "8.6" (nvidia-smi --query-gpu=compute_cap); overrides the catalog's."""
    bandwidth_gbs: float | None = Field(None, gt=0, le=100000, allow_inf_nan=False)
    """Memory bandwidth in GB/s (10^9 bytes/s); overrides the catalog's. Used for the batch-1 decode bound."""
    reserved_gib: float = Field(0.0, ge=0, le=4096, allow_inf_nan=False)
    """Memory per GPU already used by other processes before vLLM starts."""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not SAFE_NAME.fullmatch(v):
            raise ValueError(f"node name {v[:40]!r}: use letters, digits, '.', '_' and '-' (at most 63, starting "
                             "with a letter or digit)")
        return v

    @field_validator("gpu_ids")
    @classmethod
    def _ids(cls, v: list[int] | None) -> list[int] | None:
        if v is not None:
            if not v:
                raise ValueError("gpu_ids must list at least one GPU")
            if any(i < 0 for i in v) or len(set(v)) != len(v):
                raise ValueError(f"gpu_ids must be distinct non-negative integers, got {v}")
        return v

    @model_validator(mode="after")
    def _count_vs_ids(self) -> "NodeSpec":
        if self.gpu_ids is not None and max(self.gpu_ids) >= MAX_GPUS_PER_NODE:
            raise ValueError(
                f"gpu_ids {self.gpu_ids}: GPU ids count from 0 and a node has at most {MAX_GPUS_PER_NODE} GPUs; "
                "list ids as nvidia-smi shows them (nvidia-smi -L)"
            )
        if self.gpu_ids is not None and self.gpu_count is not None and self.gpu_count != len(self.gpu_ids):
            raise ValueError(
                f"gpu_count ({self.gpu_count}) and gpu_ids ({self.gpu_ids}, {len(self.gpu_ids)} GPUs) disagree; "
                "drop gpu_count or make it match gpu_ids"
            )
        return self

    @property
    def count(self) -> int:
        return len(self.gpu_ids) if self.gpu_ids is not None else (self.gpu_count or 1)

    @property
    def ids(self) -> list[int]:
        return self.gpu_ids if self.gpu_ids is not None else list(range(self.count))

    @property
    def gpu_type(self) -> GpuType:
        """The catalog's GPU with this node's overrides, or the GPU this node declares."""
        return _node_gpu(self.name, self.gpu, self.total_gib, self.compute_capability, self.bandwidth_gbs)

    @property
    def gpu_total_gib(self) -> float:
        """Per-GPU total memory: the override if given, else the catalog's."""
        return self.total_gib or self.gpu_type.total_gib


class ClusterSpec(BaseModel):
    """The whole cluster: nodes (the first is the head unless `head` names another) and shared settings."""

    model_config = ConfigDict(extra="forbid")

    name: str = "vlmctl"
    """Cluster name (Ray temp dir and generated files are named after it): letters, digits, '.', '_', '-'."""
    head: str | None = None
    """Name of the head node; default: the first node."""
    model_path: str | None = None
    """Model folder, the same path on every node (vLLM's workers open the path the driver gives them)."""
    ports: Ports = Ports()
    nodes: list[NodeSpec] = Field(min_length=1)
    _from_gpus: bool = PrivateAttr(False)

    @property
    def from_gpus(self) -> bool:
        """True when built from ``--gpus`` (no file: no addresses, no cluster name of the user's)."""
        return self._from_gpus

    @field_validator("name")
    @classmethod
    def _cluster_name(cls, v: str) -> str:
        if not SAFE_NAME.fullmatch(v) or v in (".", ".."):
            raise ValueError(f"cluster name {v[:40]!r} becomes a folder name: use letters, digits, '.', '_' and '-' "
                             "(at most 63, starting with a letter or digit; no '/')")
        return v

    @model_validator(mode="after")
    def _unique(self) -> "ClusterSpec":
        seen: set[str] = set()
        for node in self.nodes:
            if node.name in seen:
                raise ValueError(f"node name '{node.name}' appears twice; node names must be unique")
            seen.add(node.name)
        addrs = [n.address for n in self.nodes if n.address]
        dup = {a for a in addrs if addrs.count(a) > 1}
        if dup:
            raise ValueError(f"address {sorted(dup)[0]} is given to two nodes; each node needs its own address")
        if self.head is not None and self.head not in seen:
            raise ValueError(f"head '{self.head}' is not one of the nodes ({', '.join(sorted(seen))})")
        for node in self.nodes:
            node.gpu_type  # noqa: B018 - raises ConfigError with a suggestion for unknown types
        return self

    @property
    def head_node(self) -> NodeSpec:
        return next((n for n in self.nodes if n.name == self.head), self.nodes[0])

    def node(self, name: str) -> NodeSpec:
        for n in self.nodes:
            if n.name == name:
                return n
        raise ConfigError(f"no node named '{name}' in the cluster file.",
                          fix=f"use one of: {', '.join(n.name for n in self.nodes)}")

    def model_path_for(self, node: NodeSpec) -> str | None:
        return node.model_path or self.model_path


_FIX = "edit the cluster file (`vlmctl cluster schema` prints every field; docs/cluster.md has an example)"

#: Bandwidth assumed for a declared GPU without bandwidth_gbs: the slowest in the catalog, so the
#: decode bound errs low.
_FALLBACK_BANDWIDTH_GBS = min(g.bandwidth_gbs for g in GPUS)


def _node_gpu(node: str, name: str, total_gib: float | None, cc: str | None, bandwidth: float | None) -> GpuType:
    try:
        base = gpu_type(name)
    except ConfigError as exc:
        if total_gib is None or cc is None:
            missing = " and ".join(f for f, v in (("total_gib", total_gib), ("compute_capability", cc)) if v is None)
            raise ConfigError(
                f"node '{node}': {exc.message} To plan for a GPU the catalog does not list, the node needs "
                f"total_gib and compute_capability ({missing} missing).",
                fix=f"run `vlmctl gpus` for the listed names, or add to node '{node}': total_gib: <GiB, "
                    "torch.cuda.mem_get_info()[1] / 2**30> and compute_capability: \"<nvidia-smi --query-gpu="
                    "compute_cap --format=csv>\" (bandwidth_gbs optional)") from None
        major, minor = (int(x) for x in cc.split("."))
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "gpu"
        return GpuType(slug, name, total_gib, (major, minor), bandwidth or _FALLBACK_BANDWIDTH_GBS, "cluster file")
    if total_gib is None and cc is None and bandwidth is None:
        return base
    from dataclasses import replace

    cc_tuple = tuple(int(x) for x in cc.split(".")) if cc else base.compute_capability
    return replace(base, total_gib=total_gib or base.total_gib, compute_capability=cc_tuple,
                   bandwidth_gbs=bandwidth or base.bandwidth_gbs, source="cluster file" if cc or bandwidth else base.source)


def json_schema() -> dict:
    """The JSON Schema of the cluster file (``vlmctl cluster schema``), for editors and validators."""
    schema = ClusterSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "vlmctl cluster file"
    return schema


class _DuplicateKey(yaml.YAMLError):
    pass


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe subset, refusing a key given twice in one mapping (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise _DuplicateKey(f"line {key_node.start_mark.line + 1}: a key must be a plain value") from None
            if key in seen:
                raise _DuplicateKey(f"key '{key}' appears twice in one mapping (lines {seen[key]} and "
                                    f"{key_node.start_mark.line + 1})")
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load_cluster(path: str | Path) -> ClusterSpec:
    """Read and validate a cluster YAML file."""
    p = Path(path)
    try:
        if p.is_dir():
            raise ConfigError(f"cluster file '{p}' is a directory.", fix="pass the YAML file: --cluster cluster.yaml")
        text = p.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read cluster file '{p}' ({exc.strerror}).", fix="check the --cluster path") from None
    except UnicodeDecodeError as exc:
        line = p.read_bytes()[: exc.start].count(b"\n") + 1
        raise ConfigError(f"cluster file '{p}' is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} on line {line}).",
                          fix="save the file as UTF-8") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader that also refuses duplicate keys
    except _DuplicateKey as exc:
        raise ConfigError(f"cluster file '{p}': {exc}.", fix="keep one of them") from None
    except RecursionError:
        raise ConfigError(f"cluster file '{p}' is nested too deeply.", fix=_FIX) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"cluster file '{p}' is not valid YAML{where}: {problem}.", fix="fix the YAML syntax") from None
    if not isinstance(data, dict):
        raise ConfigError(f"cluster file '{p}' must be a mapping with a 'nodes' list.", fix=_FIX)
    return parse(ClusterSpec, data, f"cluster file '{p}'", _FIX)


def cluster_from_gpus(spec: str) -> ClusterSpec:
    """Build a cluster from ``--gpus TYPE[:COUNT],…`` (one node per entry)."""
    nodes = []
    for i, part in enumerate(p.strip() for p in spec.split(",")):
        if not part:
            raise ConfigError(f"--gpus '{spec}': empty entry.", fix="write --gpus TYPE[:COUNT],… e.g. rtx-2080-ti:8,rtx-2080-ti:8")
        name, _, count = part.partition(":")
        try:
            n = int(count) if count else 1
        except ValueError:
            raise ConfigError(f"--gpus '{part}': count '{count}' is not a whole number.",
                              fix="write TYPE:COUNT, e.g. a100-80gb:4") from None
        if n < 1 or n > 64:
            raise ConfigError(f"--gpus '{part}': count {n} must be between 1 and 64.", fix="write TYPE:COUNT, e.g. a100-80gb:4")
        try:
            gpu_type(name)
        except ConfigError as exc:
            raise ConfigError(f"--gpus '{part}': {exc.message}",
                              fix="run `vlmctl gpus` for the listed names; a GPU it does not list is declared in a "
                                  "cluster file (total_gib, compute_capability) and planned with --cluster FILE") from None
        nodes.append({"name": f"node{i}", "gpu": name, "gpu_count": n})
    cluster = parse(ClusterSpec, {"nodes": nodes}, f"--gpus '{spec}'", "write --gpus TYPE[:COUNT],…")
    cluster._from_gpus = True
    return cluster
