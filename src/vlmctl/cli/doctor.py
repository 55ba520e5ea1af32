"""`vlmctl doctor`: check this node; `vlmctl doctor explain LOG`: map a failure log to cause, fix and plan change."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from vlmctl.cli._output import console, emit_json, next_steps
from vlmctl.errors import ConfigError

_STYLE = {"error": "red", "warning": "yellow", "info": "cyan"}


@click.group(invoke_without_command=True)
@click.option("--head", metavar="ADDR", help="Head node address: show which NIC and source IP route to it.")
@click.option("--json", "as_json", is_flag=True, help="Print findings as JSON.")
@click.pass_context
def cli(ctx: click.Context, head: str | None, as_json: bool) -> None:
    """Check this node (GPU, driver, CUDA arch, bf16, attention backends, NICs, shm, ports, versions).

    \b
    Examples:
      vlmctl doctor
      vlmctl doctor --head 10.0.0.1 --json
      vlmctl doctor explain engine.log --plan plan.json
      journalctl -u vllm | vlmctl doctor explain -
    """
    if ctx.invoked_subcommand is not None:
        return
    from vlmctl.doctor.checks import run_checks

    findings = run_checks(head)
    if as_json:
        emit_json({"findings": [f.model_dump() for f in findings]})
        return
    con = console()
    marks = {"error": "✗", "warning": "!", "info": "·"}
    for f in findings:
        con.print(f"[{_STYLE[f.severity]}]{marks[f.severity]} {f.severity:<7}[/] [bold]{f.id}[/]: ", end="")
        con.print(f.message, markup=False, highlight=False)
        if f.fix and f.severity != "info" or f.id == "head-route":
            con.print(f"            fix: {f.fix}", markup=False, highlight=False)
    counts = {sev: sum(1 for f in findings if f.severity == sev) for sev in ("error", "warning")}
    con.print(f"\n{counts['error']} error(s), {counts['warning']} warning(s).")
    next_steps(con, "vlmctl doctor explain <engine.log>   # when a launch fails",
               "vlmctl plan Qwen/Qwen2.5-VL-7B-Instruct --gpus <gpu>:<n>")


def _read_log(logfile: str) -> str:
    if logfile == "-":
        return sys.stdin.read()
    path = Path(logfile)
    if not path.is_file():
        raise ConfigError(f"log file '{logfile}' does not exist.", fix="give a path to a log file, or '-' for stdin")
    return path.read_text(errors="replace")


def _read_plan(plan_file: str | None):
    from vlmctl.plan.files import read_plan

    return read_plan(plan_file) if plan_file else None


@cli.command("explain")
@click.argument("logfile", metavar="LOGFILE|-")
@click.option("--plan", "plan_file", metavar="plan.json", help="The plan that was launched: show the concrete change.")
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
def explain_cmd(logfile: str, plan_file: str | None, as_json: bool) -> None:
    """Explain a vLLM / Ray / NCCL failure log: cause, fix and the plan change.

    \b
    Examples:
      vlmctl doctor explain engine.log
      vlmctl doctor explain engine.log --plan plan.json --json
      docker logs vllm 2>&1 | vlmctl doctor explain -
    """
    from vlmctl.doctor.explain import explain

    text = _read_log(logfile)
    plan = _read_plan(plan_file)
    result = explain(text, plan)
    if as_json:
        emit_json(result)
        return
    con = console()
    if not result.known:
        con.print("[yellow]No known cause.[/] The lines that look most like the failure:")
        for line in result.suspicious_lines or ["(no error-like lines found)"]:
            con.print(f"  {line}", markup=False)
        next_steps(con, "vlmctl doctor   # check the node itself")
        return
    for m in result.matches:
        f = m.finding
        con.print(f"[bold {_STYLE[f.severity]}]{f.severity}[/] [bold]{m.id}[/]: {m.title}  (log line {m.line})")
        con.print(f"  evidence: {m.evidence}", markup=False)
        if m.values:
            con.print("  values:   " + ", ".join(f"{k}={v}" for k, v in m.values.items()), markup=False)
        con.print(f"  cause:    {_cause(m.id)}", markup=False)
        con.print(f"  fix:      {f.fix}", markup=False)
        con.print(f"  seen in:  {', '.join(m.sources)}", markup=False)
    if result.plan_change:
        con.print("\n[bold]Plan change:[/]")
        for key, change in result.plan_change.items():
            before = f"{change['from']} -> " if "from" in change else ""
            con.print(f"  {key}: {before}{change['to']}   ({change['because']})", markup=False)
    next_steps(con, "vlmctl plan ... --json > plan.json   # re-plan with the change", "vlmctl serve --plan plan.json")


def _cause(signature_id: str) -> str:
    from vlmctl.doctor.signatures import BY_ID

    return BY_ID[signature_id].cause
