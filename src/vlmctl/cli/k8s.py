"""`vlmctl k8s`: KubeRay manifests from a plan and the cluster file."""
from __future__ import annotations

import click

from vlmctl.cli._output import console, next_steps


@click.command("k8s")
@click.option("--plan", "plan_file", required=True, metavar="FILE", help="A plan from `vlmctl plan --cluster … -o`.")
@click.option("--cluster", "cluster_file", default="cluster.yaml", show_default=True, metavar="FILE",
              help="The cluster file the plan was made for (names, GPUs per node, API port).")
@click.option("--image", default=None, metavar="IMAGE", help="Container image with vLLM and vlmctl (same on every pod).")
@click.option("--pod-nic", default="eth0", show_default=True, metavar="NAME",
              help="The pods' network interface (NCCL_SOCKET_IFNAME / GLOO_SOCKET_IFNAME).")
@click.option("-o", "--out", "out_dir", default="k8s", show_default=True, metavar="DIR", help="Folder to write into.")
def cli(plan_file: str, cluster_file: str, image: str | None, pod_nic: str, out_dir: str) -> None:
    """Write a KubeRay RayCluster: a head running `vllm serve` and one worker group per GPU type.

    Each pod gets its node's GPUs from the plan, the plan's vLLM environment, /dev/shm in memory and
    the model folder at the same path; node selectors and tolerations are commented placeholders.

    \b
    Examples:
      vlmctl k8s --plan plan.json --cluster cluster.yaml -o k8s/
      vlmctl k8s --plan plan.json --cluster cluster.yaml --image registry.lab/vlmctl-vllm:0.26 --pod-nic net1
    """
    from vlmctl.cluster.kuberay import DEFAULT_IMAGE, k8s_name, write_k8s
    from vlmctl.clusterspec import load_cluster
    from vlmctl.errors import ConfigError
    from vlmctl.plan.files import read_plan

    if not pod_nic or not pod_nic.replace("-", "").replace(".", "").replace("_", "").isalnum() or len(pod_nic) > 15:
        raise ConfigError(f"--pod-nic '{pod_nic}' is not an interface name (letters, digits, - . _; at most 15).",
                          fix="e.g. --pod-nic eth0")
    plan = read_plan(plan_file, require_ok=True)
    spec = load_cluster(cluster_file)
    unknown = sorted({n.name for n in plan.nodes} - {n.name for n in spec.nodes})
    if unknown:
        raise ConfigError(f"--plan {plan_file} places nodes {', '.join(unknown)} that {cluster_file} does not list.",
                          fix=f"re-plan with: vlmctl plan {plan.model} --cluster {cluster_file} -o {plan_file}")
    written = write_k8s(plan, spec, out_dir, image=image or DEFAULT_IMAGE, pod_nic=pod_nic)
    con = console()
    for path in written:
        con.print(f"wrote {path}", markup=False)
    next_steps(con, f"edit the placement placeholders in {written[0]}, then: kubectl apply -f {written[0]}",
               f"kubectl port-forward svc/{k8s_name(spec.name)}-head-svc {spec.ports.api}:{spec.ports.api}")
