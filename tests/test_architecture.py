"""The import arrows of design.md: specs -> plan -> launch -> (cluster, serve) -> (ui, bench); failures beside.

Read from the source with ``ast`` (no import side effects), so a new module is checked the moment it exists.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "vlmctl"
HEAVY = ("torch", "ray", "vllm", "gradio", "transformers", "fastapi", "uvicorn", "matplotlib", "PIL", "av")

# package -> vlmctl packages it must never import
FORBIDDEN = {
    "plan": ("serve", "cluster", "cli", "doctor", "ui", "bench", "calibrate", "launch", "failures"),
    "launch": ("serve", "cluster", "cli", "doctor", "ui", "bench", "calibrate"),
    "models": ("plan", "launch", "serve", "cluster", "cli", "doctor", "ui", "bench", "calibrate"),
    "hardware": ("plan", "launch", "serve", "cluster", "cli", "doctor", "ui", "bench", "calibrate"),
    "engines": ("plan", "launch", "serve", "cluster", "cli", "doctor", "ui", "bench", "calibrate"),
    "failures": ("serve", "cluster", "cli", "doctor", "ui", "bench"),
    "serve": ("cli", "doctor", "ui", "bench"),
    "cluster": ("cli", "serve", "ui", "bench"),
    "doctor": ("cli", "serve", "ui", "bench"),
    "calibrate": ("cli", "serve", "ui", "bench"),
    "ui": ("cli", "serve", "bench", "cluster"),
    "bench": ("cli", "serve", "ui", "cluster"),
}
PURE = ("plan", "launch", "models", "hardware", "engines")


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(module, at_top_level) for every import in a file; relative imports resolved inside vlmctl."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    for node in tree.body:  # imports under `if TYPE_CHECKING:` never run
        if isinstance(node, ast.If):
            top.update(id(n) for n in node.body + node.orelse)
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(parts[: len(parts) - node.level])
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((name, id(node) in top))
    return found


def _modules(package: str) -> list[Path]:
    root = PACKAGE / package
    if root.is_dir():
        return sorted(root.rglob("*.py"))
    single = PACKAGE / f"{package}.py"
    return [single] if single.exists() else []


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_nothing_above_it(package):
    bad = []
    for path in _modules(package):
        for name, _ in _imports(path):
            head = name.split(".")
            if head[0] == "vlmctl" and len(head) > 1 and head[1] in FORBIDDEN[package]:
                bad.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("package", PURE)
def test_pure_packages_import_nothing_heavy_at_module_level(package):
    bad = [f"{path.relative_to(PACKAGE)} imports {name}"
           for path in _modules(package) for name, top in _imports(path)
           if top and name.split(".")[0] in HEAVY]
    assert not bad, "\n".join(bad)


def test_library_never_imports_the_cli():
    bad = [f"{path.relative_to(PACKAGE)} imports {name}"
           for path in PACKAGE.rglob("*.py") if path.relative_to(PACKAGE).parts[0] != "cli"
           for name, _ in _imports(path) if name.startswith("vlmctl.cli")]
    assert not bad, "\n".join(bad)


def test_the_checker_sees_a_violation(tmp_path, monkeypatch):
    fake = tmp_path / "vlmctl" / "plan"
    fake.mkdir(parents=True)
    (fake / "bad.py").write_text("from vlmctl.serve import argv\nimport torch\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "vlmctl")
    with pytest.raises(AssertionError, match="imports vlmctl.serve"):
        test_package_imports_nothing_above_it("plan")
    with pytest.raises(AssertionError, match="imports torch"):
        test_pure_packages_import_nothing_heavy_at_module_level("plan")
