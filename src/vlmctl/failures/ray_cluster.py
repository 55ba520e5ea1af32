"""Ray scheduling and cluster membership failures (placement groups, node IPs, dead nodes, versions)."""
from __future__ import annotations

from vlmctl.failures.signature import Signature

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        id="ray-node-ip-mismatch",
        title="Placement group never forms: vLLM's IP is not a Ray node IP",
        subsystem="ray",
        # the bundle {'node:<vLLM's IP>': 0.001, 'GPU': 1.0}, in either key order (V1 puts GPU first)
        patterns=(r"No available node types can fulfill resource request\s*\{[^}]{0,40}'node:[0-9a-f.:]+'",),
        # vLLM < 0.8 warned first when the CLUSTER has fewer GPUs than TP x PP (ray_utils.initialize_ray_cluster):
        # then the node bundle fails for want of GPUs, not for a wrong IP
        unless=(r"The number of required GPUs exceeds the total number of available GPUs in the (?:placement "
                r"group|cluster)",),
        cause="vLLM asks Ray for a GPU on node:<its own IP>, found via the default route (a UDP probe to "
              "8.8.8.8); that IP differs from the one Ray registered, so the request can never be met.",
        fix="start Ray with `--node-ip-address=<ip>` and export VLLM_HOST_IP=<same ip> on each node "
            "(`vlmctl cluster up` does both); check `ray list nodes`.",
        sources=("vllm-project/vllm#7815", "vllm-project/vllm#13388", "vllm-project/vllm#13521"),
        supersedes=("ray-placement-group",),
        stalls=True,
        specificity=3,
    ),
    Signature(
        id="ray-local-instance",
        title="vLLM started its own Ray instead of joining the cluster",
        subsystem="ray",
        patterns=(r"Started a local Ray instance.*?Waiting for creating a placement group",),
        cause="vLLM's ray.init() had no address: without RAY_ADDRESS it reads the default temp dir's "
              "/tmp/ray/ray_current_cluster, which a `ray start --temp-dir=…` never writes, so it started a one-node "
              "Ray on the head and waits forever for the other nodes' GPUs.",
        fix="export RAY_ADDRESS=<head address>:<Ray port> before `vllm serve` (`vlmctl serve --plan … --cluster …` "
            "sets it); `ray status` should list every node.",
        sources=("measured by vlmctl on the project's H100 (vLLM 0.26.0, Ray 2.60.0)",),
        supersedes=("world-size-gpus", "ray-placement-group"),
        stalls=True,
        specificity=3,
    ),
    Signature(
        id="ray-placement-group",
        title="Ray cannot place the GPUs TP x PP asks for (a node never joined, or too few GPUs)",
        subsystem="ray",
        patterns=(
            r"Cannot provide a placement group requiring (?P<gpus>[\d.]+) GPUs",
            r"Waiting for creating a placement group of specs",
            r"Tensor parallel size \((?P<tp>\d+)\) exceeds available GPUs \((?P<available>\d+)\)\. This may result "
            r"in Ray placement group",
            r"Placement group bundle cannot have more than 1 GPU",
            r"Not enough resources to allocate (?P<groups>\d+) placement groups",
            # Ray's autoscaler and `ray status` while the group waits
            r"No available node types can fulfill resource request",
            r"\d+\+ pending placement groups",
            # vLLM's ray_utils before it waits (older releases: "... in the cluster")
            r"The number of required GPUs exceeds the total number of available GPUs in the (?:placement group|"
            r"cluster)",
        ),
        cause="the placement group vLLM requests (one GPU per rank) is larger than what the Ray cluster offers: "
              "a worker node never joined (or joined without its GPUs: CUDA_VISIBLE_DEVICES, --num-gpus), or TP x "
              "PP exceeds the GPUs in the cluster.",
        fix="`ray status` must list every node and GPU before `vllm serve`: start or fix the missing node "
            "(`vlmctl cluster status` / `vlmctl cluster verify`), or plan for the GPUs Ray has "
            "(`vlmctl plan MODEL --cluster cluster.yaml`).",
        sources=("gpustack/gpustack#5056", "vllm-project/vllm#1116", "vllm-project/vllm#3293",
                 "ray-project/ray#47792", "rllm-org/rllm#35"),
        stalls=True,
    ),
    Signature(
        id="ray-driver-no-gpu",
        title="vLLM's driver runs on a Ray node without a GPU in its placement group",
        subsystem="ray",
        patterns=(r"Ray does not allocate any GPUs on the driver node",
                  r"Current node has no GPU available\. current_node_resource=",
                  r"No CUDA GPUs are available.{0,3000}?(?:\bray::|Ray Serve|ray actor|RayWorker|serve run|kuberay|"
                  r"rayservice|\[Serve\]|placement_group\.bundle_specs)",
                  r"(?:\bray::|Ray Serve|ray actor|RayWorker|serve run|kuberay|rayservice|\[Serve\]|"
                  r"placement_group\.bundle_specs).{0,3000}?No CUDA GPUs are available"),
        supersedes=("no-gpu-visible",),
        cause="vLLM needs one of its workers on the node where `vllm serve` runs; that node (often a CPU-only "
              "head) has no GPU in the placement group.",
        fix="run `vllm serve` on a GPU node of the Ray cluster (the head should have GPUs; `vlmctl serve` runs it "
            "on the head the plan names).",
        sources=("vllm-project/vllm#3190", "vllm-project/vllm#6956"),
        specificity=3,
    ),
    Signature(
        id="ray-unique-ip",
        title="vLLM sees more IPs than Ray nodes",
        subsystem="ray",
        patterns=(r"Every node should have a unique IP address",),
        cause="on multi-NIC nodes vLLM's get_ip() returns the default-route address, which differs from the "
              "Ray node IP; VLLM_HOST_IP set on the driver is not propagated to the workers.",
        fix="set VLLM_HOST_IP on every node (before `ray start`) to the address given to "
            "`ray start --node-ip-address`; `vlmctl cluster up` does this.",
        sources=("vllm-project/vllm#43095", "ray-project/ray#63917"),
        specificity=3,
    ),
    Signature(
        id="ray-node-dead",
        title="A Ray worker node was marked dead",
        subsystem="ray",
        patterns=(r"has been marked dead because the detector has missed too many heartbeats",
                  r"mistakenly been marked as dead by the GCS"),
        cause="the raylet on a worker stopped answering health checks: it crashed (often host OOM), the node "
              "was overloaded, or the network between nodes is slow or flapping. The engine loses that stage.",
        fix="check the worker's `dmesg` for the OOM killer and `/tmp/ray/session_latest/logs/raylet.out`; "
            "keep the `ray start` terminal/container alive; start workers one at a time; then "
            "`vlmctl cluster status`.",
        sources=("ray-project/ray#45179", "vllm-project/vllm#19960", "ray-project/ray#54035"),
    ),
    Signature(
        id="ray-gcs-unreachable",
        title="Cannot reach the Ray head (GCS)",
        subsystem="ray",
        patterns=(r"Failed to connect to GCS", r"Unable to connect to GCS at", r"Could not find any running Ray "
                  r"instance", r"ConnectionError: ray client connection timeout"),
        cause="the node or driver cannot reach the head's GCS port (6379 by default): the head is not running, "
              "the address/port is wrong, or a firewall blocks it.",
        fix="check `ray status` on the head and `nc -zv HEAD 6379` from the node; use the address `ray start "
            "--head` printed (`vlmctl cluster status` shows it).",
        sources=("ray-project/ray docs: ray start",),
    ),
    Signature(
        id="ray-version-mismatch",
        title="Ray / Python versions differ between nodes",
        subsystem="versions",
        patterns=(r"Version mismatch: The cluster was started with:\s*Ray: (?P<cluster_ray>\S+)\s*(?:Ray location: "
                  r"\S+\s*)?Python: (?P<cluster_python>[\d.]+).{0,200}?This process on node (?P<node>\S+) was "
                  r"started with:\s*Ray: (?P<node_ray>\S+)\s*(?:Ray location: \S+\s*)?Python: (?P<node_python>[\d.]+)",
                  r"Version mismatch: The cluster was started with"),
        # ray/_private/utils.py:check_version_info raising, its detail lines cut (a `ray` CLI traceback above)
        when=((r"RuntimeError: Version mismatch\b", r"\bray\b", r"$^"),),
        cause="Ray refuses processes whose Ray or Python version differs from the head's.",
        fix="use one image (same Ray, Python, vLLM, torch) on every node; `vlmctl doctor` prints the versions "
            "to compare and `vlmctl cluster verify` checks them across nodes.",
        sources=("ray-project/ray#50511", "ray-project/ray#44063", "microsoft/ray-on-aml#32"),
        specificity=3,
    ),
)
