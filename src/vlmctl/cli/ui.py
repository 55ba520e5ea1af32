"""`vlmctl ui`: the chat page alone, against any OpenAI-compatible endpoint."""
from __future__ import annotations

import click

from vlmctl.errors import ConfigError, ServeError


@click.command(name="ui")
@click.option("--api-base", default=None, metavar="URL",
              help="The API's base URL, e.g. http://127.0.0.1:8000/v1 (vLLM, vlmctl serve, …). "
                   "Default: $OPENAI_BASE_URL, else http://127.0.0.1:8000/v1.")
@click.option("--api-key", default=None, metavar="KEY",
              help="Bearer key the API expects (default: $VLMCTL_API_KEY, else $OPENAI_API_KEY).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address the page listens on; 0.0.0.0 opens it to the network.")
@click.option("--port", default=7860, show_default=True, type=click.IntRange(0, 65535),
              help="Port of the page (0: any free port).")
def cli(api_base: str | None, api_key: str | None, host: str, port: int) -> None:
    """Run the multimodal chat page against any OpenAI-compatible endpoint.

    \b
    Examples:
      vlmctl ui --api-base http://127.0.0.1:8000/v1
      VLMCTL_API_KEY="$(cat ~/.vlmctl-key)" vlmctl ui --api-base http://gpu-head:8000/v1 --port 7861
      vlmctl ui --api-base http://127.0.0.1:8000/v1 --host 0.0.0.0   # share on the LAN
      OPENAI_BASE_URL=http://gpu-head:8000/v1 vlmctl ui              # the OpenAI client variables work too
    """
    from vlmctl.cli._output import console
    from vlmctl.ui.app import build_app
    from vlmctl import endpoint

    base = endpoint.api_base(api_base, "--api-base")
    if port == 0:
        port = _free_port(host)
    demo = build_app(base, endpoint.api_key(api_key))
    con = console(stderr=True)
    con.print(f"chat page for {base}", markup=False)
    try:
        _, url, _ = demo.launch(
            server_name=host, server_port=port, prevent_thread_lock=True,
            inbrowser=False, share=False, quiet=True, footer_links=[],
        )
    except Exception as exc:  # Gradio reports a busy port as OSError or its own error
        if isinstance(exc, OSError) or "port" in str(exc).lower():
            raise ConfigError(
                f"cannot listen on {host}:{port}: the port is in use or not allowed.",
                fix="pick another --port (or --port 0 for any free one)",
            ) from exc
        raise ServeError(f"the chat page did not start: {exc}", fix="re-run with VLMCTL_DEBUG=1") from exc
    click.echo(f"Chat page: {url}", err=False)
    con.print(f"Next: open {url} in a browser; Ctrl+C stops the page.", markup=False)
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        demo.close()


def _free_port(host: str) -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
