"""`vlmctl bench`: multimodal load against an OpenAI-compatible endpoint; `vlmctl bench compare A.json B.json`."""
from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import click

from vlmctl.cli._output import check_writable, console, emit_json, next_steps
from vlmctl.errors import ConfigError


#: Largest --media-pool: the pool is made before the first request and held in memory.
MAX_MEDIA_POOL = 256


def _int_list(value: str, flag: str) -> list[int]:
    try:
        out = [int(x) for x in value.split(",") if x.strip()]
    except ValueError:
        out = []
    if not out or any(not 1 <= x <= 100_000 for x in out):
        raise ConfigError(f"{flag} '{value}' is not a comma list of integers from 1 to 100000.",
                          fix=f"e.g. {flag} 1,2,4,8")
    return out


def _wide(con):
    """Tables have many columns: give them room when stdout is not a terminal (pipes, CI logs)."""
    if not con.is_terminal:
        con.width = max(con.width, 130)
    return con


def _rate_list(value: str) -> list[float | None]:
    """``0.5,1,inf``: Poisson rates per second; ``inf`` sends as fast as --max-concurrency allows."""
    out: list[float | None] = []
    for part in filter(None, (p.strip() for p in value.split(","))):
        if part.lower() == "inf":
            out.append(None)
            continue
        try:
            rate = float(part)
        except ValueError:
            rate = 0.0
        if not 0 < rate < float("inf"):
            out = []
            break
        out.append(rate)
    if not out:
        raise ConfigError(f"--request-rate '{value}' is not a comma list of numbers > 0 (or inf).",
                          fix="e.g. --request-rate 0.5,1,2")
    return out


@click.group(invoke_without_command=True)
@click.option("--base-url", "--api-base", "base_url", default=None, metavar="URL",
              help="The server (http://HOST:PORT, as vLLM's --base-url) or its OpenAI base (…/v1). "
                   "Default: $OPENAI_BASE_URL, else http://HOST:PORT/v1.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Server host when no --base-url is given.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True,
              help="Server port when no --base-url is given.")
@click.option("--api-key", default=None, help="Bearer key (default: $VLMCTL_API_KEY, else $OPENAI_API_KEY).")
@click.option("--model", default=None, help="Model name (default: the plan's, else the first of GET /models).")
@click.option("--tokenizer", default=None, metavar="PATH|ID",
              help="Tokenizer that sizes prompts (a folder with tokenizer.json, or a hub id in the local cache). "
                   "Default: the model's, when found locally.")
@click.option("--plan", "plan_file", default=None, metavar="plan.json",
              help="Take the model name, a mix inside the media limits and the sweep from this plan.")
@click.option("--mix", multiple=True, metavar="KIND[@WxH[xF]][=W]",
              help="Request mix entry, repeatable: text, image@1024x768, video@448x448x8, each =WEIGHT.")
@click.option("--distinct-media", is_flag=True,
              help="Send every request its own image or video (seeded by --seed and the request's index, made "
                   "ahead in background threads), so within a run vLLM's prefix and encoder caches never serve them. "
                   "Default: each size draws from a pool of --media-pool items, cached by vLLM after first use.")
@click.option("--media-pool", type=int, default=4, show_default=True, metavar="N",
              help="Images (and videos) per size that requests draw from, without --distinct-media.")
@click.option("--max-concurrency", "--concurrency", "concurrency", default=None, metavar="N[,N…]",
              help="Requests in flight at most; a comma list sweeps (default 1,2,4,8 without --request-rate).")
@click.option("--request-rate", "--rate", "rate", default=None, metavar="R[,R…]",
              help="Poisson request rate(s) per second, inf for no pacing (sweepable).")
@click.option("--num-prompts", "--requests", "num_requests", type=int, default=None,
              help="Measured requests per level (default 32).")
@click.option("--duration", type=float, default=None, help="Seconds per level instead of a request count.")
@click.option("--num-warmups", "--warmup", "warmup", type=int, default=2, show_default=True,
              help="Unmeasured requests before each level.")
@click.option("--random-output-len", "--output-len", "--max-tokens", "max_tokens", type=int, default=128,
              show_default=True, help="Output tokens asked per request (max_tokens).")
