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


_MAX_BYTES = 4_000_000
"""Per file, the tail that is read: a failure is at the end of a log; this keeps huge logs fast."""


def _tail(path: Path) -> str:
    with path.open("rb") as fh:
        size = path.stat().st_size
        if size > _MAX_BYTES:
            fh.seek(size - _MAX_BYTES)
        return fh.read().decode("utf-8", errors="replace")


def _read_log(logfile: str) -> str:
    """A file, '-' (stdin: `docker logs … 2>&1 |`, `ray logs … |`, `journalctl … |`) or a log folder
    (a Ray session's logs/, a folder of `docker logs` dumps): every *.log / *.out / *.err in it."""
    if logfile == "-":
        return sys.stdin.read()
    path = Path(logfile)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (".log", ".out", ".err"))
        if not files:
            raise ConfigError(f"log folder '{logfile}' has no *.log, *.out or *.err files.",
                              fix="give a log file, a Ray session's logs folder, or '-' for stdin")
        return "\n".join(f"==> {p.relative_to(path)} <==\n{_tail(p)}" for p in files)
    if not path.is_file():
        raise ConfigError(f"log file '{logfile}' does not exist.",
                          fix="give a path to a log file or folder, or '-' for stdin (e.g. docker logs NAME 2>&1 | "
                              "vlmctl doctor explain -)")
    return _tail(path)


def _read_plan(plan_file: str | None):
    from vlmctl.plan.files import read_plan

    return read_plan(plan_file) if plan_file else None


@cli.command("explain")
@click.argument("logfile", metavar="LOGFILE|DIR|-")
@click.option("--plan", "plan_file", metavar="plan.json", help="The plan that was launched: show the concrete change.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the explanation as JSON (schema in docs/doctor.md; schema_version says which).")
def explain_cmd(logfile: str, plan_file: str | None, as_json: bool) -> None:
    """Explain a vLLM / Ray / NCCL failure log: cause, fix and the plan change, or a triage.

    LOGFILE may be a file, a folder of logs (a Ray session's logs/) or '-' for stdin.

    \b
    Examples:
      vlmctl doctor explain engine.log
      vlmctl doctor explain engine.log --plan plan.json --json
      docker logs vllm 2>&1 | vlmctl doctor explain -
      ray logs worker-*.err --node-id NODE | vlmctl doctor explain -
      vlmctl doctor explain /tmp/ray/session_latest/logs
    """
    from vlmctl.doctor.explain import explain

    text = _read_log(logfile)
    plan = _read_plan(plan_file)
    result = explain(text, plan)
    if as_json:
        emit_json(result)
        return
    con = console()
    if result.context:
        con.print("log says: " + ", ".join(f"{k}={v}" for k, v in result.context.items()), markup=False)
    for m in sorted(result.matches, key=lambda m: m.id != result.primary):
        f = m.finding
        tag = " (primary)" if m.id == result.primary and len(result.matches) > 1 else ""
        con.print(f"[bold {_STYLE[f.severity]}]{f.severity}[/] [bold]{m.id}[/]{tag}: {m.title}  "
                  f"[dim]({m.subsystem}, log line {m.line})[/]")
        con.print(f"  evidence: {m.evidence}", markup=False)
        if m.values:
            con.print("  values:   " + ", ".join(f"{k}={v}" for k, v in m.values.items()), markup=False)
        con.print(f"  cause:    {m.cause}", markup=False)
        con.print(f"  fix:      {m.fix}", markup=False)
        con.print(f"  vLLM:     {m.versions}; seen in: {', '.join(m.sources)}", markup=False)
    if result.plan_change:
        con.print("\n[bold]Plan change:[/]")
        for key, change in result.plan_change.items():
            before = f"{change['from']} -> " if "from" in change else ""
            con.print(f"  {key}: {before}{change['to']}   ({change['because']})", markup=False)
    if result.triage is not None:
        t = result.triage
        head = "No specific cause recognised." if not result.known else "Only a generic symptom was recognised."
        if result.learned is not None:
            g = result.learned
            con.print(f"\n[yellow]{head}[/]")
            con.print(g.note, markup=False)
            if g.label:
                con.print(f"  best guess: {g.label} ({g.subsystem})", markup=False)
                con.print(f"  cause:      {g.cause}", markup=False)
                con.print(f"  fix:        {g.fix}", markup=False)
            con.print(f"Triage: most likely the [bold]{t.subsystem}[/] subsystem.")
        else:
            con.print(f"\n[yellow]{head}[/] Triage: most likely the [bold]{t.subsystem}[/] subsystem.")
        for line in t.evidence or result.suspicious_lines[:3] or ["(no error-like lines found)"]:
            con.print(f"  evidence: {line}", markup=False)
        # a learned guess is in the triage's subsystem, or the triage found none: the guess's list then
        playbook = result.learned or t
        con.print("[bold]Check:[/]")
        for item in playbook.checklist:
            con.print(f"  - {item}", markup=False)
        next_steps(con, *playbook.commands)
        return
    next_steps(con, "vlmctl plan ... --json > plan.json   # re-plan with the change", "vlmctl serve --plan plan.json")
