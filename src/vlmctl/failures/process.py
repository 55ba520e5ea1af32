"""Process start-up failures: multiprocessing start method, visible GPUs, ports."""
from __future__ import annotations

from vlmctl.failures import plan_changes as pc
from vlmctl.failures.signature import Signature

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        id="cuda-fork",
        title="CUDA initialised before vLLM forked its workers",
        subsystem="process",
        patterns=(r"Cannot re-initialize CUDA in forked subprocess",),
        cause="something called torch.cuda before vLLM forked its worker processes; CUDA cannot be used "
              "in a forked child.",
        fix="export VLLM_WORKER_MULTIPROC_METHOD=spawn (and guard scripts with `if __name__ == '__main__':`).",
        sources=("vllm-project/vllm#8937", "vllm-project/vllm#7151", "lm-sys/FastChat#3507"),
        plan_change=pc.spawn,
        plan_change_doc="`env.VLLM_WORKER_MULTIPROC_METHOD` ← spawn",
        specificity=3,
    ),
    Signature(
        id="no-gpu-visible",
        title="No GPU visible to the process",
        subsystem="process",
        patterns=(r"No CUDA GPUs are available", r"Found no NVIDIA driver on your system",
                  r"Failed to infer device type", r"CUDA_VISIBLE_DEVICES.{0,40}is set to an empty",
                  r"NVML_ERROR_LIBRARY_NOT_FOUND|Failed to initialize NVML",
                  r"CUDA driver initialization failed, you might not have a CUDA gpu"),
        cause="the process sees no GPU: the container was started without --gpus / the NVIDIA runtime, "
              "CUDA_VISIBLE_DEVICES is empty or wrong, or the driver is not loaded.",
        fix="start containers with --gpus all (compose: deploy.resources.reservations.devices; `vlmctl compose` "
            "writes it) and check `nvidia-smi` inside; `vlmctl doctor` on the node lists the GPUs it sees.",
        sources=("vllm-project/vllm docs: docker",),
        specificity=3,
    ),
    Signature(
        id="port-in-use",
        title="A port the engine or Ray needs is taken",
        subsystem="process",
        patterns=(r"\[Errno 98\] (?:error while attempting to bind on address|Address already in use)",
                  r"address already in use", r"EADDRINUSE", r"ZMQError: Address already in use",
                  r"[Pp]ort \d+ (?:is )?already in use"),
        cause="an earlier engine / Ray head still listens on the port (8000 for the API, 6379 for the GCS), or "
              "another service uses it.",
        fix="stop the old process (`ss -ltnp` / `lsof -i :PORT`) or choose another --port; `vlmctl doctor` "
            "checks the ports vlmctl uses.",
        sources=("vllm-project/vllm docs: serve --port", "vllm-project/vllm#7196", "om-ai-lab/VLM-R1#289"),
        specificity=3,
    ),
)
