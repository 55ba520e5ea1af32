"""Where an OpenAI-compatible client (bench, ui) sends requests: base URL and key, with the OpenAI fallbacks.

The URL comes from the flag, else ``OPENAI_BASE_URL``, else ``http://127.0.0.1:8000/v1``; a server
root (``http://host:8000``, as vLLM's ``--base-url`` takes it) gets ``/v1`` added, a URL with a path
is kept. The key comes from the flag, else ``VLMCTL_API_KEY``, else ``OPENAI_API_KEY``.
"""
from __future__ import annotations

import re

from vlmctl import envs
from vlmctl.errors import ConfigError

DEFAULT_API_BASE = "http://127.0.0.1:8000/v1"


def normalise_api_base(url: str, flag: str = "--api-base") -> str:
    """``http://host:8000`` -> ``http://host:8000/v1``; a URL with a path is kept (trailing / dropped)."""
    base = url.strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+", base):
        raise ConfigError(f"{flag} '{url}' is not an http(s) URL.",
                          fix=f"pass the server's base URL, e.g. {flag} http://127.0.0.1:8000/v1")
    path = base.partition("://")[2].partition("/")[2]
    return base if path else base + "/v1"


def api_base(url: str | None, flag: str = "--api-base") -> str:
    """The flag's URL, else $OPENAI_BASE_URL, else the local default; normalised."""
    if url:
        return normalise_api_base(url, flag)
    env = envs.openai_base_url()
    if env:
        return normalise_api_base(env, "OPENAI_BASE_URL")
    return DEFAULT_API_BASE


def api_key(key: str | None) -> str | None:
    """The flag's key, else $VLMCTL_API_KEY (or $VLLM_API_KEY), else $OPENAI_API_KEY; checked by ``check_key``."""
    if key:
        return check_key(key, "--api-key")
    value, name = envs.api_key_with_source()
    if value:
        return check_key(value, name)
    value = envs.openai_api_key()
    return check_key(value, "OPENAI_API_KEY") if value else None


def check_key(key: str, source: str, fix: str = "") -> str:
    """The key, if it can travel in an HTTP header (visible ASCII, no spaces); else a ConfigError naming it."""
    for position, char in enumerate(key):
        if not ("\x21" <= char <= "\x7e"):
            shown = repr(char) if char.isprintable() else f"U+{ord(char):04X}"
            raise ConfigError(
                f"the API key from {source} has {shown} at position {position}; a key travels in the HTTP "
                "Authorization header, which carries only visible ASCII (letters, digits, punctuation; no spaces).",
                fix=fix or f"send the key the server was started with, via {source}; keys made with "
                           "`openssl rand -hex 32` are always valid",
            )
    return key
