"""`vlmctl calibrate`: measure this node's vLLM and fit the planner's constants for it."""
from __future__ import annotations

import json
import shlex
from pathlib import Path

import click

from vlmctl.cli._output import check_writable, console, emit_json, next_steps
from vlmctl.errors import ConfigError

EXAMPLES = """
\b
Examples:
  vlmctl models materialize Qwen/Qwen2.5-VL-7B-Instruct /tmp/models/7B
  vlmctl calibrate /tmp/models/7B
  vlmctl calibrate /tmp/models/7B /tmp/models/32B          # the 32B adds its LM and sampler runs
  vlmctl calibrate /models/Qwen2.5-VL-7B-Instruct --load-format auto -o ~/cal-h200.json
  vlmctl calibrate /tmp/models/7B --start-from wrong.json --budget-s 300 --json > report.json
  vlmctl calibrate --from-bench bench.json --plan plan.json   # the speed model's API-server host factor

\b
Runs a handful of engine start-ups (about a minute each on one GPU, stopped as soon as vLLM has logged its KV cache
size), fits the constants vLLM's logs measure, prints predicted vs measured before and after, and writes the
calibration file `vlmctl plan` reads for this vLLM release.

\b
--from-bench reads a `vlmctl bench --plan PLAN --out FILE` run on this host instead (one workload, fixed
concurrency levels; new images per request, --distinct-media, give the steadiest figure), fits how fast this
host's API server is against the one the speed model was measured on, and adds that factor to the calibration
file; no engine is started.
"""


def _runs_file(path: str):
    from vlmctl.calibrate.runs import EngineRun

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return [EngineRun(name=str(r["name"]), runner=str(r["runner"]), engine=dict(r["engine"]),
                          measures=str(r.get("measures", "")), held_out=bool(r.get("held_out", False)),
                          est_s=float(r.get("est_s", 45))) for r in data]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"--runs {path}: not a list of runs ({type(exc).__name__}: {exc}).",
                          fix='a JSON list of {"name", "runner", "engine": {vLLM settings}, "held_out"}') from None


@click.command("calibrate", epilog=EXAMPLES)
@click.argument("model", required=False)
@click.argument("more_models", nargs=-1, metavar="[MORE_MODELS]...")
@click.option("--vllm-version", metavar="X.Y[.Z]", help="vLLM release the engines run (default: the installed one).")
@click.option("--output", "-o", type=click.Path(dir_okay=False),
              help="Calibration file to write (default: the per-user one `vlmctl plan` reads for this release).")
@click.option("--start-from", type=click.Path(dir_okay=False, exists=True),
              help="Calibration file whose constants the 'before' column uses (default: the built-in ones).")
@click.option("--load-format", type=click.Choice(["dummy", "auto"]), default="dummy", show_default=True,
              help="dummy = random weights (a folder from `vlmctl models materialize` is enough); auto = the checkpoint.")
@click.option("--timeout-s", type=click.FloatRange(10, 3600), default=150, show_default=True,
              help="Per engine: stopped after this many seconds.")
@click.option("--budget-s", type=click.FloatRange(30, 7200), default=300, show_default=True,
              help="All engines: the runs that no longer fit are skipped.")
@click.option("--logs", "logdir", type=click.Path(file_okay=False), help="Folder for the engine logs.")
@click.option("--gpu", help="GPU for the planner (catalog id, or ID:TOTAL_GIB:CC); default: what the engines report.")
@click.option("--launcher", help="Command that starts one engine (default: python -m vlmctl.calibrate.probe).")
@click.option("--runs", "runs_file", type=click.Path(dir_okay=False, exists=True),
              help="JSON list of engine runs instead of the built-in set.")
