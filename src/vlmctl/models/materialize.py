"""Write a weight-less model folder from the built-in catalog, for ``vllm serve --load-format dummy``.

The folder holds the checkpoint's own ``config.json`` (real dimensions), ``preprocessor_config.json``
(the real image settings), ``video_preprocessor_config.json`` for families that ship one (Qwen3-VL,
Qwen3.5), ``generation_config.json`` and a small locally trained tokenizer
(:func:`vlmctl.models.tokenizer.build_tokenizer`) whose special tokens sit at the family's own ids
(151643… for Qwen2.5-VL/Qwen3-VL, 248044… for Qwen3.5). The config's token ids (image, video, vision
start/end/pad, bos, eos, pad) are set to the tokenizer's, so the processor's placeholders and the model
agree. No weights: the folder is only useful with dummy weights.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

from vlmctl.errors import ConfigError
from vlmctl.models.catalog import catalog_entry
from vlmctl.models.tokenizer import build_tokenizer, config_token_ids

#: Files every materialized folder holds (plus video_preprocessor_config.json where the family has one).
FILES = ("config.json", "preprocessor_config.json", "generation_config.json", "tokenizer.json",
         "tokenizer_config.json", "chat_template.json")


def _dump(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _filler(i: int) -> str:
    """A byte-level token for id ``i`` that decodes to a short lower-case word with a leading space."""
    letters = ""
    while True:
        i, r = divmod(i, 26)
        letters += chr(97 + r)
        if not i:
            return "Ġ" + letters


#: Qwen2.5's learned vocabulary size: its special and added tokens start at this id.
QWEN_BASE_VOCAB = 151643


def _qwen_layout(out_dir: Path, ids: dict[str, int], first_special: int | None = None) -> dict[str, int]:
    """Move the special/added tokens to the family's ids (``first_special``…) and give every id below them a token.

    Random (dummy) weights sample ids across the whole embedding; ids with no token decode to nothing,
    so a streamed answer would carry no text. The filler entries are reachable by decoding only (no
    merges produce them), so encoding is unchanged. Returns the shifted ``{token: id}``.
    """
    path = out_dir / "tokenizer.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    base = min(ids.values())
    if first_special is None:
        first_special = QWEN_BASE_VOCAB
    shift = first_special - base
    for tok in data.get("added_tokens", []):
        tok["id"] += shift
    vocab = data["model"]["vocab"]
    used = set(vocab)
    for i in range(base, first_special):
        tok = _filler(i)
        while tok in used:
            tok += "q"
        vocab[tok] = i
        used.add(tok)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    cfg_path = out_dir / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg["added_tokens_decoder"] = {str(int(k) + shift): v for k, v in cfg["added_tokens_decoder"].items()}
    cfg_path.write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    return {t: i + shift for t, i in ids.items()}


def materialize(model_id: str, out_dir: Path, *, vocab_size: int = 4000, overwrite: bool = False) -> dict:
    """Write the folder for catalog id ``model_id`` into ``out_dir``; return the config written.

    Raises ConfigError if the id is unknown or ``out_dir`` already holds a ``config.json``
    (unless ``overwrite``).
    """
    entry = catalog_entry(model_id)
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"'{out_dir}' exists and is not a folder.", fix="choose a new folder path")
    if (out_dir / "config.json").exists() and not overwrite:
        raise ConfigError(f"'{out_dir}' already holds a config.json.",
                          fix="choose an empty folder, or pass --overwrite")
    out_dir.mkdir(parents=True, exist_ok=True)

    ids = _qwen_layout(out_dir, build_tokenizer(out_dir, vocab_size=vocab_size), entry.first_special_id)
    token_ids = config_token_ids(ids)
    config = copy.deepcopy(entry.config)
    text = config.get("text_config")
    if isinstance(text, dict):  # nested (Qwen3-VL, Qwen3.5): text_config keeps the published bos/eos
        config.update({k: v for k, v in token_ids.items() if k in config})
    else:
        config.update(token_ids)
    config["vision_config"] = dict(config.get("vision_config", {}))
    config["_name_or_path"] = entry.id
    config["vlmctl_materialized"] = {"from": entry.id, "weights": "none (use --load-format dummy)",
                                     "tokenizer": f"locally trained BPE, {vocab_size} learned tokens"}

    generation = copy.deepcopy(entry.generation)
    generation.update(bos_token_id=token_ids["bos_token_id"],
                      eos_token_id=[token_ids["eos_token_id"], token_ids["bos_token_id"]],
                      pad_token_id=token_ids["pad_token_id"])

    _dump(out_dir / "config.json", config)
    _dump(out_dir / "preprocessor_config.json", dict(entry.preprocessor))
    if entry.video_preprocessor:
        _dump(out_dir / "video_preprocessor_config.json", dict(entry.video_preprocessor))
    _dump(out_dir / "generation_config.json", generation)
    # The tokenizer config's model_max_length bounds vLLM's derived max_model_len: keep the checkpoint's.
    tok_cfg_path = out_dir / "tokenizer_config.json"
    tok_cfg = json.loads(tok_cfg_path.read_text(encoding="utf-8"))
    tok_cfg["model_max_length"] = entry.model_max_length
    _dump(tok_cfg_path, tok_cfg)
    return config
