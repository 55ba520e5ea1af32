"""`vlmctl models`: the built-in model catalog."""
from __future__ import annotations

from pathlib import Path

import click

from vlmctl.cli._output import console, emit_json, next_steps


@click.group("models", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the catalog as JSON.")
@click.pass_context
def cli(ctx: click.Context, as_json: bool) -> None:
    """List the built-in model catalog and each entry's family (Qwen2-VL, Qwen2.5-VL, Qwen3-VL, Qwen3.5).

    \b
    Examples:
      vlmctl models
      vlmctl models --json
    """
    if ctx.invoked_subcommand is not None:
        return
    from vlmctl.models import CATALOG

    rows = []
    for entry in CATALOG.values():
        s = entry.spec()
        rows.append({
            "id": entry.id, "family": s.family.name, "model_type": s.model_type,
            "params_b": round(s.total_params / 1e9, 2), "layers": s.num_hidden_layers,
            "heads": s.num_attention_heads, "kv_heads": s.num_key_value_heads,
            "intermediate_size": s.intermediate_size, "vision_intermediate_size": s.vision.intermediate_size,
            "dtype": s.torch_dtype, "quantization": s.quantization.quant_method if s.quantization else None,
            "max_model_len": s.derived_max_model_len, "note": entry.note, "source": entry.source,
        })
    if as_json:
        emit_json(rows)
        return
    from rich.table import Table

    table = Table(title="Built-in models")
    table.add_column("id", no_wrap=True)
    for col in ("family", "params", "layers", "heads/kv", "MLP", "ViT MLP", "dtype", "quant"):
        table.add_column(col, no_wrap=True)
    notes = []
    for r in rows:
        mark = ""
        if r["note"]:
            notes.append(r["note"])
            mark = f" [{len(notes)}]"
        table.add_row(r["id"] + mark, r["family"], f"{r['params_b']}B", str(r["layers"]), f"{r['heads']}/{r['kv_heads']}",
                      str(r["intermediate_size"]), str(r["vision_intermediate_size"]), r["dtype"],
                      r["quantization"] or "-")
    con = console()
    con.print(table)
    for i, note in enumerate(notes, 1):
        con.print(f"[{i}] {note}", markup=False)
    next_steps(con, "vlmctl plan Qwen/Qwen2.5-VL-7B-Instruct --gpus a100-80gb:1")


@cli.command("materialize")
@click.argument("model_id")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace the files of an existing folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the written config as JSON.")
def materialize_cmd(model_id: str, out_dir: Path, overwrite: bool, as_json: bool) -> None:
    """Write a weight-less model folder (config, tokenizer, processor) for `--load-format dummy` runs.

    \b
    Examples:
      vlmctl models materialize Qwen/Qwen2.5-VL-7B-Instruct ./qwen7b-dummy
      vllm serve ./qwen7b-dummy --load-format dummy --enforce-eager
    """
    from vlmctl.models.materialize import FILES, materialize

    config = materialize(model_id, out_dir, overwrite=overwrite)
    if as_json:
        emit_json({"dir": str(out_dir), "files": list(FILES), "config": config})
        return
    con = console()
    con.print(f"wrote {out_dir}: {', '.join(FILES)} (no weights)")
    next_steps(con, f"vllm serve {out_dir} --load-format dummy",
               f"vlmctl plan {out_dir} --gpus h100-80gb:1")
