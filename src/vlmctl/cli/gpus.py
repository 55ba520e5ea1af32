"""`vlmctl gpus`: the built-in GPU catalog."""
from __future__ import annotations

import click

from vlmctl.cli._output import console, emit_json, next_steps


@click.command("gpus")
@click.option("--json", "as_json", is_flag=True, help="Print the catalog as JSON.")
def cli(as_json: bool) -> None:
    """List the built-in GPU catalog: memory as CUDA reports it, compute capability, bandwidth, dtypes.

    \b
    Examples:
      vlmctl gpus
      vlmctl gpus --json
    """
    from vlmctl.hardware import GPUS

    rows = [{"id": g.id, "name": g.name, "total_gib": g.total_gib, "compute_capability": g.cc_str,
             "bandwidth_gbs": g.bandwidth_gbs, "dtypes": list(g.dtypes), "source": g.source} for g in GPUS]
    if as_json:
        emit_json(rows)
        return
    from rich.table import Table

    table = Table(title="Built-in GPUs (total = what cudaMemGetInfo reports)")
    for col in ("id", "name", "total GiB", "CC", "GB/s", "dtypes", "source"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["id"], r["name"], f"{r['total_gib']:.2f}", r["compute_capability"],
                      f"{r['bandwidth_gbs']:.0f}", ", ".join(r["dtypes"]), r["source"])
    con = console()
    con.print(table)
    next_steps(con, "vlmctl plan Qwen/Qwen2.5-VL-7B-Instruct --gpus rtx-2080-ti:4")
