"""Turn pydantic validation errors into one-line ConfigErrors with "did you mean" for unknown keys."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from vlmctl.errors import ConfigError, did_you_mean

M = TypeVar("M", bound=BaseModel)


def read_json(path: str | os.PathLike, label: str, fix: str, *, unreadable: str = "", unreadable_fix: str = "") -> object:
    """The JSON value in ``path``, or a one-line ConfigError starting with ``label`` (e.g. ``--plan p.json``).

    ``unreadable`` is added to the OS's reason when the file cannot be opened, with ``unreadable_fix`` (else ``fix``).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read it ({exc.strerror}{unreadable}).", fix=unreadable_fix or fix) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{label} is not UTF-8 text.", fix=fix) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{label} is not JSON ({exc}).", fix=fix) from None
    except RecursionError:
        raise ConfigError(f"{label} is nested too deeply to be JSON that vlmctl reads.", fix=fix) from None


def _fields_at(cls: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the (nested) model that holds ``loc[-1]``."""
    model: type[BaseModel] | None = cls
    for part in loc[:-1]:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        ann = field.annotation
        args = getattr(ann, "__args__", ()) or (ann,)
        model = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return list(model.model_fields) if model else []


def parse(cls: type[M], data: object, source: str, fix: str) -> M:
    """Validate ``data`` as ``cls``; the first problem becomes a ConfigError naming ``source``."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        errs = exc.errors()
        err = next((e for e in errs if e["type"] == "extra_forbidden"), errs[0])
        loc = tuple(err["loc"])
        where = ".".join(str(p) for p in loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            hint = did_you_mean(str(loc[-1]), _fields_at(cls, loc))
            allowed = ", ".join(_fields_at(cls, loc))
            raise ConfigError(
                f"{source}: unknown key '{where}'.{hint} Allowed here: {allowed}.", fix=fix
            ) from None
        original = (err.get("ctx") or {}).get("error")
        if isinstance(original, ConfigError):  # a validator's own error already names the value and the fix
            raise ConfigError(f"{source}: {original.message}", fix=original.fix or fix) from None
        msg = err["msg"].removeprefix("Value error, ")
        value = err.get("input")
        shown = f" (got {value!r})" if value is not None and not isinstance(value, (dict, list)) else ""
        raise ConfigError(f"{source}: {where}: {msg}{shown}.", fix=fix) from None
