import pytest

from vlmctl.clusterspec import cluster_from_gpus, load_cluster
from vlmctl.errors import ConfigError

GOOD = """
name: lab
model_path: /models/Qwen2.5-VL-72B-Instruct
nodes:
  - name: gpu-a
    address: 192.168.1.10
    gpu: RTX 2080 Ti
    gpu_ids: [0, 1, 2, 3]
    nic: enp134s0f0
  - name: gpu-b
    address: 192.168.1.11
    gpu: titan-rtx
    gpu_count: 2
    total_gib: 23.5
"""


def load(tmp_path, text):
    p = tmp_path / "cluster.yaml"
    p.write_text(text)
    return load_cluster(p)


def test_good_file(tmp_path):
    c = load(tmp_path, GOOD)
    assert c.head_node.name == "gpu-a"
    assert c.nodes[0].ids == [0, 1, 2, 3] and c.nodes[1].ids == [0, 1]
    assert c.nodes[1].gpu_total_gib == 23.5 and c.nodes[0].gpu_type.id == "rtx-2080-ti"
    assert c.model_path_for(c.nodes[1]) == "/models/Qwen2.5-VL-72B-Instruct"


@pytest.mark.parametrize("text,match", [
    ("nodes: [", "not valid YAML at line"),
    ("- a\n- b\n", "must be a mapping"),
    ("nodes:\n  - name: a\n    gpu: t4\n    gpuids: [0]\n", "unknown key 'nodes.0.gpuids'. Did you mean 'gpu_ids'"),
    ("nodse: []\n", "unknown key 'nodse'. Did you mean 'nodes'"),
    ("nodes:\n  - name: a\n    gpu: rtx-2080\n", "Did you mean 'rtx-2080-ti'"),
    ("nodes:\n  - name: a\n    gpu: t4\n    gpu_ids: [0, 1]\n    gpu_count: 3\n",
     r"gpu_count \(3\) and gpu_ids \(\[0, 1\], 2 GPUs\) disagree"),
    ("nodes:\n  - name: a\n    gpu: t4\n    gpu_count: 0\n", "gpu_count: Input should be greater than or equal to 1"),
    ("nodes:\n  - {name: a, gpu: t4}\n  - {name: a, gpu: t4}\n", "appears twice"),
    ("nodes:\n  - {name: a, gpu: t4, address: 10.0.0.1}\n  - {name: b, gpu: t4, address: 10.0.0.1}\n", "given to two nodes"),
    ("head: c\nnodes:\n  - {name: a, gpu: t4}\n", "head 'c' is not one of the nodes"),
    ("nodes: []\n", "nodes: List should have at least 1 item"),
])
def test_bad_files_one_line_errors(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match) as exc:
        load(tmp_path, text)
    assert "\n" not in exc.value.message


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read cluster file"):
        load_cluster(tmp_path / "none.yaml")


def test_gpus_spec():
    c = cluster_from_gpus("rtx-2080-ti:8, a100-80gb")
    assert [n.count for n in c.nodes] == [8, 1]
    for bad, match in [("t4:x", "not a whole number"), ("t4:0", "between 1 and 64"), ("t4,,t4", "empty entry"),
                       ("h1000:2", "unknown GPU type")]:
        with pytest.raises(ConfigError, match=match):
            cluster_from_gpus(bad)


NODE = "nodes:\n  - name: a\n    address: 10.0.0.1\n    gpu: t4\n"


@pytest.mark.parametrize("text, match", [
    ("name: lab\nname: other\n" + NODE, "key 'name' appears twice in one mapping (lines 1 and 2)"),
    ("nodes:\n  - name: a\n    gpu: t4\n    gpu: a100-80gb\n", "key 'gpu' appears twice"),
    ("ports: {ray: 8265}\n" + NODE, "ports.ray and ports.dashboard are both 8265"),
    ("ports: {api: 6379}\n" + NODE, "ports.ray and ports.api are both 6379"),
    ("ports: {ray: 70000}\n" + NODE, "ports.ray"),
    ("nodes:\n  - name: a\n    gpu: t4\n    gpu_ids: [99]\n", "at most 64 GPUs"),
    ("name: ../../x\n" + NODE, "cluster name '../../x' becomes a folder name"),
    ("name: ..\n" + NODE, "becomes a folder name"),
    ("name: a/b\n" + NODE, "becomes a folder name"),
    ("nodes:\n  - name: ../a\n    gpu: t4\n", "node name '../a'"),
    ("nodes:\n  - name: a\n    gpu: t4\n    reserved_gib: .inf\n", "reserved_gib"),
    ("nodes:\n  - name: a\n    gpu: t4\n    total_gib: .nan\n", "total_gib"),
])
def test_strict_parsing(tmp_path, text, match):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    assert match in info.value.message and "\n" not in info.value.message


def test_invalid_utf8_and_a_folder_are_one_line(tmp_path):
    p = tmp_path / "cluster.yaml"
    p.write_bytes(b"name: lab\n# caf\xe9\n" + NODE.encode())
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 0xe9 on line 2\)"):
        load_cluster(p)
    with pytest.raises(ConfigError, match="is a directory"):
        load_cluster(tmp_path)


hypothesis = pytest.importorskip("hypothesis", reason="needs the test extra")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=150, deadline=None)
@given(name=st.text(max_size=20), ray=st.integers(-5, 70000), dashboard=st.integers(-5, 70000))
def test_any_name_and_ports_load_safely_or_fail_with_one_line(tmp_path_factory, name, ray, dashboard):
    import json

    text = f"name: {json.dumps(name)}\nports: {{ray: {ray}, dashboard: {dashboard}}}\n" + NODE
    p = tmp_path_factory.mktemp("c") / "cluster.yaml"
    p.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        spec = load_cluster(p)
    except ConfigError as exc:
        assert "\n" not in exc.message
        return
    assert "/" not in spec.name and spec.name not in (".", "..") and spec.ports.ray != spec.ports.dashboard
