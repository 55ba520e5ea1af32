"""Text renderings of a LaunchSpec: the per-node shell (`plan --emit commands|env`) and vLLM's config file
plus an env file (`plan --emit vllm-config`). Pure string building; nothing here computes a value.

Values only a node knows (its NIC, its address) become shell variables: ``$NIC`` and ``$NODE_IP`` are set
from ``ip`` at the top of that node's block (iproute2), ``$HEAD_IP`` from the cluster file or, when it has no
address, from the user (the block stops with a message when it is unset).
"""
from __future__ import annotations

import shlex

import yaml

from vlmctl.launch.spec import HEAD_IP_GUARD, NIC_VARS, LaunchSpec, NodeLaunch, argv_lines, quote, vllm_settings
from vlmctl.plan.schema import Plan


def _join(argv: list[str]) -> str:
    return " ".join(quote(a) for a in argv)


def _network_lines(spec: LaunchSpec, node: NodeLaunch) -> list[str]:
    lines = []
    if spec.multi_node:
        if spec.head_address:
            lines.append(f"HEAD_IP={shlex.quote(spec.head_address)}")
        else:
            lines.append(HEAD_IP_GUARD)
    if node.role == "head" and not node.address and spec.multi_node:
        lines.append('NODE_IP="$HEAD_IP"')
    elif node.address:
        lines.append(f"NODE_IP={shlex.quote(node.address)}")
    elif spec.multi_node:
        lines.append("NODE_IP=$(ip -o -4 route get \"$HEAD_IP\" | sed -n 's/.* src \\([0-9.]*\\).*/\\1/p')"
                     "  # the source address of the route to the head")
    if not spec.multi_node:
        return lines
    if node.nic:
        lines.append(f"NIC={shlex.quote(node.nic)}")
    elif node.role == "head" or node.address:
        lines.append("NIC=$(ip -o -4 addr show to \"$NODE_IP\" | awk '{print $2; exit}')  # the interface holding NODE_IP")
    else:
        lines.append("NIC=$(ip -o -4 route get \"$HEAD_IP\" | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p')"
                     "  # the interface that routes to the head")
    return lines


def node_env(spec: LaunchSpec, node: NodeLaunch) -> dict[str, str]:
    """The node's environment with placeholders where the node fills in a value."""
    if not spec.multi_node:
        return spec.driver_env()
    return node.env_with(nic=node.nic or "$NIC", address=node.address or "$NODE_IP")


def env_lines(spec: LaunchSpec, node: NodeLaunch) -> list[str]:
    """``NIC=…``/``NODE_IP=…`` where needed, then ``export`` lines (`plan --emit env`)."""
    return _network_lines(spec, node) + [f"export {k}={quote(v)}" for k, v in node_env(spec, node).items()]


def _file_lines(node: NodeLaunch) -> list[str]:
    lines = []
    for path, content in node.files.items():
        folder = path.rsplit("/", 1)[0]
        lines += [f"mkdir -p {quote(folder)}", f"cat > {quote(path)} <<'EOF'", content.rstrip("\n"), "EOF"]
    return lines


#: Ray token auth: the head makes the token once (mode 600); a worker needs the head's copy.
TOKEN_HEAD = ('[ -s "$RAY_AUTH_TOKEN_PATH" ] || (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d \' \\n\' '
              '> "$RAY_AUTH_TOKEN_PATH")  # Ray\'s auth token: copy this file to every worker')
TOKEN_WORKER = ('[ -s "$RAY_AUTH_TOKEN_PATH" ] || { echo "copy the head\'s Ray token to $RAY_AUTH_TOKEN_PATH '
                '(scp, mode 600) first" >&2; exit 1; }')


def node_commands(spec: LaunchSpec, node: NodeLaunch, *, api_key_env: bool = False) -> list[str]:
    """Everything to run on ``node``, in order: env, files, ``ray start``, and on the head ``vllm serve``."""
    lines = env_lines(spec, node)
    if spec.multi_node:
        lines += _file_lines(node)
        if node.env.get("RAY_AUTH_TOKEN_PATH"):
            lines.append(TOKEN_HEAD if node.role == "head" else TOKEN_WORKER)
        lines.append(_join(node.ray_start(nic=node.nic or "$NIC", address=node.address or "$NODE_IP",
                                          head_address=spec.head_address or "$HEAD_IP")))
    if node.role == "head" and spec.vllm_argv:
        if spec.multi_node:
            here = node_env(spec, node)
            driver = spec.driver_env(address=node.address or "$NODE_IP", head_address=spec.head_address or "$HEAD_IP")
            lines.append(f"unset {' '.join(NIC_VARS)}  # vllm serve copies its environment onto every Ray worker")
            lines += [f"export {k}={quote(v)}" for k, v in driver.items() if here.get(k) != v]
        lines.append(argv_lines(spec.vllm_argv))
    return lines


def commands_text(spec: LaunchSpec) -> str:
    """`plan --emit commands`: one block per node, the head first."""
    return _blocks(spec, node_commands)


def env_text(spec: LaunchSpec) -> str:
    """`plan --emit env`: each node's environment."""
    return _blocks(spec, env_lines)


def _blocks(spec: LaunchSpec, render) -> str:
    out = []
    for node in sorted(spec.nodes, key=lambda n: n.role != "head"):
        where = f" ({node.address})" if node.address else ""
        role = f", {node.role}" if spec.multi_node else ""
        out.append(f"# node {node.name}{where}{role}: GPUs {','.join(map(str, node.gpu_ids))}")
        out += render(spec, node)
        out.append("")
    return "\n".join(out)


def vllm_config_yaml(spec: LaunchSpec, plan: Plan) -> str:
    """vLLM's ``--config`` YAML: flag names without ``--`` as keys (``vllm/utils/argparse_utils.py``
    ``FlexibleArgumentParser.load_config_file`` turns each into ``--key value``, dicts into JSON)."""
    data: dict[str, object] = {"served-model-name": plan.served_model_name, "host": spec.serve_host,
                               "port": spec.serve_port}
    for field, value in vllm_settings(plan):
        data[field.replace("_", "-")] = value
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def vllm_config_text(spec: LaunchSpec, plan: Plan) -> str:
    """`plan --emit vllm-config`: shell that writes ``vllm.yaml`` and ``vllm.env`` on the head, and the start line."""
    head = spec.head_node
    env = spec.driver_env(address=head.address or "$NODE_IP", head_address=spec.head_address or "$HEAD_IP")
    env_file = "\n".join(f"{k}={quote(v)}" for k, v in env.items())
    lines = [f"# on the head node {head.name}: vLLM's config file and the environment of `vllm serve`"]
    if spec.multi_node:
        lines.append("# (start Ray on every node first: vlmctl plan … --emit commands, or vlmctl cluster up / join)")
    lines += ["cat > vllm.yaml <<'EOF'", vllm_config_yaml(spec, plan).rstrip("\n"), "EOF",
              "cat > vllm.env <<'EOF'", env_file, "EOF"]
    if spec.multi_node:
        lines += _network_lines(spec, head)
    lines.append(f"set -a; . ./vllm.env; set +a; {_join(spec.vllm_argv[:3])} --config vllm.yaml")
    return "\n".join(lines) + "\n"
