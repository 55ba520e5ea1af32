"""`vlmctl serve`: launch the planned engine (vLLM) or the embedded CPU demo, and supervise it."""
from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import click

from vlmctl import envs
from vlmctl.cli._output import console, emit_json, next_steps
from vlmctl.errors import ConfigError, PlanInfeasibleError
from vlmctl.plan.files import read_plan


def _plan_now(model: str, gpus: str | None, cluster: str | None, max_model_len: int | None):
    from vlmctl.engines.vllm import installed_version
    from vlmctl.plan import make_plan

    settings = {"max_model_len": max_model_len} if max_model_len else {}
    if installed := installed_version():  # plan for the vLLM this node runs
        settings["vllm_version"] = installed
    result = make_plan(model, gpus=gpus, cluster=cluster, **settings)
    if not result.ok or result.plan is None:
        errors = [f for f in result.findings if f.severity == "error"]
        first = errors[0] if errors else None
        raise PlanInfeasibleError(
            f"{model} is predicted not to start on {gpus or cluster}: {first.message if first else result.explanation}",
            fix=(first.fix if first and first.fix else "see `vlmctl plan` for the alternatives"),
        )
    return result.plan


def _demo_argv(opts: dict) -> list[str]:
    argv = [sys.executable, "-m", "vlmctl.cli.serve_demo", "--host", opts["host"], "--port", str(opts["port"])]
    if opts["model"]:
        argv += ["--model", str(Path(opts["model"]).expanduser().resolve())]
    elif opts.get("demo_family"):
        argv += ["--demo-family", opts["demo_family"]]
    for flag, key in (("--served-model-name", "served_model_name"), ("--max-model-len", "max_model_len"),
                      ("--allowed-media-dir", "allowed_media_dir")):
        if opts.get(key):
            argv += [flag, str(opts[key])]
    limits = opts.get("media_limits")
    if limits is not None:  # a plan's reservations, enforced by the CPU server directly
        argv += ["--max-pixels", str(limits.max_pixels), "--max-images", str(limits.max_images),
                 "--max-videos", str(limits.max_videos), "--max-video-frames", str(limits.max_video_frames)]
    for flag, key in (("--allow-remote-media", "allow_remote_media"), ("--no-ui", "no_ui"), ("--insecure", "insecure")):
        if opts.get(key):
            argv.append(flag)
    return argv