@click.option("--random-input-len", "--input-len", "--prompt-tokens", "prompt_tokens", type=int, default=None,
              help="Text tokens per prompt, counted with the model's tokenizer (default 48).")
@click.option("--prompt-words", type=int, default=None, hidden=True,
              help="Words of text per prompt, no tokenizer (older runs).")
@click.option("--ignore-eos", is_flag=True, help="Send ignore_eos (vLLM) so every request generates max_tokens.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the mix, prompts and arrivals.")
@click.option("--goodput", multiple=True, metavar="METRIC:MS",
              help="SLOs for goodput as vLLM defines them: ttft:MS, tpot:MS, e2el:MS (repeat the flag or join with commas).")
@click.option("--metric-percentiles", default="50,90,99", show_default=True,
              help="Percentiles in the vLLM-format result.")
@click.option("--result-format", type=click.Choice(["vlmctl", "vllm"]), default="vlmctl", show_default=True,
              help="vlmctl: nested seconds with every request; vllm: the flat ms fields `vllm bench serve` "
                   "writes, one object per level and line.")
@click.option("--timeout", "timeout_s", type=float, default=600.0, show_default=True, help="Per-request timeout (s).")
@click.option("--out", "--result-filename", "out_path", default=None,
              help="Result file (default bench-<UTC time>.json).")
