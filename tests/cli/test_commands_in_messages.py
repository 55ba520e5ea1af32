"""Every `vlmctl ...` command that src/ or the docs tell a user to run names a command and flags the CLI really has.

Read with ast from every string in src/ (f-string fields become a placeholder): backticked spans
(`` `vlmctl plan X --gpus T:N` ``) and example lines that start with ``vlmctl`` (help texts, fixes). The
command words are walked down click's command tree; each ``--flag`` / ``-f`` must be an option of the
command reached (or ``--help``). Anything after `` -- `` is passed through to vLLM and is not checked.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import click

from vlmctl.cli.main import cli

SRC = Path(__file__).resolve().parents[2] / "src" / "vlmctl"
HOLE = "\x00"  # an f-string field
#: A backticked span, or a command at the start of a line / after "e.g.", "run", "then", "with", "use", "try".
SPANS = re.compile(r"`(vlmctl [^`]*)`|(?:^|\n|e\.g\.,? |\b(?:run|then|with|use|try) |: |\()[ \t]*(vlmctl [a-z][^\n`;),]*)")
FLAG = re.compile(r"(?<![\w-])(--?[A-Za-z][-A-Za-z0-9]*)")


def _titles(tree: ast.AST) -> set[int]:
    """Window and schema titles ("vlmctl chat"): names, not commands."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "title":
            skip.update(id(n) for n in ast.walk(node.value))
        elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Subscript) and getattr(t.slice, "value", None) == "title" for t in node.targets):
            skip.update(id(n) for n in ast.walk(node.value))
    return skip


