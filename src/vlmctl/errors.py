"""Every error vlmctl raises on purpose, in one place.

Each carries ``fix``: the next command to run or the flag to change. The CLI prints
``error: <message>`` and ``fix: <fix>`` and exits with ``exit_code``; a traceback is shown
only with ``VLMCTL_DEBUG=1``. Errors that are not ``VlmctlError`` are bugs and re-raise.

    VlmctlError
    ├── ConfigError (ValueError)        bad input: flags, cluster file, model folder   exit 2
    ├── PlanInfeasibleError             nothing in the search starts                  exit 3
    ├── ClusterError (RuntimeError)     Ray bring-up, join, verify                    exit 4
    ├── ServeError (RuntimeError)       engine launch / supervision                   exit 5
    ├── DependencyError (ImportError)   an optional extra is not installed            exit 6
    └── BenchError (RuntimeError)       a bench level where no request succeeded      exit 7
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class VlmctlError(Exception):
    """Base of all known vlmctl errors: a one-line message plus the fix."""

    exit_code = 1

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message} Fix: {self.fix}" if self.fix else self.message


class ConfigError(VlmctlError, ValueError):
    """Bad input: a flag, a cluster file, a model folder. Names the value, the rule and the fix."""

    exit_code = 2


class PlanInfeasibleError(VlmctlError):
    """No configuration in the search space starts; the findings say why."""

    exit_code = 3


class ClusterError(VlmctlError, RuntimeError):
    """Ray could not be brought up, joined, verified or stopped."""

    exit_code = 4


class ServeError(VlmctlError, RuntimeError):
    """The engine could not be launched or died."""

    exit_code = 5


class DependencyError(VlmctlError, ImportError):
    """An optional dependency is missing; the fix is the pip extra to install."""

    exit_code = 6


class BenchError(VlmctlError, RuntimeError):
    """A benchmark measured nothing: every request of a level failed."""

    exit_code = 7


def did_you_mean(value: str, choices: Iterable[str], normalise=lambda s: s) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or ``""`` if none is close."""
    by_norm = {normalise(c): c for c in choices}
    close = difflib.get_close_matches(normalise(value), list(by_norm), n=1, cutoff=0.5)
    return f" Did you mean '{by_norm[close[0]]}'?" if close else ""


def require(module: str, extra: str):
    """Import an optional heavy module, or raise DependencyError naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DependencyError(
            f"'{module}' is not installed ({exc}).", fix=f"pip install 'vlmctl[{extra}]'"
        ) from exc
