"""``python -m vlmctl.cli.serve_demo``: the demo server process `vlmctl serve` starts, with the chat page.

The server (``vlmctl.serve.demo``) and the page (``vlmctl.ui``) do not know each other; this entry
point joins them: it runs the server's ``main`` with a ``mount`` that puts the page at ``/chat``.
The page learns what serves it from the API, as `vlmctl ui` does; the mount adds what the API
cannot say (no GPUs, float32).
"""
from __future__ import annotations

import hmac
import time


def _log(msg: str) -> None:
    print(f"INFO {time.strftime('%H:%M:%S')} [vlmctl-demo] {msg}", flush=True)


def mount_chat_page(app, opts, host: str, port: int, path: str):
    """Mount the Gradio chat page (``vlmctl.ui.app.build_app``) at ``path`` on the server's app."""
    try:
        import gradio

        from vlmctl.ui.app import build_app

        info = {"tensor_parallel_size": 1, "pipeline_parallel_size": 1, "dtype": "float32", "gpus": "none (CPU)"}
        local = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        blocks = build_app(api_base=f"http://{local}:{port}/v1", api_key=opts.api_key, info=info)
        login = {}
        if opts.api_key:  # the page calls the API with the key: whoever opens it must know the key too
            key = opts.api_key.encode()
            login = {
                "auth": lambda user, password: hmac.compare_digest(str(password).encode("utf-8", "replace"), key),
                "auth_message": "This server has an API key: sign in with any user name and the key as the password.",
            }
        return gradio.mount_gradio_app(app, blocks, path=path, **login)
    except Exception as exc:  # the API must come up even if the page cannot
        _log(f"chat page not mounted: {type(exc).__name__}: {exc}")
        opts.info["chat_path"] = None
        return app


def main(argv: list[str] | None = None) -> int:
    """The demo server with the chat page."""
    from vlmctl.serve.demo.__main__ import main as serve

    return serve(argv, mount=mount_chat_page)


if __name__ == "__main__":
    from vlmctl.serve.demo.__main__ import exit_with

    exit_with(main)
