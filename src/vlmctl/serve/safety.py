"""Bind and key rules shared by the demo server and the vLLM launch."""
from __future__ import annotations

import ipaddress

from vlmctl.errors import ConfigError


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, api_key: str | None, insecure: bool) -> None:
    """Refuse to listen beyond this machine without an API key, unless ``--insecure`` says so."""
    if not is_loopback(host) and not api_key and not insecure:
        raise ConfigError(
            f"--host {host} exposes the server beyond this machine, and no API key is set.",
            fix=f"add --api-key KEY (or export VLMCTL_API_KEY), or pass --insecure to serve {host} without one",
        )