def _print_ready(con, base: str, models: list[str], chat: str | None, demo: bool | str, log: Path,
                 api_key: str | None):
    con.print(f"[bold green]ready[/bold green]  {', '.join(models)}")
    con.print(f"  API        {base}/v1   (OpenAI-compatible; /health, /metrics)")
    if chat:
        con.print(f"  chat page  {base}{chat}")
    con.print(f"  log        {log}")
    if demo:
        title = demo if isinstance(demo, str) else "Qwen2.5-VL"
        con.print(f"  [yellow]demo model: tiny {title} with RANDOM weights; answers are meaningless text[/yellow]")
    auth = ' -H "Authorization: Bearer $VLMCTL_API_KEY"' if api_key else ""
    body = json.dumps({"model": models[0], "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 32})
    next_steps(
        con,
        f"curl {base}/v1/chat/completions -H 'Content-Type: application/json'{auth} -d '{body}'",
        f"vlmctl bench --api-base {base}/v1",
        f"vlmctl ui --api-base {base}/v1",
        "Ctrl-C stops the server",
    )


EXAMPLES = """
\b
Examples:
  vlmctl serve                                   # the embedded demo (tiny random Qwen2.5-VL, CPU)
  vlmctl serve --demo-family qwen3_vl            # the same demo as a tiny random Qwen3-VL
  vlmctl serve --model ./Qwen2.5-VL-3B-Instruct  # a real small checkpoint on CPU (slow)
  vlmctl serve --plan plan.json                  # the planned vLLM engine
  vlmctl serve Qwen/Qwen2.5-VL-7B-Instruct --gpus h100-80gb:1 --dry-run
  vlmctl serve --plan plan.json --dry-run --json # argv + env as JSON
  vlmctl serve --host 0.0.0.0 --api-key-file ~/.vlmctl-key  # reachable from other machines
  vlmctl serve --plan plan.json -- --enable-auto-tool-choice --tool-call-parser hermes   # more vLLM flags

\b
Arguments after -- go to `vllm serve` unchanged, after a check against the flags vLLM knows;
the plan's own settings (TP, PP, max-model-len, …) are changed by planning again, not here.
"""


class _PassthroughCommand(click.Command):
    """Splits the command line at the first ``--``: what follows is for `vllm serve`, not for click."""

    def parse_args(self, ctx, args):
        if "--" in args:
            i = args.index("--")
            ctx.meta["vllm_args"] = args[i + 1:]
            args = args[:i]
        return super().parse_args(ctx, args)


@click.command("serve", cls=_PassthroughCommand,
               help="Launch the planned engine behind an OpenAI-compatible API.\n" + EXAMPLES)
@click.argument("model", required=False)
@click.option("--model", "model_opt", metavar="PATH", help="Model folder or catalog id (same as MODEL).")
@click.option("--plan", "plan_path", metavar="FILE", help="Plan from `vlmctl plan --json` (serves it with vLLM).")
@click.option("--gpus", help="Plan on the fly for these GPUs, e.g. rtx-2080-ti:2,rtx-2080-ti:2 (vLLM).")
@click.option("--cluster", metavar="FILE",
              help="Cluster file: plan on the fly for it, or (with --plan) set this head node's NCCL/Gloo env (vLLM).")
@click.option("--engine", type=click.Choice(["auto", "vllm", "cpu"]), default="auto", show_default=True,
              help="auto: vLLM when a plan/GPUs are given, else the CPU server.")
@click.option("--dry-run", is_flag=True, help="Print the command and environment; start nothing.")
@click.option("--json", "as_json", is_flag=True, help="With --dry-run: argv and env as JSON.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--api-key-file", default=None, metavar="FILE",
              help="Require the key in FILE (Bearer). Default: $VLMCTL_API_KEY, else $VLLM_API_KEY.")
@click.option("--api-key", default=None, metavar="KEY",
              help="Require this key; visible to other users in `ps`: prefer --api-key-file or VLMCTL_API_KEY.")
@click.option("--health-timeout", type=click.FloatRange(1, 86400), default=30.0, show_default=True,
              help="Seconds without an answer from /health, once ready, before the engine counts as frozen.")
@click.option("--on-unhealthy", type=click.Choice(["stop", "restart", "warn"]), default="stop", show_default=True,
              help="What to do with a frozen engine.")
@click.option("--insecure", is_flag=True, help="Allow a non-loopback --host without an API key.")
@click.option("--served-model-name", default=None, help="Name clients use (CPU server; vLLM takes the plan's).")
@click.option("--max-model-len", type=int, default=None, help="Context length (CPU server, or planning on the fly).")
@click.option("--demo-family", default=None, metavar="FAMILY",
              help="Family of the embedded demo model: qwen2_5_vl (default) or qwen3_vl (CPU server, no --model).")
@click.option("--no-ui", is_flag=True, help="Do not mount the chat page at /chat (CPU server).")
@click.option("--allow-remote-media", is_flag=True, help="Let requests fetch http(s) media URLs (CPU server).")
@click.option("--allowed-media-dir", default=None, metavar="DIR", help="Allow local media paths under DIR (CPU server).")
@click.option("--log-file", default=None, metavar="FILE", help="Engine log (default: under the cache dir).")
@click.option("--ready-timeout", type=float, default=1800.0, show_default=True, help="Seconds to wait for ready.")
@click.option("--force", is_flag=True, help="Launch a plan made for another vLLM release than the installed one "
                                           "(with a warning).")
@click.option("--vllm-bin", default="vllm", show_default=True,
              help="How to run vLLM, e.g. 'python3 -m vllm.entrypoints.cli.main'.")
@click.option("--cuda-visible-devices", metavar="IDS",
              help="Override CUDA_VISIBLE_DEVICES of vllm serve (containers renumber their GPUs from 0).")
def cli(model, model_opt, plan_path, gpus, cluster, engine, dry_run, as_json, host, port, api_key_file, api_key,
        health_timeout, on_unhealthy, insecure,
        served_model_name, max_model_len, demo_family, no_ui, allow_remote_media, allowed_media_dir, log_file, ready_timeout,
        force, vllm_bin, cuda_visible_devices):
    from vlmctl.serve.safety import check_bind

    if model and model_opt and model != model_opt:
        raise ConfigError(f"MODEL '{model}' and --model '{model_opt}' disagree.", fix="give the model once")
    model = model or model_opt
    if not 0 < port < 65536:
        raise ConfigError(f"--port {port} is not a TCP port (1-65535).", fix="--port 8000")
    if as_json and not dry_run:
        raise ConfigError("--json only applies to --dry-run.", fix="add --dry-run")
    from vlmctl.serve.safety import read_api_key

    api_key, key_warnings = read_api_key(api_key, api_key_file)
    for warning in key_warnings:
        console(stderr=True).print(f"warning: {warning}", markup=False)
    vllm_args = click.get_current_context().meta.get("vllm_args")
    if vllm_args is not None and not vllm_args:
        raise ConfigError("-- is followed by nothing: there are no vLLM arguments to pass.",
                          fix="drop the --, or put vLLM flags after it: vlmctl serve --plan plan.json -- --enable-auto-tool-choice")
    use_vllm = engine == "vllm" or (engine == "auto" and bool(plan_path or gpus or cluster))
    if demo_family is not None:
        from vlmctl.serve.demo import demo_family as known_demo_family

        demo_family = known_demo_family(demo_family).key
    plan = None
    if engine == "cpu" and (gpus or cluster):
        raise ConfigError("--engine cpu does not plan for GPUs.", fix="drop --gpus/--cluster, or use --engine vllm")
    if vllm_args and not use_vllm:
        raise ConfigError(f"arguments after -- ({' '.join(vllm_args)}) are for vLLM, but this runs the CPU server.",
                          fix="serve a plan with vLLM: vlmctl serve --plan plan.json -- " + " ".join(vllm_args))
    if use_vllm:
        if demo_family:
            raise ConfigError(f"--demo-family {demo_family} picks the CPU demo model, but this runs vLLM.",
                              fix=f"vlmctl serve --demo-family {demo_family} (without --plan/--gpus/--cluster)")
        if plan_path and gpus:
            raise ConfigError("--plan and --gpus both given.", fix="use the plan file, or plan on the fly")
        if plan_path:
            plan = read_plan(plan_path, require_ok=True)
        elif model and (gpus or cluster):
            plan = _plan_now(model, gpus, cluster, max_model_len)
        else:
            raise ConfigError("the vLLM engine needs a plan.", fix="--plan plan.json, or MODEL --gpus TYPE:N")
        spec, env = _vllm_launch(plan, cluster, vllm_args, host, port, api_key, vllm_bin.split(), write=not dry_run)
        if cuda_visible_devices is not None:
            env["CUDA_VISIBLE_DEVICES"] = cuda_visible_devices
        argv = spec.vllm_argv
    else:
        media_limits = None
        if plan_path:  # serve a local checkpoint on CPU within the plan's media reservations
            plan = read_plan(plan_path, require_ok=True)
            media_limits, max_model_len = plan.media_limits, max_model_len or plan.max_model_len
            model = model or plan.model_path
        if demo_family and model:
            raise ConfigError(f"--demo-family {demo_family} picks the built-in demo model, but --model {model} "
                              "is given.", fix=f"drop --demo-family to serve {model}, or drop --model")
        if model and not Path(model).expanduser().is_dir():
            raise ConfigError(
                f"--model {model}: the CPU server needs a local checkpoint folder.",
                fix="give a folder with config.json and weights, or add --gpus/--plan to serve it with vLLM",
            )
        argv = _demo_argv(dict(host=host, port=port, model=model, served_model_name=served_model_name,
                               max_model_len=max_model_len, allowed_media_dir=allowed_media_dir, demo_family=demo_family,
                               allow_remote_media=allow_remote_media, no_ui=no_ui, insecure=insecure,
                               media_limits=media_limits))
        env = {"VLMCTL_API_KEY": api_key} if api_key else {}

    if dry_run:
        shown = {k: ("<redacted>" if k.endswith("API_KEY") else v) for k, v in env.items()}
        if as_json:
            emit_json({"engine": "vllm" if use_vllm else "cpu", "argv": argv, "env": shown})
        elif use_vllm:
            click.echo(spec.vllm_shell(env))
        else:
            import shlex

            click.echo("\n".join([*(f"export {k}={shlex.quote(v)}" for k, v in shown.items()), shlex.join(argv)]))
        return

    check_bind(host, api_key, insecure)
    if plan is not None and use_vllm:
        warning = check_vllm_version(plan, force)
        if warning:
            console(stderr=True).print(f"warning: {warning}", markup=False)
    if plan is not None and use_vllm and len(plan.nodes) > 1:
        console(stderr=True).print(
            f"this plan spans {len(plan.nodes)} nodes: Ray must already run on all of them with each node's "
            "environment (vlmctl cluster up / join; check with vlmctl cluster verify)"
            + ("" if cluster else "; pass --cluster FILE so this head's NCCL/Gloo values are set and kept off "
               "the Ray workers"), markup=False)
    demo = not use_vllm and not model
    if demo:
        from vlmctl.serve.demo import DEFAULT_DEMO_FAMILY, DEMO_FAMILIES

        demo = DEMO_FAMILIES[demo_family or DEFAULT_DEMO_FAMILY].title
    _supervise(argv, env, host, port, api_key, plan, log_file, ready_timeout, demo=demo,
               health=(health_timeout, on_unhealthy))


def check_vllm_version(plan, force: bool, installed: str | None = None) -> str | None:
    """Refuse (ConfigError) a plan made for another vLLM release than the one installed here; with ``force``, the
    warning to print instead. None when they match or vLLM is not installed in this environment."""
    from vlmctl.engines.vllm import installed_version, same_series

    installed = installed or installed_version()
    if installed is None or same_series(installed, plan.vllm_version):
        return None
    what = (f"the plan was made for vLLM {plan.vllm_version}, but this node has vLLM {installed}: flags, defaults "
            "and memory figures differ between releases, so its predictions do not hold")
    if force:
        return what + " (--force: launching anyway)."
    raise ConfigError(what + ".", fix=f"vlmctl plan {plan.model} … --vllm-version {installed} -o plan.json, "
                                      "or add --force to launch this plan anyway")


def _vllm_launch(plan, cluster_file, vllm_args, host, port, api_key, launcher, write: bool):
    """The launch spec and the environment of `vllm serve` on this head (its files written unless ``write`` is False)."""
    from vlmctl.launch import build_launch

    if cluster_file:
        from vlmctl.cluster.env import driver_env, launch_spec
        from vlmctl.clusterspec import load_cluster

        cluster = load_cluster(cluster_file)
        spec = launch_spec(cluster, plan, passthrough=vllm_args, host=host, port=port, launcher=launcher)
        if spec.multi_node:
            return spec, driver_env(cluster, plan=plan, launch=spec, api_key=api_key, write_file=write)
        return spec, spec.driver_env(api_key=api_key)
    spec = build_launch(plan, None, passthrough=vllm_args, host=host, port=port, launcher=launcher,
                        state_root=envs.state_root())
    if write and spec.multi_node and not spec.head_address:
        raise ConfigError(f"this plan spans {len(spec.nodes)} nodes and does not know the head's address, so vLLM "
                          "could not find the Ray cluster (RAY_ADDRESS).",
                          fix="vlmctl serve --plan PLAN --cluster cluster.yaml (or plan with --cluster instead of --gpus)")
    return spec, spec.driver_env(api_key=api_key)


def _supervise(argv, env, host, port, api_key, plan, log_file, ready_timeout, demo: bool | str,
               health: tuple[float, str] = (30.0, "stop")) -> None:
    from vlmctl.serve.supervise import Launch, Supervisor

    err = console(stderr=True)
    log = Path(log_file) if log_file else Path(envs.cache_dir()) / "logs" / f"serve-{port}.log"
    sup = Supervisor(
        Launch(argv=argv, env=env, host=host, port=port, api_key=api_key, log_path=log),
        on_phase=lambda name: err.print(f"  [dim]·[/dim] {name}"),
        plan=plan,
    )
    stopping = False

    def _terminate(signum, frame):
        if not stopping:
            raise KeyboardInterrupt
        err.print("second interrupt: killing the engine now", markup=False)
        sup.kill()

    previous = {sig: signal.signal(sig, _terminate) for sig in (signal.SIGINT, signal.SIGTERM)}
    what = "the CPU server" if "vlmctl.cli.serve_demo" in argv else " ".join(argv[: argv.index("serve") + 2])
    err.print(f"starting {'the demo server' if demo else what} (log: {log})", markup=False)
    sup.start()
    try:
        models = sup.wait_ready(ready_timeout)
        checked = sup.kv_report()
        if checked is not None:
            line, finding = checked
            err.print(line, markup=False)
            if finding is not None:
                err.print(f"warning [{finding.id}] {finding.message}\n  fix: {finding.fix}", markup=False)
        _, body = sup._get("/health")
        chat = (body or {}).get("chat_path")
        _print_ready(console(), sup.launch.base_url, models, chat, demo, log, api_key)
        sys.stdout.flush()
        sup.watch(health[0], health[1], on_note=lambda text: err.print(f"warning: {text}", markup=False))
        raise sup.death_error()
    except KeyboardInterrupt:
        stopping = True
        err.print("stopping… (press Ctrl-C again to kill it now)")
    finally:
        stopping = True
        sup.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    err.print("stopped")
