import subprocess
import sys

from vlmctl.cli.main import main


def test_help_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "Plan, launch, chat with" in out


def test_unknown_command_exits_2(capsys):
    assert main(["no-such-command"]) == 2


def test_help_imports_nothing_heavy():
    code = (
        "import sys; from vlmctl.cli.main import main; main(['--help']);"
        "heavy=[m for m in ('torch','ray','vllm','gradio','transformers') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
