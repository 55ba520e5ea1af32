"""The cluster file: GPUs the catalog does not list, the model at model_path checked against the plan, the JSON
Schema (`vlmctl cluster schema`), and fixes that name things which exist."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from vlmctl.cli.main import main
from vlmctl.clusterspec import ClusterSpec, json_schema, load_cluster
from vlmctl.errors import ConfigError
from vlmctl.plan import make_plan

UNLISTED = """\
name: lab
nodes:
  - name: a
    address: 10.0.0.1
    gpu: rtx-3080
    gpu_count: 2
"""


def _write(tmp_path: Path, text: str, name: str = "cluster.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_an_unlisted_gpu_names_the_fields_the_cluster_file_accepts(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_cluster(_write(tmp_path, UNLISTED))
    assert "unknown GPU type 'rtx-3080'" in exc.value.message and "node 'a'" in exc.value.message
    node_fields = json_schema()["$defs"]["NodeSpec"]["properties"]
    named = set(re.findall(r"\b([a-z_]+):", exc.value.fix))
    assert {"total_gib", "compute_capability"} <= named <= set(node_fields)


@pytest.mark.parametrize("gpu", ["rtx-3080", "A6000", "L20", "H20", "B200", "RTX 5090"])
def test_an_unlisted_gpu_with_memory_and_compute_capability_is_planned(tmp_path, gpu):
    text = UNLISTED.replace("rtx-3080", gpu) + '    total_gib: 31.5\n    compute_capability: "8.6"\n'
    result = make_plan("Qwen/Qwen2.5-VL-3B-Instruct-AWQ", cluster=str(_write(tmp_path, text)))
    assert result.ok, result.findings
    gpu0 = result.plan.per_gpu[0]
    assert gpu0.total_gib == 31.5 and gpu0.gpu_type == re.sub(r"[^a-z0-9]+", "-", gpu.lower())
    with_bw = make_plan("Qwen/Qwen2.5-VL-3B-Instruct-AWQ",
                        cluster=str(_write(tmp_path, text + "    bandwidth_gbs: 2000\n", "bw.yaml")))
    assert with_bw.plan.decode_tokens_per_s_bound > result.plan.decode_tokens_per_s_bound  # bandwidth is read


def test_declared_values_override_the_catalog(tmp_path):
    text = UNLISTED.replace("rtx-3080", "rtx-2080-ti") + '    compute_capability: "8.0"\n'
    spec = load_cluster(_write(tmp_path, text))
    assert spec.nodes[0].gpu_type.compute_capability == (8, 0) and spec.nodes[0].gpu_type.total_gib == 10.76


@pytest.mark.parametrize("bad", ['compute_capability: "eight"', "total_gib: -3", "bandwidth_gbs: 0"])
def test_bad_declared_values_are_one_line_errors(tmp_path, capsys, bad):
    path = _write(tmp_path, UNLISTED + f"    {bad}\n")
    assert main(["plan", "Qwen/Qwen2.5-VL-3B-Instruct-AWQ", "--cluster", str(path)]) == 2
    err = capsys.readouterr().err
    assert bad.split(":")[0] in err and "fix:" in err and "Traceback" not in err


def test_gpus_flag_points_an_unlisted_gpu_at_the_cluster_file(capsys):
    assert main(["plan", "Qwen/Qwen2.5-VL-3B-Instruct-AWQ", "--gpus", "rtx-3080:2"]) == 2
    err = capsys.readouterr().err
    assert "Did you mean 'rtx-3090'?" in err and "cluster file" in err and "--cluster FILE" in err


def test_schema_command_validates_the_documented_example_and_rejects_unknown_keys(capsys, tmp_path):
    import jsonschema

    assert main(["cluster", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    import vlmctl.clusterspec as cs

    example = yaml.safe_load(re.search(r"Example::\n\n(.*?)\n\n", cs.__doc__, re.S).group(1))
    jsonschema.validate(example, schema)
    ClusterSpec.model_validate(example)
    bad = dict(example, nodes=[dict(example["nodes"][0], nics="eth0")])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_every_cluster_file_fix_names_a_command_that_exists(tmp_path, capsys):
    path = _write(tmp_path, "nodes: 3\n")
    assert main(["plan", "Qwen/Qwen2.5-VL-3B-Instruct-AWQ", "--cluster", str(path)]) == 2
    err = capsys.readouterr().err
    assert "vlmctl cluster schema" in err and "--help` shows an example" not in err
    assert main(["cluster", "schema"]) == 0


def _materialize(model: str, folder: Path) -> Path:
    assert main(["models", "materialize", model, str(folder)]) == 0
    return folder


def test_model_path_holding_another_model_is_refused(tmp_path, capsys):
    other = _materialize("Qwen/Qwen2.5-VL-72B-Instruct-AWQ", tmp_path / "m72")
    capsys.readouterr()
    cluster = _write(tmp_path, f"name: t\nmodel_path: {other}\nnodes:\n"
                               "  - {name: a, address: 10.0.0.1, gpu: rtx-2080-ti, gpu_count: 2}\n")
    result = make_plan("Qwen/Qwen2.5-VL-3B-Instruct-AWQ", cluster=str(cluster))
    assert not result.ok
    mismatch = [f for f in result.findings if f.id == "model-path-mismatch"]
    assert len(mismatch) == 1 and "80 layers" in mismatch[0].message and "36 layers" in mismatch[0].message
    assert main(["plan", "Qwen/Qwen2.5-VL-3B-Instruct-AWQ", "--cluster", str(cluster)]) == 3
    right = _materialize("Qwen/Qwen2.5-VL-3B-Instruct-AWQ", tmp_path / "m3")
    ok = make_plan("Qwen/Qwen2.5-VL-3B-Instruct-AWQ", cluster=str(_write(
        tmp_path, f"name: t\nmodel_path: {right}\nnodes:\n  - {{name: a, address: 10.0.0.1, gpu: rtx-2080-ti, gpu_count: 2}}\n",
        "ok.yaml")))
    assert ok.ok and not [f for f in ok.findings if f.id == "model-path-mismatch"]
    absent = make_plan("Qwen/Qwen2.5-VL-3B-Instruct-AWQ", cluster=str(_write(
        tmp_path, "name: t\nmodel_path: /nonexistent/m\nnodes:\n  - {name: a, address: 10.0.0.1, gpu: rtx-2080-ti}\n",
        "absent.yaml")))
    assert absent.ok  # not readable here: `cluster verify` checks it on each node
