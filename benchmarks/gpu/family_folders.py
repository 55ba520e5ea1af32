"""Weight-less Qwen3-VL and Qwen3.5 folders for ``--load-format dummy`` runs (GPU visit, families).

Each folder holds the published ``config.json`` (its source: below), the published
``preprocessor_config.json`` / ``video_preprocessor_config.json`` and a small tokenizer trained with
vlmctl's own :func:`vlmctl.models.tokenizer.build_tokenizer`, laid out by
``vlmctl.models.materialize._qwen_layout`` so every id below the special tokens decodes, with the
special tokens moved to the family's real ids (Qwen3-VL: 151643…, as Qwen2.5-VL; Qwen3.5: 248044…).
The config's token ids are checked against the tokenizer (an error, not a rewrite), so the folder is
the checkpoint's own config verbatim.

    python benchmarks/gpu/family_folders.py OUTDIR [--only 8B,27B]   # then: tar -C OUTDIR -cJf fam.tar.xz .

Folders of ``MATERIALIZED`` (Qwen2-VL-7B) are written by ``vlmctl models materialize`` itself (the catalog entry's
config, processor file and tokenizer), so a serve of that folder tests what a user's materialized folder does.

The configs and processor files are the catalog's own (``vlmctl.models.published``, where ``SOURCES`` says
where each config.json was read).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from vlmctl.models import published  # noqa: E402

IMAGE_PROCESSOR = published.QWEN3_IMAGE_PROCESSOR
VIDEO_PROCESSOR = published.QWEN3_VIDEO_PROCESSOR

#: folder name -> (hub id, config, first special-token id)
FAMILIES = {name: (hub_id, *published.CONFIGS[hub_id]) for name, hub_id in (
    ("8B", "Qwen/Qwen3-VL-8B-Instruct"), ("32B", "Qwen/Qwen3-VL-32B-Instruct"),
    ("30B-A3B", "Qwen/Qwen3-VL-30B-A3B-Instruct"), ("27B", "Qwen/Qwen3.5-27B"), ("35B-A3B", "Qwen/Qwen3.5-35B-A3B"))}


#: folder name -> catalog id, written by vlmctl.models.materialize (the `vlmctl models materialize` command)
MATERIALIZED = {"Q2VL-7B": "Qwen/Qwen2-VL-7B-Instruct"}


def hub_id(name: str) -> str:
    """The model id a folder stands for."""
    return MATERIALIZED[name] if name in MATERIALIZED else FAMILIES[name][0]


def _tokenizer(out: Path, base: int) -> dict[str, int]:
    """vlmctl's tokenizer, its special tokens moved to ``base``…; returns {token: id}."""
    from vlmctl.models.materialize import _qwen_layout
    from vlmctl.models.tokenizer import build_tokenizer

    return _qwen_layout(out, build_tokenizer(out), base)


def _check_ids(name: str, config: dict, ids: dict[str, int]) -> None:
    want = {"image_token_id": "<|image_pad|>", "video_token_id": "<|video_pad|>",
            "vision_start_token_id": "<|vision_start|>", "vision_end_token_id": "<|vision_end|>"}
    for key, tok in want.items():
        if config[key] != ids[tok]:
            raise SystemExit(f"{name}: config {key}={config[key]} but the tokenizer has {tok}={ids[tok]}")
    text = config["text_config"]
    if text["bos_token_id"] != ids["<|endoftext|>"]:
        raise SystemExit(f"{name}: bos {text['bos_token_id']} != <|endoftext|> {ids['<|endoftext|>']}")


def write(name: str, out: Path) -> dict:
    """Write one folder; returns a summary row."""
    if name in MATERIALIZED:
        from vlmctl.models.materialize import materialize

        config = materialize(MATERIALIZED[name], out, overwrite=True)
        return {"folder": name, "hub_id": MATERIALIZED[name], "model_type": config["model_type"],
                "image_token_id": config["image_token_id"], "eos": config["eos_token_id"],
                "vocab_size": config["vocab_size"], "written_by": "vlmctl models materialize"}
    hub_id, config, base = FAMILIES[name]
    out.mkdir(parents=True, exist_ok=True)
    ids = _tokenizer(out, base)
    _check_ids(name, config, ids)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "preprocessor_config.json").write_text(json.dumps(IMAGE_PROCESSOR, indent=2) + "\n")
    (out / "video_preprocessor_config.json").write_text(json.dumps(VIDEO_PROCESSOR, indent=2) + "\n")
    eos = ids["<|im_end|>"]
    gen = {"bos_token_id": ids["<|endoftext|>"], "eos_token_id": [eos, ids["<|endoftext|>"]],
           "pad_token_id": ids["<|endoftext|>"], "do_sample": False}
    (out / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")
    tok_cfg_path = out / "tokenizer_config.json"
    tok_cfg = json.loads(tok_cfg_path.read_text())
    tok_cfg["model_max_length"] = config["text_config"]["max_position_embeddings"]
    tok_cfg_path.write_text(json.dumps(tok_cfg, indent=2) + "\n")
    return {"folder": name, "hub_id": hub_id, "model_type": config["model_type"],
            "image_token_id": ids["<|image_pad|>"], "eos": eos, "vocab_size": config["text_config"]["vocab_size"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--only", default="", help="comma-separated folder names (default: all)")
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n] or [*FAMILIES, *MATERIALIZED]
    unknown = [n for n in names if n not in FAMILIES and n not in MATERIALIZED]
    if unknown:
        raise SystemExit(f"unknown folder name(s) {unknown}: choose from {[*FAMILIES, *MATERIALIZED]}")
    for name in names:
        print(json.dumps(write(name, args.out / name)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
