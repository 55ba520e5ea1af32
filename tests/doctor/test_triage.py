"""Triage instead of "No known cause": subsystem, checklist and the command that gathers the missing evidence."""
from __future__ import annotations

import json
import subprocess
import sys

from vlmctl.doctor.explain import explain, predicted_label
from vlmctl.doctor.triage import PLAYBOOK, triage


def test_unmatched_nccl_log_is_triaged_to_the_network_with_nccl_debug():
    text = ("(RayWorkerWrapper pid=1) ERROR worker_base.py:1] Error executing method init_device.\n"
            "torch.distributed.DistBackendError: NCCL error in: ProcessGroupNCCL.cpp:1970, remote process exited "
            "or there was a network error\n")
    result = explain(text)
    assert not result.known and result.triage.subsystem == "network"
    assert any("NCCL_DEBUG=INFO" in c for c in result.triage.commands)
    assert any("vlmctl cluster verify" in c for c in result.triage.commands)
    assert "DistBackendError" in result.triage.evidence[0]
    assert predicted_label(result) == "triage:network"


def test_generic_symptom_still_gets_a_triage():
    result = explain("RuntimeError: NCCL error: unhandled system error (run with NCCL_DEBUG=INFO for details)")
    assert result.primary == "nccl-system-error" and result.triage.subsystem == "network"


def test_specific_cause_has_no_triage():
    result = explain("RuntimeError: Cannot re-initialize CUDA in forked subprocess. To use CUDA with multiprocessing, "
                     "you must use the 'spawn' start method")
    assert result.triage is None and result.primary == "cuda-fork"


def test_host_memory_and_ray_and_unknown():
    assert triage("worker exited: signal 9\nRAM usage 98%, swap full\n").subsystem == "host-memory"
    assert triage("ActorDiedError: The actor died unexpectedly\nraylet.out shows placement group pending\n"
                  ).subsystem == "ray"
    unknown = triage("all good\nnothing to see\n")
    assert unknown.subsystem == "unknown" and unknown.commands == list(PLAYBOOK["unknown"][1])


def test_every_subsystem_has_a_checklist_and_a_command():
    for subsystem, (checklist, commands) in PLAYBOOK.items():
        assert checklist and commands, subsystem


JSON_KEYS = {"schema_version", "known", "primary", "matches", "plan_change", "context", "suspicious_lines", "triage",
             "learned"}
MATCH_KEYS = {"id", "title", "subsystem", "finding", "evidence", "line", "values", "cause", "fix", "sources",
              "versions"}
TRIAGE_KEYS = {"subsystem", "scores", "evidence", "checklist", "commands"}


def _cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "vlmctl.cli.main", "doctor", "explain", *args], input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_json_schema_is_stable():
    known = _cli("-", "--json", stdin="ValueError: Bfloat16 is only supported on GPUs with compute capability of "
                 "at least 8.0. Your Tesla T4 GPU has compute capability 7.5.\n")
    data = json.loads(known.stdout)
    assert set(data) == JSON_KEYS and data["schema_version"] == 2
    assert set(data["matches"][0]) == MATCH_KEYS and data["triage"] is None
    assert set(data["matches"][0]["finding"]) == {"id", "severity", "message", "fix"}
    unknown = json.loads(_cli("-", "--json", stdin="KeyError: 'rope_scaling'\n").stdout)
    assert set(unknown) == JSON_KEYS and set(unknown["triage"]) == TRIAGE_KEYS and unknown["primary"] is None


def test_cli_reads_a_ray_log_folder_and_prints_the_triage(tmp_path):
    logs = tmp_path / "session_latest" / "logs"
    logs.mkdir(parents=True)
    (logs / "raylet.out").write_text("[2025-01-01 00:00:00,000 I 1 1] raylet started\n")
    (logs / "worker-abc.err").write_text(":job_id:01000000\nERROR: Gloo connectFullMesh failed with "
                                         "[../third_party/gloo/gloo/transport/tcp/pair.cc:144] no error\n")
    (logs / "notes.txt").write_text("Total number of attention heads (28) must be divisible by tensor parallel size "
                                    "(8)")  # not a log file: ignored
    proc = _cli(str(logs), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["primary"] == "gloo-connect-failed"
    text = _cli("-", stdin="torch.distributed.DistNetworkError: Connection reset by peer\n")
    assert "Triage: most likely the network" in " ".join(text.stdout.split())
    assert "NCCL_DEBUG=INFO" in text.stdout


def test_cli_empty_folder_is_a_one_line_error(tmp_path):
    proc = _cli(str(tmp_path))
    assert proc.returncode == 2 and "has no *.log" in proc.stderr and "Traceback" not in proc.stderr


def test_a_decisive_phrase_outweighs_the_words_around_it():
    # the kernel's OOM-kill line says "out of memory" too: host memory, not GPU memory
    kernel = ("kernel: Out of memory: Killed process 6154 (python) total-vm:18109076kB, anon-rss:14095848kB\n"
              "RuntimeError: Engine process failed to start, memory use 98%\n")
    assert triage(kernel).subsystem == "host-memory"
    # a version limit worded with "pipeline parallel" is a version limit
    pp = ("vllm serve X --pipeline-parallel-size 2 --tensor-parallel-size 4\n"
          "NotImplementedError: Pipeline parallelism is only supported for the following architectures: ['A']\n")
    assert triage(pp).subsystem == "versions"
    # without the phrase the same words stay with their keywords
    assert triage("vllm serve X --pipeline-parallel-size 2 --tensor-parallel-size 4\nValueError: bad layout\n"
                  ).subsystem == "parallelism"
