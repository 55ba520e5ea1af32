"""One profile per supported vLLM version, and the lookup the rest of vlmctl uses.

Adding a version = one module here plus one line in ``_MODULES``; nothing else in vlmctl names a version.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from vlmctl.engines.vllm import v0_26, v0_33
from vlmctl.engines.vllm.profile import GIB, Calibration, VllmProfile

_MODULES = (v0_26, v0_33)

#: Supported profiles by version, oldest first.
PROFILES: dict[str, VllmProfile] = {m.PROFILE.version: m.PROFILE for m in _MODULES}
#: The newest supported version (what `vlmctl plan` plans for unless told otherwise).
NEWEST: str = list(PROFILES)[-1]
#: The release plan files without a ``vllm_version`` were made for (vlmctl planned for it alone until versions).
LEGACY: str = v0_26.VERSION

__all__ = ["GIB", "LEGACY", "NEWEST", "PROFILES", "Calibration", "Resolved", "VllmProfile", "parse_version", "profile",
           "installed_version", "resolve", "same_series"]


def parse_version(text: str) -> tuple[int, ...] | None:
    """'0.26.0' / 'v0.26' / '0.26.0+cu130' / '0.27.0rc1' → (0, 26, 0); None when it is not a version."""
    m = re.fullmatch(r"\s*v?(\d+)\.(\d+)(?:\.(\d+))?(?:[.+-]?\w*)*\s*", text or "")
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


@dataclass(frozen=True)
class Resolved:
    """The profile chosen for a requested version."""

    requested: str
    profile: VllmProfile

    @property
    def exact(self) -> bool:
        """True when the requested release is in the profile's MAJOR.MINOR series (patch releases share one)."""
        return same_series(self.requested, self.profile.version)


def resolve(version: str | None = None) -> Resolved:
    """The profile for ``version`` (default: the newest), or the nearest supported one.

    Nearest = the same major.minor if supported, else the newest profile not newer than the request, else the oldest.
    Raises ConfigError when ``version`` is not a version string.
    """
    if not version:
        return Resolved(NEWEST, PROFILES[NEWEST])
    want = parse_version(version)
    if want is None:
        from vlmctl.errors import ConfigError

        raise ConfigError(f"--vllm-version {version!r} is not a vLLM version (expected MAJOR.MINOR[.PATCH]).",
                          fix=f"--vllm-version {NEWEST} (supported: {', '.join(PROFILES)})")
    keyed = sorted((parse_version(v), p) for v, p in PROFILES.items())
    same_minor = [p for k, p in keyed if k[:2] == want[:2]]
    if same_minor:
        return Resolved(version, same_minor[-1])
    older = [p for k, p in keyed if k <= want]
    return Resolved(version, older[-1] if older else keyed[0][1])


def installed_version() -> str | None:
    """The vLLM release installed in this Python environment (package metadata; vLLM is not imported)."""
    from importlib import metadata

    try:
        return metadata.version("vllm")
    except metadata.PackageNotFoundError:
        return None


def same_series(a: str | None, b: str | None) -> bool:
    """True when two releases share MAJOR.MINOR (patch releases keep flags, defaults and memory figures)."""
    pa, pb = parse_version(a or ""), parse_version(b or "")
    return pa is not None and pb is not None and pa[:2] == pb[:2]


def profile(version: str | None = None) -> VllmProfile:
    """The profile for ``version`` or the nearest supported one (see :func:`resolve`)."""
    return resolve(version).profile
