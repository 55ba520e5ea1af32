"""NCCL / Gloo / torch.distributed failures: shared memory, sockets between nodes, custom all-reduce, P2P."""
from __future__ import annotations

from vlmctl.failures import plan_changes as pc
from vlmctl.failures.signature import Signature

_IFNAME_FIX = ("pin NCCL_SOCKET_IFNAME and GLOO_SOCKET_IFNAME on EVERY node to the NIC that routes to the other nodes "
               "(`vlmctl doctor --head HEAD_IP` prints it; `vlmctl cluster up` sets both), open the ports between "
               "the nodes (firewall, security group), then rerun with NCCL_DEBUG=INFO if it still fails")

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        id="gloo-loopback",
        title="Gloo bound to loopback (hostname resolves to 127.x or not at all)",
        subsystem="network",
        patterns=(
            r"Unable to resolve hostname to a \(local\) address\. Using the loopback address as fallback",
            # any 127.x peer address: Debian/Ubuntu map the hostname to 127.0.1.1 in /etc/hosts
            r"Gloo connectFullMesh failed.{0,200}?remote=\[127\.\d+\.\d+\.\d+\]",
            r"gloo/transport/tcp/\w+\.cc:\d+\].{0,80}?\[?127\.\d+\.\d+\.\d+\]?:\d+.{0,80}?Connection refused",
        ),
        cause="torch's Gloo resolves gethostname() to pick its bind address; on this node the name maps to "
              "127.x (or nothing), so ranks on other nodes dial their own loopback and connectFullMesh fails.",
        fix="set GLOO_SOCKET_IFNAME=<nic> and NCCL_SOCKET_IFNAME=<nic> on EVERY node before `ray start` "
            "(the NIC that routes to the head: `vlmctl doctor --head HEAD_IP`), or make the hostname resolve "
            "to the node's routable address in /etc/hosts; `vlmctl cluster up` sets both per node.",
        sources=("vllm-project/vllm#7074", "aws-samples/aws-do-eks#50", "gpustack/gpustack#2125"),
        supersedes=("gloo-connect-failed",),
        specificity=3,
    ),
    Signature(
        id="gloo-connect-failed",
        title="Gloo full-mesh connect failed between nodes",
        subsystem="network",
        patterns=(r"Gloo connectFullMesh failed",
                  # Gloo's TCP transport naming the peer it cannot reach
                  r"gloo/transport/tcp/\w+\.cc:\d+\].{0,160}?(?:Connection refused|No route to host|"
                  r"Connection timed out)"),
        cause="the CPU process group could not connect every rank: the wrong NIC picked on a multi-NIC host, a "
              "firewall between nodes, or GLOO_SOCKET_IFNAME differing from the NIC Ray registered.",
        fix=_IFNAME_FIX + ".",
        sources=("vllm-project/vllm#5094", "sgl-project/sglang#3226", "verl-project/verl#967"),
    ),
    Signature(
        id="nccl-shm-too-small",
        title="/dev/shm too small (or full) for NCCL's shared-memory transport",
        subsystem="network",
        patterns=(
            r"Error while creating shared memory segment",
            r"posix_fallocate failed\s*:?\s*No space left on device",
            r"failed to extend /dev/shm/nccl-\S+ to \d+ bytes",
            r"ncclShmOpen",
            r"unable to (?:allocate|create) shared memory",
            r"/dev/shm/nccl-\S+.{0,80}?(?:No space left on device|Bus error)",
            # torch's DataLoader / shared-memory tensors: same cause, same fix
            r"insufficient shared memory \(shm\)",
        ),
        # NCCL's bare "unhandled system error" inside a container that was not given a larger /dev/shm, on one
        # node: the cause the NCCL maintainers name first (NVIDIA/nccl#525) and the fix these threads confirmed.
        when=((r"unhandled system error|ncclSystemError|NCCL_ERROR_SYSTEM_ERROR",
               r"\b(?:docker|container|kubernetes|k8s|pod)\b",
               r"--shm-size|shm_size|shmSize|--ipc[= ]host|NCCL_SHM_DISABLE|nNodes [2-9]|nNodes \d\d|"
               r"No route to host|Connection refused"),),
        cause="NCCL puts its intra-node buffers in /dev/shm; Docker gives a container 64 MB by default (Kubernetes "
              "pods the same unless /dev/shm is mounted from memory), or stale nccl-* segments of crashed runs "
              "fill it.",
        fix="run the container with --ipc=host or --shm-size=16g (compose: `shm_size`, Kubernetes: an emptyDir "
            "with medium: Memory at /dev/shm; `vlmctl compose` writes it); remove stale /dev/shm/nccl-* files; "
            "NCCL_SHM_DISABLE=1 works around it at some speed cost. `vlmctl doctor` on the node shows the shm size.",
        sources=("NVIDIA/nccl#290", "NVIDIA/nccl#525", "NVIDIA/nccl#1518", "pytorch/ci-infra#490",
                 "vllm-project/vllm#1710", "xorbitsai/inference#2836"),
        supersedes=("nccl-system-error", "nccl-cuda-error"),
        specificity=3,
    ),
    Signature(
        id="nccl-no-route",
        title="NCCL cannot connect to a rank on another node (no route / refused / proxy connect)",
        subsystem="network",
        patterns=(
            r"socket(?:Poll|Start)?Connect:? (?:Connect to \S+ )?(?:returned|failed)[^.]{0,40}?(?:No route to host|"
            r"Connection refused|Connection timed out|Network is unreachable)",
            r"connect returned (?:No route to host|Connection refused|Connection timed out)",
            r"Proxy Call to rank \d+ failed \(Connect\)",
            r"NCCL WARN (?:Net|socket)\S* ?:? ?Connect to \S+ failed",
            r"Call to connect returned (?:Connection refused|No route to host)",
        ),
        cause="NCCL's bootstrap or proxy socket to another node is blocked or unroutable: a firewall between the "
              "nodes, NCCL picking a NIC (docker0, a VPN, IB without routes) the peer cannot reach, or the peer "
              "address being the wrong NIC's.",
        fix=_IFNAME_FIX + "; check `nc -zv PEER PORT` from each node.",
        sources=("sgl-project/sglang#3820", "hiyouga/LlamaFactory#8045", "vllm-project/vllm#798"),
        supersedes=("nccl-system-error", "nccl-internal-error"),
        specificity=3,
    ),
    Signature(
        id="nccl-no-interface",
        title="NCCL found no usable network interface (NCCL_SOCKET_IFNAME matches nothing)",
        subsystem="network",
        patterns=(r"Bootstrap : no socket interface found", r"NET/Socket : no interface found",
                  r"no socket interface found"),
        cause="NCCL_SOCKET_IFNAME names an interface this node does not have (NIC names differ between nodes) "
              "or excludes every one.",
        fix="set NCCL_SOCKET_IFNAME / GLOO_SOCKET_IFNAME per node to that node's NIC (`vlmctl doctor --head "
            "HEAD_IP` on each node; `vlmctl cluster up` computes it per node).",
        sources=("NVIDIA/nccl docs: NCCL_SOCKET_IFNAME",),
        supersedes=("nccl-system-error", "nccl-internal-error"),
        specificity=3,
    ),
    Signature(
        id="custom-allreduce",
        title="vLLM's custom all-reduce failed (CUDA IPC between GPUs)",
        subsystem="network",
        patterns=(
            r"custom_all_reduce\.cuh:\d+ '[^']+'",
            r"custom_all_reduce\S*.{0,3000}?(?:NCCL error|ncclSystemError|ncclUnhandledCudaError|invalid argument|"
            r"CUDA error)",
        ),
        cause="vLLM's custom all-reduce maps the peers' buffers over CUDA IPC; that fails on some topologies "
              "(PCIe without P2P, consumer Blackwell, containers without --ipc=host), drivers, and with NCCL "
              "2.18.x's IPC bug.",
        fix="serve with --disable-custom-all-reduce (NCCL all-reduce instead); with NCCL 2.18 upgrade to 2.19.3+; "
            "--enforce-eager also avoids it on some versions.",
        sources=("vllm-project/vllm#5613", "vllm-project/vllm#47751"),
        plan_change=pc.disable_custom_all_reduce,
        plan_change_doc="`disable_custom_all_reduce` ← true",
        supersedes=("nccl-system-error", "nccl-cuda-error", "nccl-internal-error"),
        specificity=3,
    ),
    Signature(
        id="nccl-p2p-unsupported",
        title="GPU peer-to-peer access not supported between these GPUs",
        subsystem="network",
        patterns=(r"peer access is not supported between these two devices", r"cudaErrorPeerAccessUnsupported",
                  r"P2P access is not supported", r"peer mapping resources exhausted"),
        cause="the GPUs cannot reach each other's memory directly (PCIe switch/IOMMU/ACS, virtualised GPUs, "
              "mixed GPU models), and NCCL or the custom all-reduce tried P2P.",
        fix="export NCCL_P2P_DISABLE=1 and serve with --disable-custom-all-reduce; check `nvidia-smi topo -m`.",
        sources=("NVIDIA/nccl docs: NCCL_P2P_DISABLE",),
        plan_change=pc.p2p_off,
        plan_change_doc="`env.NCCL_P2P_DISABLE` ← 1",
        supersedes=("nccl-system-error", "nccl-cuda-error"),
        specificity=3,
    ),
    Signature(
        id="nccl-watchdog-timeout",
        title="An NCCL collective never completed (watchdog timeout)",
        subsystem="network",
        patterns=(r"Watchdog caught collective operation timeout", r"ProcessGroupNCCL's watchdog got stuck",
                  r"Timeout at NCCL work: \d+"),
        cause="one rank stopped participating: it crashed or hung (look for an earlier error on another rank or "
              "node), the link between GPUs or nodes stalled, or P2P is broken so the first all-reduce never "
              "finishes (SeqNum=1).",
        fix="find the first error of the other ranks (every node's log, `ray logs`); rerun with NCCL_DEBUG=INFO; "
            "if the very first collective hangs try NCCL_P2P_DISABLE=1; across nodes pin NCCL_SOCKET_IFNAME "
            "(`vlmctl cluster verify`).",
        sources=("vllm-project/vllm#5484", "vllm-project/vllm#8978", "hiyouga/LlamaFactory#7396"),
        specificity=2,
    ),
    Signature(
        id="torch-store-timeout",
        title="torch.distributed's TCP store (MASTER_ADDR:PORT) unreachable, or a rank never joined it",
        subsystem="network",
        patterns=(
            # torch >= 2.2 (DistNetworkError, ms) and older releases (s)
            r"The client socket has timed out after \d+\s*m?s while trying to connect to \(?(?P<host>[\w.:-]+), "
            r"(?P<port>\d+)\)?",
            r"The client socket has failed to connect to any network address of \((?P<host2>[^,)]+), "
            r"(?P<port2>\d+)\)",
            r"The client socket has failed to connect to \S+ \(errno: \d+ - (?:Connection timed out|"
            r"Connection refused|No route to host)",
            r"connect\(\) timed out\. Original timeout was \d+ ms",
            # the store's own side: the other ranks never arrived (vLLM's DP / multi-node rendezvous too)
            r"Timed out after \d+ seconds waiting for clients\. (?P<joined>\d+)/(?P<expected>\d+) clients joined",
            r"Timed out initializing process group in store based barrier",
            r"DistStoreError: wait timeout after \d+ ?ms",
            r"RuntimeError: Socket Timeout",
        ),
        cause="a rank could not reach the rendezvous TCP store that rank 0 serves (vLLM's distributed_init_method "
              "/ MASTER_ADDR:MASTER_PORT): the address is one the other node cannot route to (a container or "
              "docker0 IP, the wrong NIC), a firewall blocks the port, or a rank crashed or hung before it joined "
              "(its own log has the first error).",
        fix="make the head's address the routable IP of the NIC the nodes share (VLLM_HOST_IP / --node-ip-address, "
            "host networking for containers), open the port range between nodes (`nc -zv HEAD PORT` from each "
            "node), and read every other rank's log for an earlier error; `vlmctl cluster verify` checks both.",
        sources=("vllm-project/vllm#19670", "zai-org/GLM-4#677", "vllm-project/vllm#15744",
                 "pytorch/pytorch: torch/csrc/distributed/c10d/socket.cpp, distributed_c10d.py:_store_based_barrier"),
        specificity=2,
    ),
    Signature(
        id="nccl-system-error",
        title="NCCL 'unhandled system error' (a system call failed inside NCCL)",
        subsystem="network",
        patterns=(r"unhandled system error", r"ncclSystemError"),
        cause="a system call NCCL made failed: most often /dev/shm too small, a socket that cannot connect "
              "between nodes, or a container without --ipc=host; the line after 'Last error:' (or NCCL_DEBUG=INFO) "
              "names which.",
        fix="rerun with NCCL_DEBUG=INFO and read the WARN line; give containers --ipc=host / --shm-size; pin "
            "NCCL_SOCKET_IFNAME / GLOO_SOCKET_IFNAME per node; `vlmctl cluster verify` checks nodes and NICs.",
        sources=("vllm-project/vllm#6574", "vllm-project/vllm#4383", "xorbitsai/inference#3786"),
        specificity=1,
    ),
    Signature(
        id="nccl-cuda-error",
        title="NCCL 'unhandled cuda error' (a CUDA call failed inside NCCL)",
        subsystem="network",
        patterns=(r"unhandled cuda error", r"ncclUnhandledCudaError"),
        unless=(r"Cuda failure 'out of memory'",),
        cause="a CUDA call inside NCCL failed: P2P/IPC between the GPUs, a driver/NCCL mismatch, or vLLM's custom "
              "all-reduce; 'Last error:' names the call.",
        fix="rerun with NCCL_DEBUG=INFO; try --disable-custom-all-reduce and NCCL_P2P_DISABLE=1; keep NCCL, "
            "torch and the driver versions consistent on every node (`vlmctl doctor`).",
        sources=("NVIDIA/nccl docs: NCCL_DEBUG",),
        specificity=1,
    ),
    Signature(
        id="nccl-internal-error",
        title="NCCL internal error",
        subsystem="network",
        patterns=(r"NCCL error: internal error", r"ncclInternalError", r"internal error - please report this issue "
                  r"to the NCCL developers"),
        cause="NCCL hit an internal check, usually a transport it could not set up (sockets between nodes, IB, "
              "shared memory) or mismatched NCCL versions between ranks.",
        fix="rerun with NCCL_DEBUG=INFO; same NCCL on every node (`vlmctl doctor`); pin NCCL_SOCKET_IFNAME; try "
            "NCCL_IB_DISABLE=1 / NCCL_P2P_DISABLE=1 to isolate the transport.",
        sources=("vllm-project/vllm#8691",),
        specificity=1,
    ),
)