def _strings(tree: ast.AST):
    titles = _titles(tree)  # and the literal parts of f-strings, read whole below
    titles.update(id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values)
    for node in ast.walk(tree):
        if id(node) in titles:
            continue
        if isinstance(node, ast.JoinedStr):
            yield node.lineno, "".join(v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else HOLE
                                       for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def commands_in_source(root: Path = SRC) -> list[tuple[str, str]]:
    """(file:line, command text) for every vlmctl command named in a string under ``root``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for lineno, text in _strings(ast.parse(path.read_text(encoding="utf-8"))):
            for m in SPANS.finditer(text):
                found.append((f"{path.relative_to(root.parents[1])}:{lineno}", (m.group(1) or m.group(2)).strip()))
    return found


def problem(command: str) -> str | None:
    """Why ``command`` (``vlmctl ...``) would not parse as written, or None."""
    words = command.split(" -- ", 1)[0].split()[1:]
    ctx = click.Context(cli, info_name="vlmctl")
    cmd: click.Command = cli
    while words and isinstance(cmd, click.Group):
        word = words[0]
        if HOLE in word or word in ("…", "...") or word.startswith("-"):
            break
        names = re.split(r"[|/]", word)
        subs = [cmd.get_command(ctx, n) for n in names]
        if not all(subs):
            if cmd is cli or not (cmd.params and cmd.invoke_without_command):
                return f"'{word}' is not a command of `{ctx.command_path}`"
            break  # an argument of a group that also runs on its own (vlmctl bench)
        words.pop(0)
        cmd = subs[-1]
        ctx = click.Context(cmd, parent=ctx, info_name=names[-1])
    opts = {"--help", "-h"} | {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
    for word in words:
        for flag in FLAG.findall(word.split("=", 1)[0]) if word.startswith("-") else ():
            if flag not in opts:
                return f"`{ctx.command_path}` has no option {flag}"
    return None


def test_every_command_named_in_src_exists_with_its_flags():
    found = commands_in_source()
    assert len(found) > 100  # the extraction still sees the messages and examples
    bad = [f"{where}: `{command}`: {why}" for where, command in found if (why := problem(command))]
    assert not bad, "\n".join(bad)


def test_the_check_sees_a_wrong_command_and_a_wrong_flag(tmp_path):
    pkg = tmp_path / "src" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "m.py").write_text('X = "run `vlmctl plan M --gpu h100:1`"\nY = f"fix: vlmctl clster up --cluster {1}"\n'
                              'Z = "e.g. vlmctl cluster up --cluster c.yaml -- --any-vllm-flag"\n'
                              'W = dict(title="vlmctl chat")\n')
    found = dict((c, w) for w, c in commands_in_source(pkg))
    assert set(found) == {"vlmctl plan M --gpu h100:1", "vlmctl clster up --cluster \x00",
                          "vlmctl cluster up --cluster c.yaml -- --any-vllm-flag"}
    assert problem("vlmctl plan M --gpu h100:1") == "`vlmctl plan` has no option --gpu"
    assert "'clster' is not a command" in problem("vlmctl clster up --cluster \x00")
    assert problem("vlmctl cluster up --cluster c.yaml -- --any-vllm-flag") is None
    assert problem("vlmctl cluster env|up|join --cluster c.yaml") is None
    assert "'nope' is not a command" in problem("vlmctl cluster nope")


def commands_in_docs(root: Path = SRC.parents[1]) -> list[tuple[str, str]]:
    """(file:line, command) for backticked commands and fenced code lines starting with ``vlmctl`` in the docs."""
    found = []
    for path in [root / "README.md", *sorted((root / "docs").rglob("*.md"))]:
        fenced = False
        lines = re.sub(r"\\\n\s*", " ", path.read_text(encoding="utf-8")).splitlines()  # continued shell lines
        for n, line in enumerate(lines, 1):
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            spans = re.findall(r"`(vlmctl [^`]*)`", line)
            if fenced and re.match(r"\s*(?:\$ )?vlmctl [a-z]", line):
                spans.append(re.sub(r"^\s*(?:\$ )?", "", line.split(" #", 1)[0]))
            found += [(f"{path.relative_to(root)}:{n}", " ".join(part.split()).replace("<", HOLE))
                      for s in spans for part in re.split(r";|&&", s) if part.strip().startswith("vlmctl ")]
    return found


def test_every_command_in_the_docs_exists_with_its_flags():
    found = commands_in_docs()
    assert len(found) > 100
    bad = [f"{where}: `{command}`: {why}" for where, command in found if (why := problem(command))]
    assert not bad, "\n".join(bad)


def test_the_docs_reader_sees_fenced_and_backticked_commands(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("Run `vlmctl plan M --gpu x:1`.\n\n```bash\nvlmctl serve --plan p.json \\\n"
                                        "  --prot 8000   # comment\n```\nvlmctl is prose outside a fence\n")
    found = [c for _, c in commands_in_docs(tmp_path)]
    assert found == ["vlmctl plan M --gpu x:1", "vlmctl serve --plan p.json --prot 8000"]
    assert problem(found[1]) == "`vlmctl serve` has no option --prot"


#: Other tools' flags that fixes name (docker run, ray start, nvidia-smi, huggingface-cli).
OTHER_TOOLS = {"--ipc", "--shm-size", "--node-ip-address", "--address", "--temp-dir", "--num-gpus", "--format",
               "--query-gpu", "--local-dir"}
#: Nothing is left out.
NOT_READ: tuple[str, ...] = ()


def _all_options() -> set[str]:
    from vlmctl.engines.vllm.serve_flags import BY_VERSION

    found: set[str] = set().union(*(f.long for f in BY_VERSION.values()))

    def walk(cmd: click.Command, ctx: click.Context) -> None:
        found.update(o for p in cmd.params for o in (*p.opts, *p.secondary_opts))
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                walk(cmd.get_command(ctx, name), click.Context(cmd, parent=ctx, info_name=name))

    walk(cli, click.Context(cli, info_name="vlmctl"))
    return found


def flags_in_errors(root: Path = SRC) -> list[tuple[str, str]]:
    """(file:line, --flag) for every long flag in an error's message or fix (``…Error(…)``, ``fix=``, ``message=``)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if any(part in NOT_READ for part in path.relative_to(root).parts):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            parts = [k.value for k in node.keywords if k.arg in ("fix", "message")]
            if ast.unparse(node.func).endswith("Error"):
                parts += node.args
            for part in parts:
                for text in (s for _, s in _strings(part)):
                    found += [(f"{path.relative_to(root.parents[1])}:{node.lineno}", f)
                              for f in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]+)", text)]
    return found


def test_every_flag_an_error_names_exists():
    """A --flag in an error or its fix is a vlmctl option, a `vllm serve` flag of a profiled release, or another
    tool's (OTHER_TOOLS)."""
    found = flags_in_errors()
    assert len(found) > 100
    known = _all_options() | OTHER_TOOLS | {"--help"}
    assert [f"{where}: {flag}" for where, flag in found if flag not in known] == []


def test_the_flag_reader_sees_errors_and_fixes(tmp_path):
    pkg = tmp_path / "src" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "m.py").write_text('raise ConfigError(f"--nope {x} is bad.", fix="pass --gpus h100:1")\n'
                              'Finding(id="x", message="try --max-model-len", fix="")\nprint("--not-an-error")\n')
    assert sorted(f for _, f in flags_in_errors(pkg)) == ["--gpus", "--max-model-len", "--nope"]
    assert "--nope" not in _all_options() and "--gpus" in _all_options()
