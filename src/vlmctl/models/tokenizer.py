"""A small Qwen2.5-VL-shaped tokenizer trained locally: no hub, no download.

``build_tokenizer(out_dir)`` trains a byte-level BPE (Qwen2's pre-tokenizer regex and byte-level
decoder) on text generated here, appends the Qwen2.5-VL special tokens after the learned vocabulary,
and writes ``tokenizer.json`` + ``tokenizer_config.json`` (with Qwen2.5-VL's chat template, which
handles image and video content parts). It returns the special-token ids so a ``config.json`` can set
``image_token_id``, ``video_token_id``, ``vision_start_token_id``, ``vision_end_token_id`` and
``eos_token_id`` to match. Training is deterministic: the same ``vocab_size`` gives the same ids.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

#: Qwen2.5-VL's special tokens, in Qwen's own order (their ids follow the learned vocabulary).
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
#: Added (non-special) tokens Qwen2.5 also carries.
ADDED_TOKENS = [
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
]

#: Qwen2.5-VL-7B-Instruct's chat template (chat_template.json), verbatim.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

#: Qwen2's pre-tokenizer split pattern (tokenizer.json of Qwen2.5-VL).
_QWEN_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

_WORDS = (
    "the a an this that image picture photo video frame scene person people dog cat car street tree sky "
    "water house table chair window door light shadow red green blue yellow black white small large left "
    "right top bottom center background foreground shows contains describe what where how many is are "
    "was were there here of in on at with and or but not no yes one two three four five six seven eight "
    "nine ten model answer question user assistant system helpful please tell me about text number color "
    "shape object moving standing sitting running walking looking holding wearing near behind front "
    "between under over inside outside first second last time second minute camera view close far "
    "bright dark sunny cloudy rain snow road building city park beach mountain river field animal bird "
    "fish horse cow sheep boy girl man woman child group crowd hand face eye hair shirt hat bag ball "
    "book phone computer screen sign letter word line box circle square triangle pattern texture"
).split()
_SENTENCES = [
    "Describe this image in one sentence.",
    "What is happening in the video?",
    "How many people are in the picture?",
    "The quick brown fox jumps over the lazy dog.",
    "You are a helpful assistant.",
    "I can see a small red car parked near a tree.",
    "There are 3 dogs and 2 cats; the total is 5.",
    "def main():\n    print('hello, world')\n    return 0\n",
    '{"role": "user", "content": "What colour is the sky?"}',
    "Qwen2.5-VL is a vision-language model. vLLM serves it over an OpenAI-compatible API.",
]


_SYLLABLES = [c + v for c in "bcdfghjklmnprstvwyz" for v in "aeiou"] + ["th", "sh", "ch", "ng", "st", "er", "in"]


def _corpus(n_lines: int = 12000, seed: int = 0) -> list[str]:
    """Deterministic training text: fixed sentences, words, pseudo-words, numbers and punctuation."""
    rng = random.Random(seed)
    lexicon = _WORDS + ["".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 4))) for _ in range(6000)]
    lines = list(_SENTENCES) * 20
    for _ in range(n_lines):
        words = [rng.choice(lexicon) for _ in range(rng.randint(4, 16))]
        words[0] = words[0].capitalize()
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words)), str(rng.randint(0, 10_000)))
        lines.append(" ".join(words) + rng.choice([".", "?", "!", ",", ":", " -", "\n"]))
    return lines


def build_tokenizer(out_dir: Path, vocab_size: int = 4000) -> dict[str, int]:
    """Train the tokenizer into ``out_dir`` and return ``{special or added token: id}``.

    Writes ``tokenizer.json`` and ``tokenizer_config.json`` (``Qwen2Tokenizer``, eos ``<|im_end|>``,
    pad ``<|endoftext|>``, Qwen2.5-VL's chat template). ``vocab_size`` counts the learned tokens
    only; the special and added tokens come after them.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    tok.add_special_tokens(SPECIAL_TOKENS)
    tok.add_tokens(ADDED_TOKENS)
    tok.save(str(out_dir / "tokenizer.json"))

    ids = {t: tok.token_to_id(t) for t in SPECIAL_TOKENS + ADDED_TOKENS}
    decoder = {
        str(ids[t]): {
            "content": t,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": t in SPECIAL_TOKENS,
        }
        for t in SPECIAL_TOKENS + ADDED_TOKENS
    }
    config = {
        "tokenizer_class": "Qwen2Tokenizer",
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": decoder,
        "additional_special_tokens": [t for t in SPECIAL_TOKENS if t not in ("<|endoftext|>", "<|im_end|>")],
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "errors": "replace",
        "split_special_tokens": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 32768,
        "chat_template": CHAT_TEMPLATE,
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out_dir / "chat_template.json").write_text(json.dumps({"chat_template": CHAT_TEMPLATE}, indent=2) + "\n")
    return ids


def config_token_ids(ids: dict[str, int]) -> dict[str, int]:
    """The Qwen2.5-VL ``config.json`` keys that must match the tokenizer."""
    return {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "vision_token_id": ids["<|vision_pad|>"],
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }
