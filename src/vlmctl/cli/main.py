"""The `vlmctl` entry point: a lazy command registry and the one error boundary.

Each command lives in ``vlmctl.cli.<module>`` as a click object named ``cli``. Modules are
imported only when their command runs (or for ``--help`` of that command), so ``vlmctl plan``
never imports torch, Ray, vLLM or Gradio.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys

import click

from vlmctl import __version__, envs
from vlmctl.errors import VlmctlError

#: command name -> (module under vlmctl.cli, one-line summary)
COMMANDS: dict[str, tuple[str, str]] = {
    "plan": ("plan", "Plan a deployment: will it start, with what context and concurrency."),
    "models": ("models", "List the built-in model catalog; write weight-less model folders."),
    "gpus": ("gpus", "List the built-in GPU catalog."),
    "cluster": ("cluster", "Bring Ray up across nodes with the right per-node environment."),
    "compose": ("compose", "Write one docker-compose file per node."),
    "k8s": ("k8s", "Write KubeRay manifests: a worker group per GPU type."),
    "serve": ("serve", "Launch the planned engine behind an OpenAI-compatible API."),
    "ui": ("ui", "Run the multimodal chat page against any OpenAI-compatible endpoint."),
    "bench": ("bench", "Measure a deployment under multimodal load."),
    "doctor": ("doctor", "Check this node; explain a failure log."),
    "calibrate": ("calibrate", "Fit the planner's memory constants to this node's vLLM and GPU."),
}


def _available(name: str) -> bool:
    return importlib.util.find_spec(f"vlmctl.cli.{COMMANDS[name][0]}") is not None


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if _available(name)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS or not _available(cmd_name):
            return None
        module = importlib.import_module(f"vlmctl.cli.{COMMANDS[cmd_name][0]}")
        return module.cli

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=LazyGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="vlmctl")
def cli() -> None:
    """Plan, launch, chat with and benchmark Qwen2.5-VL on Ray + vLLM.

    \b
    The loop:
      vlmctl plan Qwen/Qwen2.5-VL-7B-Instruct --gpus a100-80gb:2
      vlmctl cluster up --cluster cluster.yaml
      vlmctl serve --plan plan.json
      vlmctl bench --api-base http://127.0.0.1:8000/v1
      vlmctl doctor explain engine.log
    """


def report_error(exc: VlmctlError) -> None:
    """Print a known error as one message line plus its fix, on stderr."""
    click.secho(f"error: {exc.message}", fg="red", err=True)
    if exc.fix:
        click.echo(f"  fix: {exc.fix}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; known errors become one message and an exit code, unknown ones re-raise."""
    try:
        cli.main(args=argv, prog_name="vlmctl", standalone_mode=False)
    except VlmctlError as exc:
        if envs.debug():
            raise
        report_error(exc)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
