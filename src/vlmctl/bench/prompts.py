"""Prompt text of a given length in tokens, counted with the model's tokenizer where one is found.

The tokenizer is looked up without downloading anything: ``--tokenizer`` (a folder holding
``tokenizer.json``, or a hub id already in the local Hugging Face cache), else the model path the
server reports (``root`` in ``GET /v1/models``, which vLLM sets to what ``vllm serve`` was given),
else the served model name. Without one, a prompt is that many words of a plain English word list
(about one token each with byte-level BPE) and the result says so.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from vlmctl.errors import ConfigError

_WORDS = ("describe the scene in detail list every object colour position and count then explain what "
          "happens next and why the light falls the way it does").split()


def _tokenizer_file(ref: str) -> Path | None:
    """``tokenizer.json`` for a folder or a hub id in the local cache; None when neither has one."""
    path = Path(ref).expanduser()
    if path.is_file() and path.name.endswith(".json"):
        return path
    if (path / "tokenizer.json").is_file():
        return path / "tokenizer.json"
    if "/" not in ref or ref.startswith(("/", ".", "~")) or ref.count("/") != 1:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(ref, "tokenizer.json")
    except ValueError:
        return None
    return Path(found) if isinstance(found, str) else None


def load_tokenizer(candidates: list[str | None], explicit: str | None = None):
    """(tokenizer, the reference it came from) for the first candidate that has one, else (None, None).

    ``explicit`` (``--tokenizer``) must load: a miss is an error naming it.
    """
    refs = [explicit] if explicit else [c for c in candidates if c]
    for ref in refs:
        file = _tokenizer_file(ref)
        if file is None:
            continue
        try:
            from tokenizers import Tokenizer

            return Tokenizer.from_file(str(file)), ref
        except ImportError:
            break
        except Exception as exc:  # noqa: BLE001 - a corrupt file is reported for --tokenizer, skipped otherwise
            if explicit:
                raise ConfigError(f"--tokenizer '{explicit}': {file} does not load ({exc}).",
                                  fix="pass a folder with a valid tokenizer.json") from exc
    if explicit:
        raise ConfigError(f"--tokenizer '{explicit}' has no tokenizer.json here (a folder, or a hub id in the "
                          "local cache).", fix="pass the model folder, or `huggingface-cli download ID tokenizer.json`")
    return None, None


@dataclass
class PromptMaker:
    """Makes the text part of each request: ``tokens`` long with ``tokenizer``, else that many words."""

    tokens: int
    tokenizer: object | None = None

    @property
    def sizing(self) -> str:
        """How lengths are counted, for the result's meta."""
        return "tokenizer" if self.tokenizer is not None else "words"

    def make(self, rng: random.Random) -> str:
        """A fresh prompt (a random number first, so no two requests share a cached prefix)."""
        head = f"{rng.randrange(10**6)}:"
        if self.tokenizer is None:
            return " ".join([head, *(rng.choice(_WORDS) for _ in range(max(0, self.tokens - 1)))])
        tok = self.tokenizer
        words = [head]
        ids: list[int] = []
        while len(ids) < self.tokens:
            words += [rng.choice(_WORDS) for _ in range(max(4, self.tokens - len(ids)))]
            ids = tok.encode(" ".join(words), add_special_tokens=False).ids
        text = tok.decode(ids[: self.tokens])
        for _ in range(4):  # decode/encode can merge across the cut; trim until the count holds
            n = len(tok.encode(text, add_special_tokens=False).ids)
            if n <= self.tokens:
                break
            text = tok.decode(tok.encode(text, add_special_tokens=False).ids[: self.tokens - (n - self.tokens)])
        return text