@click.option("--from-bench", "from_bench", type=click.Path(dir_okay=False),
              help="A `vlmctl bench --plan` result: fit the speed model's API-server host factor from it instead.")
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False),
              help="With --from-bench: the plan the bench ran against (`vlmctl plan --json -o`).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def cli(model, more_models, vllm_version, output, start_from, load_format, timeout_s, budget_s, logdir, gpu, launcher, runs_file,
        from_bench, plan_file, as_json) -> None:
    """Fit the planner's memory constants to this node's vLLM and GPU.

    MODEL is the model folder (or id) vLLM loads; `vlmctl plan` reads the same one. MORE_MODELS (other sizes of
    the family) add two short runs each, for the constants that vary with the model's shape.
    """
    if from_bench or plan_file:
        if not (from_bench and plan_file) or model or more_models:
            raise ConfigError("--from-bench and --plan go together, without a MODEL (no engine is started).",
                              fix="vlmctl calibrate --from-bench bench.json --plan plan.json")
        _host_factor(from_bench, plan_file, output, as_json)
        return
    if not model:
        raise ConfigError("vlmctl calibrate needs a MODEL folder (or --from-bench with --plan).",
                          fix="vlmctl calibrate /tmp/models/7B, or vlmctl calibrate --from-bench bench.json --plan "
                              "plan.json")
    import datetime as dt

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from vlmctl import envs
    from vlmctl.calibrate.run import calibrate, write
    from vlmctl.calibrate.runs import PROBE, RunSettings, default_runs
    from vlmctl.engines.vllm import resolve
    from vlmctl.plan.calibration import constants_from_file, default_calibration_path, read_calibration_file

    if output:
        check_writable(output, "--output")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    logs = Path(logdir) if logdir else Path(envs.cache_dir()) / "calibrate" / stamp
    settings = RunSettings(model=model, logdir=logs, launcher=shlex.split(launcher) if launcher else list(PROBE),
                           load_format=load_format, timeout_s=timeout_s)
    from vlmctl.engines.vllm import installed_version

    version = vllm_version or installed_version()
    engine = resolve(version).profile if version else None
    runs = _runs_file(runs_file) if runs_file else (default_runs(engine) if engine else None)
    if runs is not None and not runs_file:
        from vlmctl.calibrate.runs import extra_model_runs

        for i, extra in enumerate(more_models, 1):
            runs += extra_model_runs(engine, extra, Path(extra.rstrip("/")).name or f"m{i}")
        runs = [r for r in runs if not r.held_out] + [r for r in runs if r.held_out]  # checks last
    start = constants_from_file(engine, read_calibration_file(start_from)) if start_from and engine else None
    err = console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=err, transient=False, disable=as_json) as progress:
        task = progress.add_task("engines", total=len(runs or []))

        def on_run(run, row):
            what = "skipped" if row is None else f"{row.get('verdict')}, KV {row.get('kv_tokens', '—')} tokens"
            progress.console.print(f"  {run.name}: {what}")
            progress.advance(task)

        def on_line(line: str):
            for key in ("Model loading took", "Memory profiling takes", "GPU KV cache size", "PROBE START FAILED"):
                if key in line:
                    progress.update(task, description=f"engines · {key.lower()}")

        report = calibrate(model, settings, vllm_version=version, runs=runs, start=start, budget_s=budget_s,
                           gpu=gpu, on_run=on_run, on_line=on_line)
    path = write(report, output or default_calibration_path(report.vllm_version))
    if as_json:
        emit_json({"calibration_file": str(path), "logs": str(logs), "skipped": report.skipped,
                   **report.file.model_dump(mode="json")})
        return
    _render(report, path, logs)


