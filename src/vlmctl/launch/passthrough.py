"""Extra `vllm serve` arguments given after ``--``: checked against the flags vLLM knows, never against the plan's."""
from __future__ import annotations

from vlmctl.errors import ConfigError, did_you_mean
from vlmctl.launch.vllm_flags import FLAGS

#: Plan fields `vlmctl plan` derives from the layout it chooses (no option of their own).
_FROM_LAYOUT = ("data_parallel_size_local", "data_parallel_backend", "distributed_executor_backend")
#: Plan fields that `vlmctl plan` takes as on/off flags.
_SWITCHES = ("enforce_eager", "enable_expert_parallel")

#: Flags the plan or `vlmctl serve` sets, and where to change each instead.
OWNED: dict[str, str] = {
    **{flag: f"the plan sets it: plan again with vlmctl plan … --{field.replace('_', '-')}"
             f"{'' if field in _SWITCHES else ' VALUE'} -o plan.json"
       for field, flag in FLAGS.items()
       if field not in ("host", "port", "api_key", "served_model_name", "config", "media_io_kwargs", "kv_cache_memory_bytes",
                        *_FROM_LAYOUT)},
    **{FLAGS[field]: "the plan sets it from where it places replicas and stages: plan again with "
                     "vlmctl plan … --data-parallel-size N -o plan.json, or for other nodes with --cluster cluster.yaml"
       for field in _FROM_LAYOUT},
    "--kv-cache-memory-bytes": "the plan sets it: edit kv_cache_memory_bytes in plan.json",
    "--media-io-kwargs": "the plan sets it from its video frame budget: plan again with a different --limit-mm-per-prompt",
    "--served-model-name": "the plan sets it: edit served_model_name in plan.json",
    "--host": "use vlmctl serve --host ADDRESS",
    "--port": "use vlmctl serve --port PORT",
    "--api-key": "keys never go on a command line: vlmctl serve --api-key KEY or VLMCTL_API_KEY (passed as VLLM_API_KEY)",
}

_EXAMPLE = "vlmctl serve --plan plan.json -- --enable-auto-tool-choice --tool-call-parser hermes"


def _long(flag: str, short: dict[str, str]) -> str:
    name, _, _ = flag.partition("=")
    if not name.startswith("--"):
        return short.get(name, name)
    return "--" + name[2:].replace("_", "-")


def check_passthrough(args: list[str], vllm_version: str | None = None) -> list[str]:
    """Return ``args`` unchanged when every flag is one `vllm serve` of ``vllm_version`` knows and none is one
    the plan sets."""
    from vlmctl.engines.vllm.serve_flags import serve_flags

    known = serve_flags(vllm_version)
    args = list(args)
    if args and not args[0].startswith("-"):
        raise ConfigError(f"vLLM argument {args[0]!r} after -- is not a flag.",
                          fix=f"pass vLLM flags after --, e.g. {_EXAMPLE}")
    for arg in args:
        if not arg.startswith("-") or arg in ("-", "--") or _is_number(arg):
            if arg == "--":
                raise ConfigError("a second -- among the vLLM arguments.", fix=f"give -- once, e.g. {_EXAMPLE}")
            continue
        flag = _long(arg, known.short)
        if not (flag in known.long or (flag.startswith("--no-") and "--" + flag[5:] in known.long)):
            hint = did_you_mean(flag, sorted(known.long))
            raise ConfigError(f"{arg.partition('=')[0]!r} is not a `vllm serve` {known.version} flag.{hint}",
                              fix="check `vllm serve --help` and pass only its flags after --")
        if flag in OWNED:
            raise ConfigError(f"{arg.partition('=')[0]!r} after -- would override a setting vlmctl controls.",
                              fix=OWNED[flag])
    return args


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
