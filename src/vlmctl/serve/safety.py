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
            fix=f"add --api-key-file FILE (or export VLMCTL_API_KEY), or pass --insecure to serve {host} without one",
        )


def check_api_key(key: str, source: str) -> str:
    """The key, if it can travel in an HTTP header (visible ASCII, no spaces); else a ConfigError naming it."""
    from vlmctl.endpoint import check_key

    return check_key(key, source, fix="make a new key: openssl rand -hex 32 > ~/.vlmctl-key && chmod 600 "
                                      "~/.vlmctl-key, then --api-key-file ~/.vlmctl-key")


def read_api_key(flag_value: str | None, key_file: str | None) -> tuple[str | None, list[str]]:
    """The API key and warnings: --api-key-file, else --api-key, else VLMCTL_API_KEY / VLLM_API_KEY.

    A file is read whole (one trailing newline dropped); a file other users can read is a warning.
    """
    import os
    import stat

    from vlmctl import envs

    warnings: list[str] = []
    if key_file and flag_value:
        raise ConfigError("both --api-key and --api-key-file were given.", fix="keep --api-key-file only")
    if key_file:
        try:
            info = os.stat(key_file)
            if not stat.S_ISREG(info.st_mode):
                raise ConfigError(f"--api-key-file {key_file} is not a regular file.",
                                  fix="point --api-key-file at a file holding the key")
            with open(key_file, encoding="utf-8") as fh:
                key = fh.read(4097)
        except FileNotFoundError:
            raise ConfigError(f"--api-key-file {key_file} does not exist.",
                              fix=f"openssl rand -hex 32 > {key_file} && chmod 600 {key_file}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"--api-key-file {key_file} is not UTF-8 text.",
                              fix="write the key as one line of ASCII") from None
        except OSError as exc:
            raise ConfigError(f"--api-key-file {key_file} cannot be read ({exc.strerror}).",
                              fix=f"chmod 600 {key_file} as its owner") from None
        key = key[:-1] if key.endswith("\n") else key
        key = key[:-1] if key.endswith("\r") else key
        if not key or len(key) > 4096:
            raise ConfigError(f"--api-key-file {key_file} holds {'no key' if not key else 'more than 4096 characters'}.",
                              fix=f"openssl rand -hex 32 > {key_file}")
        if info.st_mode & 0o077:
            warnings.append(f"{key_file} can be read by other users (mode {stat.S_IMODE(info.st_mode):o}); "
                            f"chmod 600 {key_file}")
        return check_api_key(key, f"--api-key-file {key_file}"), warnings
    if flag_value:
        warnings.append("--api-key puts the key on the command line, where other users see it in `ps`; "
                        "use --api-key-file FILE or VLMCTL_API_KEY instead")
        return check_api_key(flag_value, "--api-key"), warnings
    key, name = envs.api_key_with_source()
    return (check_api_key(key, name) if key else None), warnings
