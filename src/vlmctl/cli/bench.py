"""`vlmctl bench`: multimodal load against an OpenAI-compatible endpoint; `vlmctl bench compare A.json B.json`."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from vlmctl import envs
from vlmctl.cli._output import console, emit_json, next_steps
from vlmctl.errors import ConfigError


def _int_list(value: str, flag: str) -> list[int]:
    try:
        out = [int(x) for x in value.split(",") if x.strip()]
    except ValueError:
        out = []
    if not out or any(x < 1 for x in out):
        raise ConfigError(f"{flag} '{value}' is not a comma list of integers >= 1.", fix=f"e.g. {flag} 1,2,4,8")
    return out


def _float_list(value: str, flag: str) -> list[float]:
    try:
        out = [float(x) for x in value.split(",") if x.strip()]
    except ValueError:
        out = []
    if not out or any(x <= 0 for x in out):
        raise ConfigError(f"{flag} '{value}' is not a comma list of numbers > 0.", fix=f"e.g. {flag} 0.5,1,2")
    return out


def _wide(con):
    """Tables have many columns: give them room when stdout is not a terminal (pipes, CI logs)."""
    if not con.is_terminal:
        con.width = max(con.width, 130)
    return con


@click.group(invoke_without_command=True)
@click.option("--api-base", default="http://127.0.0.1:8000/v1", show_default=True, help="OpenAI-compatible base URL.")
@click.option("--api-key", default=None, help="Bearer key (default: $VLMCTL_API_KEY).")
@click.option("--model", default=None, help="Model name (default: the plan's, else the first of GET /models).")
@click.option("--plan", "plan_file", default=None, metavar="plan.json",
              help="Take the model name, a mix inside the media limits and the sweep from this plan.")
@click.option("--mix", multiple=True, metavar="KIND[@WxH[xF]][=W]",
              help="Request mix entry, repeatable: text, image@1024x768, video@448x448x8, each =WEIGHT.")
@click.option("--concurrency", "concurrency", default=None, metavar="N[,N…]",
              help="Fixed concurrency; a comma list sweeps (default 1,2,4,8 without --rate).")
@click.option("--rate", default=None, metavar="R[,R…]", help="Poisson request rate(s) per second (sweepable).")
@click.option("--requests", "num_requests", type=int, default=None, help="Measured requests per level (default 32).")
@click.option("--duration", type=float, default=None, help="Seconds per level instead of a request count.")
@click.option("--warmup", type=int, default=2, show_default=True, help="Unmeasured requests before each level.")
@click.option("--max-tokens", type=int, default=128, show_default=True, help="max_tokens per request.")
@click.option("--prompt-words", type=int, default=48, show_default=True, help="Words of text per prompt.")
@click.option("--ignore-eos", is_flag=True, help="Send ignore_eos (vLLM) so every request generates max_tokens.")
@click.option("--timeout", "timeout_s", type=float, default=600.0, show_default=True, help="Per-request timeout (s).")
@click.option("--out", "out_path", default=None, help="Result JSON (default bench-<UTC time>.json).")
@click.option("--plot", "plot_path", default=None, help="PNG plot (default: next to --out when sweeping).")
@click.option("--json", "as_json", is_flag=True, help="Print the summaries as JSON on stdout.")
@click.pass_context
def cli(ctx: click.Context, api_base: str, api_key: str | None, model: str | None, mix: tuple[str, ...],
        plan_file: str | None, concurrency: str | None, rate: str | None, num_requests: int | None, duration: float | None, warmup: int,
        max_tokens: int, prompt_words: int, ignore_eos: bool, timeout_s: float, out_path: str | None,
        plot_path: str | None, as_json: bool) -> None:
    """Measure a deployment under multimodal load: TTFT, TPOT, ITL, E2E, throughput, errors.

    \b
    Examples:
      vlmctl bench --api-base http://127.0.0.1:8000/v1 --concurrency 1,2,4,8
      vlmctl bench --mix text=2 --mix image@1024x768=1 --mix video@448x448x8=1 --requests 64
      vlmctl bench --rate 0.5,1,2 --concurrency 16 --duration 60 --out run.json --plot run.png
      vlmctl bench --plan plan.json --api-key "$VLMCTL_API_KEY"
      vlmctl bench compare before.json after.json
    """
    if ctx.invoked_subcommand is not None:
        return
    from vlmctl.bench.loadgen import LoadSpec
    from vlmctl.bench.workload import parse_mix

    if num_requests is not None and duration is not None:
        raise ConfigError("--requests and --duration both given.", fix="use one: a count or seconds per level")
    if num_requests is not None and num_requests < 1 or duration is not None and duration <= 0:
        raise ConfigError("--requests must be >= 1 and --duration > 0.", fix="e.g. --requests 32 or --duration 60")
    if warmup < 0 or max_tokens < 1:
        raise ConfigError("--warmup must be >= 0 and --max-tokens >= 1.", fix="e.g. --warmup 2 --max-tokens 128")
    if duration is None and num_requests is None:
        num_requests = 32
    plan = None
    if plan_file:
        from vlmctl.bench.from_plan import load_plan

        plan = load_plan(plan_file)
        model = model or plan.served_model_name
    if mix or plan is None:
        entries = parse_mix(mix)
    else:
        from vlmctl.bench.from_plan import mix_from_plan

        entries = mix_from_plan(plan)
    rates = _float_list(rate, "--rate") if rate else [None]
    if concurrency:
        concs = _int_list(concurrency, "--concurrency")
    elif rate:
        concs = [None]
    elif plan is not None:
        from vlmctl.bench.from_plan import concurrency_from_plan

        concs = concurrency_from_plan(plan)
    else:
        concs = [1, 2, 4, 8]
    levels = [LoadSpec(concurrency=c, rate=r, num_requests=num_requests, duration_s=duration, warmup=warmup)
              for r in rates for c in concs]
    api_key = api_key or envs.api_key()
    from vlmctl.bench.runner import resolve_model, run_sweep

    model = model or resolve_model(api_base, api_key)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = Path(out_path or f"bench-{stamp}.json")
    err = console(stderr=True)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=as_json) as progress:
        task = progress.add_task("preparing media", total=None)
        current = {"done": 0}

        def on_level(spec) -> None:
            from vlmctl.bench.report import level_name

            current["done"] = 0
            progress.update(task, description=f"bench {level_name(vars(spec))}", completed=0,
                            total=spec.num_requests)

        def on_done(rec) -> None:
            current["done"] += 1
            progress.update(task, completed=current["done"])

        result = run_sweep(api_base, api_key, model, entries, levels, max_tokens, prompt_words=prompt_words,
                           ignore_eos=ignore_eos, timeout_s=timeout_s, on_done=on_done, on_level=on_level)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    plot_file = Path(plot_path) if plot_path else (out.with_suffix(".png") if len(levels) > 1 else None)
    if plot_file and any(lv["summary"]["completed"] for lv in result["levels"]):
        from vlmctl.bench.plot import plot

        plot(result, plot_file)
    else:
        plot_file = None
    if as_json:
        emit_json({"meta": result["meta"], "levels": [
            {k: v for k, v in lv.items() if k != "requests_detail"} for lv in result["levels"]],
            "out": str(out), "plot": str(plot_file) if plot_file else None})
    else:
        from vlmctl.bench.report import table

        con = _wide(console())
        con.print(table(result))
        con.print(f"results: {out}" + (f"   plot: {plot_file}" if plot_file else ""), markup=False)
        next_steps(con, f"vlmctl bench compare {out} <other.json>")
    if result["meta"]["interrupted"]:
        raise click.exceptions.Abort()  # exit 130 after the partial results are written


@cli.command("compare")
@click.argument("a_json", metavar="A.json")
@click.argument("b_json", metavar="B.json")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison rows as JSON.")
def compare_cmd(a_json: str, b_json: str, as_json: bool) -> None:
    """Compare two bench runs level by level: A, B and the ratio B/A.

    \b
    Examples:
      vlmctl bench compare before.json after.json
      vlmctl bench compare tp2.json pp2.json --json
    """
    from vlmctl.bench.report import compare, compare_table, load

    a, b = load(a_json), load(b_json)
    rows = compare(a, b)
    if not rows:
        raise ConfigError(f"'{a_json}' and '{b_json}' share no load level.",
                          fix="run both with the same --concurrency / --rate values")
    if as_json:
        emit_json({"a": a_json, "b": b_json, "rows": rows})
        return
    con = _wide(console())
    con.print(compare_table(rows, a_json, b_json))
    next_steps(con, "vlmctl bench --concurrency 1,2,4,8 --out next.json")
