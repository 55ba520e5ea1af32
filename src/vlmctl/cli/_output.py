"""One output sink: rich tables for people on stdout, progress on stderr, JSON for scripts."""
from __future__ import annotations

import json
import os
import sys
from typing import Any

from rich.console import Console


def console(stderr: bool = False) -> Console:
    """A rich console that honours NO_COLOR and never wraps JSON-like output oddly."""
    return Console(stderr=stderr, no_color=bool(os.environ.get("NO_COLOR")), highlight=False)


def emit_json(data: Any) -> None:
    """Write ``data`` as indented JSON on stdout (pydantic models welcome)."""
    if hasattr(data, "model_dump"):
        data = data.model_dump(mode="json")
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


def next_steps(con: Console, *commands: str) -> None:
    """End a success with the next commands to run."""
    if commands:
        con.print("\n[bold]Next:[/bold]")
        for cmd in commands:
            con.print(f"  {cmd}", markup=False, highlight=False)


def check_writable(path: str | os.PathLike, flag: str) -> None:
    """Refuse an output path that cannot be written, before any work is done (ConfigError naming it)."""
    from pathlib import Path

    from vlmctl.errors import ConfigError

    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"{flag} {path} is a directory.", fix=f"{flag} {target / 'result.json'}")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise ConfigError(f"{flag} {path}: the folder {folder} does not exist.",
                          fix=f"mkdir -p {folder}, or write somewhere else")
    if not os.access(folder, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise ConfigError(f"{flag} {path} is not writable by this user.", fix=f"{flag} ./{target.name}")