def _host_factor(bench_file: str, plan_file: str, output: str | None, as_json: bool) -> None:
    """--from-bench: fit the API-server host factor and write it into the calibration file."""
    from rich.table import Table

    from vlmctl.bench.from_plan import load_plan
    from vlmctl.bench.host_factor import fit_host_factor, read_bench, write_host_factor
    from vlmctl.plan.calibration import default_calibration_path

    plan = load_plan(plan_file)
    if output:
        check_writable(output, "--output")
    fit = fit_host_factor(plan, read_bench(bench_file), bench_file)
    default = default_calibration_path(plan.vllm_version)
    path = write_host_factor(fit, plan, output or default)
    if as_json:
        emit_json({"calibration_file": str(path), "host_factor": fit.factor, "before": fit.before, "after": fit.after})
        return
    con = console()
    table = Table(title=f"{bench_file}: measured / predicted at host factor 1 and at {fit.factor:g}")
    for col in ("workload", "c", "TTFT ms", "at 1", f"at {fit.factor:g}", "out tok/s", "at 1", f"at {fit.factor:g}"):
        table.add_column(col)
    for b, a in zip(fit.before, fit.after):
        table.add_row(a["workload"], str(a["concurrency"]), f"{a['ttft_ms'][0]:,.1f}", f"{b['ttft_ms'][1]:,.1f}",
                      f"{a['ttft_ms'][1]:,.1f}", f"{a['output_tokens_per_s'][0]:,.1f}",
                      f"{b['output_tokens_per_s'][1]:,.1f}", f"{a['output_tokens_per_s'][1]:,.1f}")
    con.print(table)
    con.print(f"host factor {fit.factor:g} (this host's API server against the one the speed model was measured "
              f"on; one bench reads it to about ±40 % with media from a pool, ±15 % with --distinct-media) "
              f"written to {path}")
    next_steps(con, f"vlmctl plan {shlex.quote(plan.model)} --gpus {_plan_gpus(plan)} --vllm-version "
                    f"{plan.vllm_version}" + ("" if path == default else f" --calibration {shlex.quote(str(path))}"))


def _plan_gpus(plan) -> str:
    counts: dict[str, int] = {}
    for g in plan.per_gpu:
        counts[g.gpu_type] = counts.get(g.gpu_type, 0) + 1
    return ",".join(f"{t}:{n}" for t, n in counts.items())


def _render(report, path: Path, logs: Path) -> None:
    from rich.table import Table

    con = console()

    def fmt(x, pct=False):
        if x is None:
            return "—"
        return f"{x:+.2f} %" if pct else (f"{x:,}" if isinstance(x, int) else f"{x:.2f}")

    table = Table(title=f"Predicted vs measured, vLLM {report.vllm_version} on {report.gpu}")
    for col in ("run", "split", "runner", "KV tokens measured", "before", "error", "after", "error",
                "torch peak GiB m / before / after"):
        table.add_column(col)
    for r in report.table:
        table.add_row(r["name"], r["split"], r["runner"], fmt(r["kv_measured"]), fmt(r["kv_before"]),
                      fmt(r["err_before_pct"], True), fmt(r["kv_after"]), fmt(r["err_after_pct"], True),
                      f"{fmt(r['peak_measured'])} / {fmt(r['peak_before'])} / {fmt(r['peak_after'])}")
    con.print(table)
    consts = Table(title="Constants")
    for col in ("runner", "constant", "before", "fitted", "runs"):
        consts.add_column(col)
    for runner, names in report.fitted.fitted.items():
        for c in names:
            runs = report.fitted.used.get(c) or report.fitted.used.get(f"{c} ({runner})") or []
            consts.add_row(runner, c, f"{getattr(report.start[runner], c):g}",
                           f"{getattr(report.fitted.calibrations[runner], c):g}",
                           ", ".join(runs) if len(runs) <= 2 else f"{len(runs)} runs")
    con.print(consts)
    for s in report.skipped:
        con.print(f"[yellow]skipped[/] {s}")
    con.print(f"wrote {path} (logs in {logs})")
    next_steps(con, f"vlmctl plan {shlex.quote(str(report.rows[0]['config']['model']))} --gpus "
                    f"{_gpu_arg(report)} --vllm-version {report.vllm_version}"
                    + ("" if path == _default(report) else f" --calibration {shlex.quote(str(path))}"))


def _default(report) -> Path:
    from vlmctl.plan.calibration import default_calibration_path

    return default_calibration_path(report.vllm_version)


def _gpu_arg(report) -> str:
    from vlmctl.hardware.gpus import gpu_type

    try:
        return f"{gpu_type(report.gpu).id}:1"
    except ConfigError:
        return "TYPE:1 (see `vlmctl gpus`, or a cluster file for a GPU it lacks)"
