"""doctor's node checks on this machine (no GPU) and with NVML absent."""
from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from vlmctl.doctor import checks


def _nvml_works() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        return True
    except Exception:
        return False


@pytest.mark.skipif(_nvml_works(), reason="this machine has a working NVML; the no-GPU path needs a GPU-less box")
def test_no_gpu_machine_says_so_instead_of_failing():
    findings = checks.check_gpus()
    assert [f.id for f in findings] == ["no-gpu"]
    assert findings[0].severity == "info" and "NVML" in findings[0].message


def test_nvml_package_absent_is_a_finding_not_a_crash(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` raise ImportError
    gpus, driver, why_not = checks.nvml_gpus()
    assert gpus == [] and driver is None and "nvidia-ml-py" in why_not
    assert checks.check_gpus()[0].id == "no-gpu"


def test_arch_list_against_compute_capability():
    cu124 = ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"]
    assert checks.arch_supported((7, 5), cu124)
    assert not checks.arch_supported((12, 0), cu124)  # RTX 5090 on an old wheel: no kernel image
    assert checks.arch_supported((12, 0), cu124 + ["compute_90"])  # PTX JIT
    assert not checks.arch_supported((7, 5), ["sm_80", "sm_90a"])
    h100_torch = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]  # torch 2.11.0+cu130 on the GPU box
    assert checks.arch_supported((9, 0), h100_torch) and not checks.arch_supported((6, 1), h100_torch)


def test_attention_backend_choice_follows_compute_capability():
    assert checks.attention_backends((7, 5)) == ("TRITON_ATTN", "TORCH_SDPA")
    assert checks.attention_backends((7, 5), flashinfer=True) == ("FLASHINFER", "TORCH_SDPA")
    assert checks.attention_backends((8, 6)) == ("FLASH_ATTN", "FLASH_ATTN")


def test_port_in_use_is_reported():
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen(1)
        port = s.getsockname()[1]
        found = checks.check_ports({port: "test"})
    assert found[0].id == "ports-in-use" and str(port) in found[0].message
    assert checks.check_ports({port: "test"})[0].id == "ports"


def test_route_to_loopback_and_network_findings():
    nic, src = checks.route_to("127.0.0.1")
    assert nic == "lo" and src.startswith("127.")
    ids = [f.id for f in checks.check_network("127.0.0.1")]
    assert "nics" in ids and "head-route" in ids
    assert ("hostname" in ids) != ("hostname-loopback" in ids)


def test_shm_and_versions_on_this_machine():
    (shm,) = checks.check_shm()
    assert shm.id in {"shm", "shm-small", "shm-missing"}
    assert checks.versions()["python"].count(".") == 2


def test_cli_doctor_json_runs_here():
    proc = subprocess.run([sys.executable, "-m", "vlmctl.cli.main", "doctor", "--json", "--head", "127.0.0.1"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    ids = {f["id"] for f in json.loads(proc.stdout)["findings"]}
    assert {"versions", "nics", "head-route"} <= ids
    assert ids & {"no-gpu", "gpus"}
