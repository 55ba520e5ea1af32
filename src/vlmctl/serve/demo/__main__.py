"""``python -m vlmctl.serve.demo``: the demo server process (the API alone).

`vlmctl serve` starts ``python -m vlmctl.cli.serve_demo``, which runs this ``main`` with a ``mount``
that adds the chat page: the server knows nothing of the page. The API key comes from
VLMCTL_API_KEY (never argv, so it does not show in ``ps``).
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from vlmctl import envs
from vlmctl.serve.demo import DEFAULT_DEMO_FAMILY, demo_family
from vlmctl.serve.demo.media import MediaLimits


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vlmctl.serve.demo", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model", default=None, help="checkpoint folder; default: the built-in demo model")
    p.add_argument("--demo-family", default=DEFAULT_DEMO_FAMILY, help="family of the built-in demo model")
    p.add_argument("--served-model-name", default=None)
    p.add_argument("--max-model-len", type=int, default=None)
    p.add_argument("--max-num-seqs", type=int, default=64)
    p.add_argument("--max-tokens-default", type=int, default=128)
    p.add_argument("--max-pixels", type=int, default=None)
    p.add_argument("--max-images", type=int, default=4)
    p.add_argument("--max-videos", type=int, default=1)
    p.add_argument("--max-video-frames", type=int, default=16)
    p.add_argument("--max-input-pixels", type=int, default=25_000_000)
    p.add_argument("--max-video-seconds", type=float, default=120.0)
    p.add_argument("--max-body-mb", type=float, default=64.0)
    p.add_argument("--allow-remote-media", action="store_true")
    p.add_argument("--allowed-media-dir", default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-ui", action="store_true")
    p.add_argument("--insecure", action="store_true")
    return p


def _log(msg: str) -> None:
    print(f"INFO {time.strftime('%H:%M:%S')} [vlmctl-demo] {msg}", flush=True)


def main(argv: list[str] | None = None, mount=None) -> int:
    """Build (if needed) and load the model, serve it with uvicorn.

    ``mount(app, opts, host, port, path)`` (optional) returns ``app`` with a chat page at ``path``.
    """
    args = _parser().parse_args(argv)
    from vlmctl.serve.safety import check_bind

    api_key = envs.api_key()
    check_bind(args.host, api_key, args.insecure)
    from vlmctl.serve.demo.app import DemoServer, ServerOptions, create_app
    from vlmctl.serve.demo.build import MAX_MODEL_LEN, budgets, ensure_demo_model

    demo = args.model is None
    family = demo_family(args.demo_family)
    if demo:
        _log(f"Building the {family.title} demo model (cached after the first run)")
        model_dir = ensure_demo_model(family=family.key)
    else:
        model_dir = Path(args.model).expanduser().resolve()
    name = args.served_model_name or (family.model_name if demo else model_dir.name)
    max_len = args.max_model_len or MAX_MODEL_LEN
    limits = MediaLimits(
        max_pixels=args.max_pixels or budgets(family.key)["image_max"],
        max_images=args.max_images,
        max_videos=args.max_videos,
        max_video_frames=args.max_video_frames,
        max_input_pixels=args.max_input_pixels,
        max_video_seconds=args.max_video_seconds,
        allow_remote=args.allow_remote_media,
        allowed_dir=args.allowed_media_dir,
    )
    opts = ServerOptions(
        model_dir=model_dir,
        served_model_name=name,
        limits=limits,
        max_model_len=max_len,
        default_max_tokens=args.max_tokens_default,
        max_num_seqs=args.max_num_seqs,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        api_key=api_key,
        bind_host=args.host,
        demo=demo,
        notice=family.notice,
        threads=args.threads or (1 if demo else None),
    )
    _log(f"Loading weights from {model_dir}")
    server = DemoServer(opts)
    _log("Model loaded; warming up")
    _warm_up(server)
    from vlmctl.serve.safety import is_loopback

    chat_path = "/chat" if not args.no_ui and mount is not None else None
    if chat_path and api_key and not is_loopback(args.host):
        # the page would call the API with the key for anyone who can reach it: keep it local
        _log("chat page not mounted: an API key is set and the server is reachable from other machines; "
             f"run `vlmctl ui --api-base http://{args.host}:{args.port}/v1` where you chat instead")
        chat_path = None
    opts.info["chat_path"] = chat_path
    app = create_app(opts, server)
    if chat_path:
        app = mount(app, opts, args.host, args.port, chat_path)
    import uvicorn

    chat_path = opts.info.get("chat_path")
    _log(f"Serving {name} on http://{args.host}:{args.port}/v1" + (f" (chat page {chat_path})" if chat_path else ""))
    _redact_access_log()

    class _Server(uvicorn.Server):
        def handle_exit(self, sig, frame):  # first signal: end open streams with an error event, then stop
            server.stopping = True
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="info", timeout_graceful_shutdown=3)
    _Server(config).run()
    server.engine.shutdown()
    return 0


class _RedactQuery:
    """A logging filter: secrets in a query string (``?api_key=...``) never reach the log."""

    PATTERN = re.compile(r"(?i)([?&][^=&\s]*(?:key|token|secret|password|auth)[^=&\s]*=)[^&\s\"]*")

    def filter(self, record) -> bool:
        if record.args:
            record.args = tuple(self.PATTERN.sub(r"\1<redacted>", a) if isinstance(a, str) else a
                                for a in record.args)
        return True


def _redact_access_log() -> None:
    import logging

    logging.getLogger("uvicorn.access").addFilter(_RedactQuery())


def _warm_up(server) -> None:
    """One tiny generation so the first real request does not pay for lazy initialisation."""
    import asyncio

    async def run():
        prepared, _, _ = server.prepare({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
        seq = server.engine.submit(prepared, asyncio.get_running_loop())
        while (await seq.events.get()).kind == "delta":
            pass

    asyncio.run(run())


def exit_with(entry) -> None:
    """Exit with ``entry()``'s status; a known error as its message and fix on stderr, not a traceback."""
    from vlmctl.errors import VlmctlError

    try:
        sys.exit(entry())
    except VlmctlError as exc:
        print(f"error: {exc.message}\n  fix: {exc.fix}", file=sys.stderr)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    exit_with(main)
