"""pyproject.toml tells the truth (imports found by reading the source, `require("x", …)` included): every third-party module the package imports is declared (core or an
extra), every package the ui extra declares is imported, and the page's Gradio is bounded."""
from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "vlmctl"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> dict[str, set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"core": project["dependencies"], **project["optional-dependencies"]}
    return {group: {_norm(re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0]) for spec in specs}
            for group, specs in groups.items()}


def _imports(folder: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "require" and node.args \
                    and isinstance(node.args[0], ast.Constant):  # vlmctl.errors.require("gradio", "ui")
                names = [node.args[0].value]
            for name in names:
                top = name.split(".")[0]
                if top != "vlmctl" and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(str(path.relative_to(SRC)))
    return found


@functools.lru_cache(maxsize=1)
def _module_to_distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def _distributions(module: str) -> set[str]:
    return {_norm(d) for d in _module_to_distributions().get(module, [module])}


def test_every_imported_package_is_declared():
    declared = set().union(*_declared().values())
    missing = {m: sorted(files)[:3] for m, files in _imports(SRC).items() if not _distributions(m) & declared}
    assert not missing, f"imported but not in pyproject.toml: {missing}"


def test_the_ui_extra_declares_only_what_the_page_imports_and_bounds_gradio():
    used = set().union(*(_distributions(m) for m in _imports(SRC / "ui")))
    unused = _declared()["ui"] - used
    assert not unused, f"the ui extra declares packages vlmctl.ui never imports: {sorted(unused)}"
    spec = next(s for s in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["ui"]
                if s.startswith("gradio"))
    assert "<7" in spec
