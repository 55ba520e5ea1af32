"""Every output renders the one launch spec: for each scenario, what `plan --emit commands` runs (executed in
bash with `ray`, `vllm` and `ip` recording what they see), `plan --emit env`, `plan --emit vllm-config`
(executed too), `serve --dry-run --json`, `compose` and `cluster env` (interfaces faked) must agree on every
node's GPUs and environment and on the head's `vllm serve` argv and environment."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from vlmctl.cli.main import main
from vlmctl.launch import NON_CARRY_OVER

HEAD_IP, WORKER_IP = "10.9.0.1", "10.9.0.2"
#: The scenarios' layouts (the field report spans both nodes) are vLLM 0.26's plans.
PLAN_VLLM = ("--vllm-version", "0.26.0")
#: name -> (model, cluster file or --gpus, {node: (interface, address) on that machine})
SCENARIOS = {
    "7b-1xh100-gpus": ("Qwen/Qwen2.5-VL-7B-Instruct", "h100-80gb:1", {"node0": ("eth0", HEAD_IP)}),
    "3b-awq-2x2-gpus": ("Qwen/Qwen2.5-VL-3B-Instruct-AWQ", "rtx-2080-ti:2,rtx-2080-ti:2",
                        {"node0": ("eth7", HEAD_IP), "node1": ("eth9", WORKER_IP)}),
    "72b-awq-field-report": ("Qwen/Qwen2.5-VL-72B-Instruct-AWQ", f"""\
name: lab
model_path: /models/Qwen2.5-VL-72B-Instruct-AWQ
nodes:
  - {{name: titan, address: {HEAD_IP}, gpu: titan-rtx, gpu_ids: [0, 3, 4], nic: enp134s0f0}}
  - {{name: ti, address: {WORKER_IP}, gpu: rtx-2080-ti, gpu_count: 8}}
""", {"titan": ("enp134s0f0", HEAD_IP), "ti": ("eth1", WORKER_IP)}),
    "3b-awq-no-nic": ("Qwen/Qwen2.5-VL-3B-Instruct-AWQ", f"""\
name: duo
nodes:
  - {{name: a, address: {HEAD_IP}, gpu: rtx-2080-ti, gpu_ids: [1, 2]}}
  - {{name: b, address: {WORKER_IP}, gpu: rtx-2080-ti, gpu_count: 2}}
""", {"a": ("enp5s0", HEAD_IP), "b": ("eth1", WORKER_IP)}),
    "7b-one-node-cluster": ("Qwen/Qwen2.5-VL-7B-Instruct", f"""\
name: solo
nodes:
  - {{name: box, address: {HEAD_IP}, gpu: a100-80gb, gpu_ids: [2, 3]}}
