"""`vlmctl compose`: one docker-compose file per node from the cluster file (and a plan)."""
from __future__ import annotations

import click

from vlmctl.cli._output import console, next_steps


@click.command("compose")
@click.option("--cluster", "cluster_file", default="cluster.yaml", show_default=True, metavar="FILE", help="The cluster file (YAML).")
@click.option("--plan", "plan_file", metavar="FILE",
              help="A plan from `vlmctl plan -o`: its GPUs and variables per node, and an `api` service on the head.")
@click.option("--image", default=None, metavar="IMAGE", help="Container image with vLLM and vlmctl (same on every node); default vlmctl-vllm:<the plan's vLLM>.")
@click.option("-o", "--out", "out_dir", default="compose", show_default=True, metavar="DIR", help="Folder to write into.")
def cli(cluster_file, plan_file, image, out_dir) -> None:
    """Write one docker-compose file per node, a README and the cluster file into a folder.

    Host network, ipc: host, the planned GPUs by id, the model at the same path in every container,
    the Hugging Face cache and HF_TOKEN, restart: unless-stopped, `vlmctl cluster up` / `join` as the
    command, and with --plan an `api` service on the head (`vlmctl serve`, health-checked).

    \b
    Examples:
      vlmctl compose --cluster cluster.yaml
      vlmctl compose --cluster cluster.yaml --plan plan.json --image registry.lab/vlmctl-vllm:0.26.0 -o deploy/
    """
    from vlmctl.cli.cluster import _plan
    from vlmctl.cluster.compose import file_name, image_for, write_compose
    from vlmctl.clusterspec import load_cluster

    spec = load_cluster(cluster_file)
    plan = _plan(plan_file)
    written = write_compose(spec, out_dir, cluster_file=cluster_file, image=image or image_for(plan),
                            plan=plan, plan_file=plan_file)
    con = console()
    for path in written:
        con.print(f"wrote {path}", markup=False)
    head = spec.head_node
    next_steps(con, f"scp -r {out_dir} to every node, then on {head.name}: docker compose -f {file_name(head.name)} up -d",
               "on each worker: docker compose -f docker-compose.<node>.yml up -d")