@click.option("--result-dir", default=None, help="Folder for the result file.")
@click.option("--plot", "plot_path", default=None, help="PNG plot (default: next to --out when sweeping).")
@click.option("--json", "as_json", is_flag=True, help="Print the summaries as JSON on stdout.")
@click.pass_context
def cli(ctx: click.Context, base_url: str | None, host: str, port: int, api_key: str | None, model: str | None,
        tokenizer: str | None, mix: tuple[str, ...], plan_file: str | None, distinct_media: bool, media_pool: int,
        concurrency: str | None,
        rate: str | None, num_requests: int | None, duration: float | None, warmup: int, max_tokens: int,
        prompt_tokens: int | None, prompt_words: int | None, ignore_eos: bool, seed: int,
        goodput: tuple[str, ...], metric_percentiles: str, result_format: str, timeout_s: float,
        out_path: str | None, result_dir: str | None, plot_path: str | None, as_json: bool) -> None:
    """Measure a deployment under multimodal load: TTFT, TPOT, ITL, E2E, throughput, goodput, errors.

    Flags are `vllm bench serve`'s (--base-url, --max-concurrency, --request-rate, --num-prompts,
    --num-warmups, --random-input-len, --random-output-len, --goodput); the short names work too.

    \b
    Examples:
      vlmctl bench --base-url http://127.0.0.1:8000 --max-concurrency 1,2,4,8
      vlmctl bench --mix text=2 --mix image@1024x768=1 --mix video@448x448x8=1 --num-prompts 64
      vlmctl bench --mix image@1280x720 --distinct-media --max-concurrency 1,8,32
      vlmctl bench --request-rate 0.5,1,2 --max-concurrency 16 --duration 60 --out run.json --plot run.png
      vlmctl bench --random-input-len 512 --random-output-len 128 --result-format vllm --out vllm.json
      vlmctl bench --plan plan.json --goodput ttft:2000,tpot:100
      vlmctl bench compare before.json after.json
    """
    if ctx.invoked_subcommand is not None:
        return
    from vlmctl import endpoint
    from vlmctl.bench.loadgen import LoadSpec
    from vlmctl.bench.vllm_format import parse_goodput, parse_percentiles
    from vlmctl.bench.workload import parse_mix

    if num_requests is not None and duration is not None:
        raise ConfigError("--num-prompts and --duration both given.", fix="use one: a count or seconds per level")
    if num_requests is not None and not 1 <= num_requests <= 10_000_000:
        raise ConfigError(f"--num-prompts {num_requests} must be between 1 and 10000000.", fix="e.g. --num-prompts 32")
    if duration is not None and not (math.isfinite(duration) and 0 < duration <= 7 * 86400):
        raise ConfigError(f"--duration {duration} must be a number of seconds > 0 (at most a week).",
                          fix="e.g. --duration 60")
    if not (math.isfinite(timeout_s) and 0 < timeout_s <= 86400):
        raise ConfigError(f"--timeout {timeout_s} must be a number of seconds > 0 (at most a day).",
                          fix="e.g. --timeout 600")
    if warmup < 0 or max_tokens < 1:
        raise ConfigError("--num-warmups must be >= 0 and --random-output-len >= 1.",
                          fix="e.g. --num-warmups 2 --random-output-len 128")
    if prompt_tokens is not None and prompt_words is not None:
        raise ConfigError("--random-input-len and --prompt-words both given.", fix="use --random-input-len (tokens)")
    length = prompt_tokens if prompt_tokens is not None else prompt_words if prompt_words is not None else 48
    if length < 1:
        raise ConfigError(f"--random-input-len {length} must be >= 1.", fix="e.g. --random-input-len 48")
    if distinct_media and ctx.get_parameter_source("media_pool") is click.core.ParameterSource.COMMANDLINE:
        raise ConfigError("--distinct-media and --media-pool both given.",
                          fix="use --distinct-media (new media every request) or --media-pool N (reuse N per size)")
    if not 1 <= media_pool <= MAX_MEDIA_POOL:
        raise ConfigError(f"--media-pool {media_pool} must be between 1 and {MAX_MEDIA_POOL}.",
                          fix="e.g. --media-pool 4, or --distinct-media for new media every request")
    slos = parse_goodput(goodput)
    percentiles = parse_percentiles(metric_percentiles)
    if duration is None and num_requests is None:
        num_requests = 32
    api_base = endpoint.api_base(base_url, "--base-url") if base_url or not _host_given(ctx) else \
        endpoint.normalise_api_base(f"http://{host}:{port}", "--host/--port")
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
    if distinct_media and all(e.kind == "text" for e in entries):
        raise ConfigError(f"--distinct-media: the mix ({' '.join(e.label for e in entries)}) has no image or video.",
                          fix="add --mix image@1280x720 (or video@448x448x8), or drop --distinct-media")
    rates = _rate_list(rate) if rate else [None]
    if concurrency:
        concs = _int_list(concurrency, "--max-concurrency")
    elif rate:
        concs = [None]
    elif plan is not None:
        from vlmctl.bench.from_plan import concurrency_from_plan

        concs = concurrency_from_plan(plan)
    else:
        concs = [1, 2, 4, 8]
    if any(r is None for r in rates) and None in concs:
        raise ConfigError("--request-rate inf with no --max-concurrency sends every request at once.",
                          fix="add --max-concurrency N, or give a finite --request-rate")
    levels = [LoadSpec(concurrency=c, rate=r, num_requests=num_requests, duration_s=duration, warmup=warmup,
                       seed=seed) for r in rates for c in concs]
    api_key = endpoint.api_key(api_key)
    from vlmctl.bench.prompts import PromptMaker, load_tokenizer
    from vlmctl.bench.runner import model_card, run_sweep

    card: dict = {}
    if model is None or (prompt_words is None and tokenizer is None):
        try:
            card = model_card(api_base, api_key)
        except ConfigError:
            if model is None:
                raise
    model = model or card["id"]
    tok, tok_id = (None, None)
    if prompt_words is None:
        tok, tok_id = load_tokenizer([plan.model if plan else None, card.get("root"), model], explicit=tokenizer)
    err = console(stderr=True)
    if prompt_words is None and tok is None:
        err.print(f"note: no local tokenizer for '{model}'; prompts are {length} words (about {length} tokens). "
                  "Pass --tokenizer PATH for exact token counts.", markup=False)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = Path(out_path or f"bench-{stamp}.json")
    if result_dir:
        out = Path(result_dir) / out
        Path(result_dir).mkdir(parents=True, exist_ok=True) if Path(result_dir).parent.is_dir() else None
    check_writable(out, "--out")
    if plot_path:
        check_writable(plot_path, "--plot")
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

        result = run_sweep(api_base, api_key, model, entries, levels, max_tokens,
                           prompt=PromptMaker(length, tok), ignore_eos=ignore_eos, timeout_s=timeout_s,
                           on_done=on_done, on_level=on_level, goodput_ms=slos or None, tokenizer_id=tok_id,
                           distinct_media=distinct_media, media_pool=media_pool)
    if result_format == "vllm":
        from vlmctl.bench.vllm_format import level_result

        date = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        text = "".join(json.dumps(level_result(lv, result["meta"], percentiles, slos or None, date)) + "\n"
                       for lv in result["levels"])
    else:
        text = json.dumps(result, indent=1)
    out = _write_result(out, text, err)
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
        if plan is not None:
            from vlmctl.bench.from_plan import predicted_levels
            from vlmctl.bench.report import predicted_table

            predicted = predicted_levels(plan, result)
            if predicted:
                con.print(predicted_table(predicted))
        con.print(f"results: {out}" + (f"   plot: {plot_file}" if plot_file else ""), markup=False)
    if result["meta"]["interrupted"]:
        raise click.exceptions.Abort()  # exit 130 after the partial results are written
    _fail_on_empty_levels(result, out)
    if not as_json:
        next_steps(con, f"vlmctl bench compare {out} <other.json>")