""", {"box": ("eth0", HEAD_IP)}),
}

#: Stand-ins that record argv and environment as JSON lines, and an `ip` that answers like iproute2 does.
RECORDERS = """
record() { python3 -c 'import json,os,sys; print(json.dumps({"cmd": sys.argv[1], "argv": sys.argv[2:], "env": dict(os.environ)}))' "$@"; }
ray() { record ray "$@"; }
vllm() { record vllm "$@"; }
ip() {
  case "$*" in
    *"addr show to"*) echo "2: $FAKE_NIC    inet $FAKE_IP/24 brd 10.9.0.255 scope global $FAKE_NIC";;
    *"route get"*) echo "$HEAD_IP via 10.9.0.254 dev $FAKE_NIC src $FAKE_IP uid 0 \\    cache";;
  esac
}
"""


#: The field report's two-node pipeline, pinned: the planner itself now runs the 72B on the 2080 Ti node alone.
PINNED = {"72b-awq-field-report": ("-tp", "2", "-pp", "5")}


def _cluster_arg(tmp_path: Path, name: str) -> list[str]:
    hw = SCENARIOS[name][1]
    if ":" in hw.splitlines()[0] and "\n" not in hw:
        return ["--gpus", hw]
    path = tmp_path / "cluster.yaml"
    path.write_text(hw)
    return ["--cluster", str(path)]


def _cli(capsys, *args: str) -> str:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def _blocks(text: str) -> dict[str, str]:
    out, name = {}, None
    for line in text.splitlines():
        if line.startswith("# node "):
            name = line.split()[2].rstrip(",:")
            out[name] = ""
        elif name:
            out[name] += line + "\n"
    return out


def _run_shell(script: str, nic: str, ip: str, state: Path) -> list[dict]:
    script = script.replace("/tmp/vlmctl/", f"{state}/")
    env = {"PATH": "/usr/bin:/bin", "FAKE_NIC": nic, "FAKE_IP": ip, "HOME": str(state)}
    if "HEAD_IP:?" in script:
        env["HEAD_IP"] = HEAD_IP
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", RECORDERS + script], capture_output=True, text=True,
                          env=env, timeout=60, cwd=state)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


_SHELL_NOISE = {"PWD", "SHLVL", "_", "OLDPWD", "PATH", "FAKE_NIC", "FAKE_IP", "HOME", "HEAD_IP", "LC_CTYPE"}


def _env(rec: dict) -> dict[str, str]:
    return {k: v for k, v in rec["env"].items() if k not in _SHELL_NOISE}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_output_renders_the_same_launch(name, tmp_path, capsys, monkeypatch):
    model, _, machines = SCENARIOS[name]
    hw = _cluster_arg(tmp_path, name)
    plan_path = tmp_path / "plan.json"
    _cli(capsys, "plan", model, *hw, *PLAN_VLLM, *PINNED.get(name, ()), "-o", str(plan_path))
    plan = json.loads(plan_path.read_text())["plan"]
    placed = {n["name"]: n["gpu_ids"] for n in plan["nodes"]}
    multi = len(placed) > 1
    head = plan["nodes"][0]["name"]
    state = tmp_path / "state"
    state.mkdir()

    # 1. The shell of `plan --emit commands`, run node by node.
    blocks = _blocks(_cli(capsys, "plan", model, *hw, *PLAN_VLLM, *PINNED.get(name, ()), "--emit", "commands"))
    assert list(blocks) == list(placed)
    ray_env, driver = {}, None
    for node, block in blocks.items():
        nic, ip = machines[node]
        records = _run_shell(block, nic, ip, state)
        rays = [r for r in records if r["cmd"] == "ray"]
        assert len(rays) == (1 if multi else 0)
        if multi:
            env = _env(rays[0])
            ray_env[node] = env
            assert env["CUDA_VISIBLE_DEVICES"] == ",".join(map(str, placed[node]))
            assert f"--num-gpus={len(placed[node])}" in rays[0]["argv"]
            assert env["GLOO_SOCKET_IFNAME"] == nic and env["NCCL_SOCKET_IFNAME"] == f"={nic}"
            assert env["VLLM_HOST_IP"] == ip and f"--node-ip-address={ip}" in rays[0]["argv"]
            carry = Path(env["VLLM_CONFIG_ROOT"], "ray_non_carry_over_env_vars.json")
            assert set(json.loads(carry.read_text())) == set(NON_CARRY_OVER)
        vllms = [r for r in records if r["cmd"] == "vllm"]
        assert len(vllms) == (1 if node == head else 0)
        if vllms:
            driver = vllms[0]
    assert driver is not None
    driver_env = _env(driver)
    assert not {"GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME"} & set(driver_env)  # copied onto every worker otherwise
    if multi:
        assert driver_env["RAY_ADDRESS"] == f"{HEAD_IP}:6379" and driver_env["VLLM_HOST_IP"] == HEAD_IP
        assert driver_env["VLLM_CONFIG_ROOT"] == ray_env[head]["VLLM_CONFIG_ROOT"]

    # 2. `plan --emit env` gives each node what its `ray start` saw.
    if multi:
        for node, block in _blocks(_cli(capsys, "plan", model, *hw, *PLAN_VLLM, *PINNED.get(name, ()), "--emit", "env")).items():
            nic, ip = machines[node]
            shown = _env(_run_shell(block + "record env\n", nic, ip, state)[0])
            assert shown == ray_env[node]

    # 3. `serve --dry-run --json`: the same argv; the same env (with --cluster, this machine is the head).
    monkeypatch.setenv("VLMCTL_STATE_ROOT", str(state))
    from vlmctl.cluster import env as cenv
    from vlmctl.cluster.env import Interface

    head_nic, head_ip = machines[head]
    monkeypatch.setattr(cenv, "interfaces", lambda: {"lo": Interface(name="lo", up=True, addresses=["127.0.0.1"]),
                                                     head_nic: Interface(name=head_nic, up=True, addresses=[head_ip])})
    cluster_flag = hw if hw[0] == "--cluster" else []
    dry = json.loads(_cli(capsys, "serve", "--plan", str(plan_path), *cluster_flag, "--dry-run", "--json"))
    assert dry["argv"] == ["vllm", *driver["argv"]]
    if cluster_flag or not multi:
        assert dry["env"] == driver_env
    else:  # no cluster file: the head's address is the user's to give
        assert dry["env"]["RAY_ADDRESS"] == "$HEAD_IP:6379"
        assert {k: v.replace("$HEAD_IP", HEAD_IP) for k, v in dry["env"].items()} == driver_env

    # 4. `plan --emit vllm-config`: the YAML and env file start the same engine.
    config = _cli(capsys, "plan", model, *hw, *PLAN_VLLM, *PINNED.get(name, ()), "--emit", "vllm-config")
    rec = _run_shell(config, head_nic, head_ip, state)[-1]
    written = yaml.safe_load((state / "vllm.yaml").read_text())
    assert rec["argv"][:3] == driver["argv"][:2] + ["--config"]
    assert _flags_from_yaml(written) == _flags(driver["argv"][2:])
    assert _env(rec) == driver_env

    # 5. `compose` and 6. `cluster env` (only with a cluster file).
    if not cluster_flag:
        return
    out = tmp_path / "compose"
    _cli(capsys, "compose", *cluster_flag, "--plan", str(plan_path), "-o", str(out))
    assert sorted(p.name for p in out.glob("docker-compose.*.yml")) == sorted(f"docker-compose.{n}.yml" for n in placed)
    for node, ids in placed.items():
        svc = yaml.safe_load((out / f"docker-compose.{node}.yml").read_text())["services"]["ray"]
        assert svc["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] == [str(i) for i in ids]
        assert svc["environment"]["CUDA_VISIBLE_DEVICES"] == ",".join(str(i) for i in range(len(ids)))
        if multi:
            same = {k: v for k, v in ray_env[node].items() if k not in ("CUDA_VISIBLE_DEVICES", "VLLM_CONFIG_ROOT", "RAY_AUTH_TOKEN_PATH",
                                                                         "VLMCTL_STATE_DIR", "GLOO_SOCKET_IFNAME",
                                                                         "NCCL_SOCKET_IFNAME", "VLLM_HOST_IP")}
            assert {k: svc["environment"][k] for k in same} == same
        assert svc["environment"].get("VLLM_HOST_IP") in (None, machines[node][1])
        ce = json.loads(_cli(capsys, "cluster", "env", *cluster_flag, "--node", node, "--plan", str(plan_path),
                             "--json")) if node == head else None
        if ce is not None and multi:
            assert ce["env"] == ray_env[node]


def _flags(argv: list[str]) -> dict[str, str]:
    out, i = {}, 0
    while i < len(argv):
        if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            out[argv[i]] = argv[i + 1]
            i += 2
        else:
            out[argv[i]] = "true"
            i += 1
    return out


def _flags_from_yaml(data: dict) -> dict[str, str]:
    out = {}
    for key, value in data.items():
        if value is True:
            out[f"--{key}"] = "true"
        elif isinstance(value, dict):
            out[f"--{key}"] = json.dumps(value, separators=(",", ":"), sort_keys=True)
        else:
            out[f"--{key}"] = f"{value:g}" if isinstance(value, float) else str(value)
    return out
