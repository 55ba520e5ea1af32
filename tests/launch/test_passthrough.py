"""`vlmctl serve … -- <vLLM args>`: passed through when vLLM knows the flag, refused with a "did you mean" when
it does not, refused when the plan owns the setting; a stray `--` is an error, not silently ignored."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vlmctl.cli.main import main
from vlmctl.errors import ConfigError
from vlmctl.launch import check_passthrough
from vlmctl.engines.vllm.serve_flags import BY_VERSION
from vlmctl.plan import make_plan


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("pt") / "plan.json"
    path.write_text(make_plan("Qwen/Qwen2.5-VL-7B-Instruct", gpus="h100-80gb:1").model_dump_json())
    return str(path)


def _serve(capsys, plan_file, *args):
    code = main(["serve", "--plan", plan_file, "--dry-run", "--json", *args])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


def test_known_flags_reach_the_vllm_argv_in_order(capsys, plan_file):
    code, data, _ = _serve(capsys, plan_file, "--", "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
                           "--no-enable-prefix-caching", "--max_loras=2")
    assert code == 0
    assert data["argv"][-5:] == ["--enable-auto-tool-choice", "--tool-call-parser", "hermes",
                                 "--no-enable-prefix-caching", "--max_loras=2"]


def test_a_misspelt_flag_is_refused_with_the_closest_one(capsys, plan_file):
    code, _, err = _serve(capsys, plan_file, "--", "--enable-auto-tool-chioce")
    version = json.loads(open(plan_file).read())["plan"]["vllm_version"]
    assert code == 2 and f"'--enable-auto-tool-chioce' is not a `vllm serve` {version} flag" in err
    assert "Did you mean '--enable-auto-tool-choice'?" in err and "vllm serve --help" in err


def test_a_stray_double_dash_is_an_error(capsys, plan_file):
    code, _, err = _serve(capsys, plan_file, "--")
    assert code == 2 and "-- is followed by nothing" in err and "drop the --" in err


@pytest.mark.parametrize(("args", "needle"), [
    (["--tensor-parallel-size", "4"], "plan again with vlmctl plan … --tensor-parallel-size"),
    (["-tp", "4"], "plan again with vlmctl plan … --tensor-parallel-size"),
    (["--max-model-len=9000"], "--max-model-len VALUE"),
    (["--api-key", "abc"], "keys never go on a command line"),
    (["--port", "9000"], "vlmctl serve --port"),
])
def test_settings_the_plan_or_serve_owns_are_refused(capsys, plan_file, args, needle):
    code, _, err = _serve(capsys, plan_file, "--", *args)
    assert code == 2 and "would override a setting vlmctl controls" in err and needle in err
    assert "abc" not in err or "--api-key" not in args


def test_a_value_without_a_flag_is_refused(capsys, plan_file):
    code, _, err = _serve(capsys, plan_file, "--", "hermes")
    assert code == 2 and "'hermes' after -- is not a flag" in err


def test_vllm_args_without_vllm_are_refused(capsys):
    code = main(["serve", "--dry-run", "--", "--enable-auto-tool-choice"])
    _, err = capsys.readouterr()
    assert code == 2 and "this runs the CPU server" in err


def test_a_model_after_options_still_works_without_double_dash(capsys):
    code = main(["serve", "Qwen/Qwen2.5-VL-7B-Instruct", "--gpus", "h100-80gb:1", "--dry-run", "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["argv"][2] == "Qwen/Qwen2.5-VL-7B-Instruct"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=30), max_size=4))
def test_any_arguments_pass_or_fail_with_a_config_error(args):
    try:
        assert check_passthrough(args) == args
    except ConfigError as exc:
        assert exc.fix and "\n" not in exc.message


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted((v, f) for v, flags in BY_VERSION.items() for f in flags.long)))
def test_every_known_flag_not_owned_passes(version_flag):
    from vlmctl.launch.passthrough import OWNED

    version, flag = version_flag
    if flag in OWNED:
        with pytest.raises(ConfigError):
            check_passthrough([flag], version)
    else:
        assert check_passthrough([flag, "1"], version) == [flag, "1"]


def test_flags_are_checked_against_the_plans_vllm_release():
    only_new = sorted(BY_VERSION["0.33.0"].long - BY_VERSION["0.26.0"].long)[0]
    assert check_passthrough([only_new], "0.33.0") == [only_new]
    with pytest.raises(ConfigError, match="not a `vllm serve` 0.26.0 flag"):
        check_passthrough([only_new], "0.26.0")


def test_every_owned_flags_fix_names_a_real_command_and_options():
    from tests.cli.test_commands_in_messages import SPANS, problem
    from vlmctl.launch.passthrough import OWNED

    commands = [(flag, (m.group(1) or m.group(2)).strip()) for flag, fix in OWNED.items() for m in SPANS.finditer(fix)]
    assert len(commands) >= 20  # all but the "edit plan.json" fixes name a command
    assert [(flag, c, problem(c)) for flag, c in commands if problem(c)] == []