def _write_result(out: Path, text: str, err) -> Path:
    """Write the results; if ``out`` became unwritable during the run, keep them in a temporary file instead."""
    try:
        out.write_text(text)
        return out
    except OSError as exc:
        import tempfile

        fd, spare = tempfile.mkstemp(prefix="vlmctl-bench-", suffix=".json")
        with open(fd, "w") as fh:
            fh.write(text)
        err.print(f"warning: {out} cannot be written ({exc.strerror}); the results are in {spare}", markup=False)
        return Path(spare)


def _host_given(ctx: click.Context) -> bool:
    from click.core import ParameterSource

    return any(ctx.get_parameter_source(p) is ParameterSource.COMMANDLINE for p in ("host", "port"))


def _fail_on_empty_levels(result: dict, out: Path) -> None:
    """A level where no request succeeded is a failed run: say what the server answered, exit non-zero."""
    from vlmctl.bench.report import level_name
    from vlmctl.errors import BenchError

    empty = [lv for lv in result["levels"] if lv["summary"]["requests"] and not lv["summary"]["completed"]]
    if not empty:
        return
    first = empty[0]["summary"]["first_error"] or {}
    body = " ".join((first.get("body") or "").split())[:300] or "(no body)"
    names = ", ".join(level_name(lv) for lv in empty)
    kind = first.get("kind", "unknown")
    raise BenchError(f"no request succeeded at {names} (results in {out}). First error: {kind}: {body}",
                     fix=_FIXES.get(kind) or _FIXES.get(kind[:6], _FIXES["other"]))


_FIXES = {
    "http_401": "pass the server's key: export VLMCTL_API_KEY (or OPENAI_API_KEY), then run the same command again",
    "http_403": "pass the server's key: export VLMCTL_API_KEY (or OPENAI_API_KEY), then run the same command again",
    "http_404": "check --model and --base-url against `curl BASE_URL/models`",
    "http_4": "shrink what the error names (--mix sizes, --random-input-len, --random-output-len) and re-run",
    "connect": "start the server or fix --base-url, then re-run",
    "timeout": "raise --timeout or lower --max-concurrency, then re-run",
    "other": "read the server's log (`vlmctl doctor explain LOG` names known failures) and re-run",
}


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
    try:
        rows = compare(a, b)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise ConfigError(f"'{a_json}' or '{b_json}' has a level that is not a bench level ({type(exc).__name__}: "
                          f"{str(exc)[:80]}).", fix="pass files written by `vlmctl bench --out`") from None
    if not rows:
        raise ConfigError(f"'{a_json}' and '{b_json}' share no load level.",
                          fix="run both with the same --concurrency / --rate values")
    if as_json:
        emit_json({"a": a_json, "b": b_json, "rows": rows})
        return
    con = _wide(console())
    con.print(compare_table(rows, a_json, b_json))
    next_steps(con, "vlmctl bench --concurrency 1,2,4,8 --out next.json")
