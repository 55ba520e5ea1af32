"""The CPU engine's batched decode step gives the same logits and caches as one request at a time."""
from __future__ import annotations

import asyncio

import pytest

torch = pytest.importorskip("torch", reason="needs the demo extra")


@pytest.fixture(scope="module")
def engine():
    from tests._servers import shared_cache_dir

    mp = pytest.MonkeyPatch()
    mp.setenv("VLMCTL_CACHE_DIR", shared_cache_dir())
    from vlmctl.serve.demo.build import ensure_demo_model
    from vlmctl.serve.demo.engine import Engine

    eng = Engine(ensure_demo_model(), threads=1)
    eng.shutdown()  # drive the steps by hand
    yield eng
    mp.undo()


def _prefilled(engine, loop):
    import numpy as np
    from PIL import Image

    from vlmctl.serve.demo.engine import Prepared, Sequence

    seqs = []
    image = Image.fromarray((np.random.default_rng(0).random((120, 160, 3)) * 255).astype("uint8"))
    for content, images in (
        ("hi", None),
        ([{"type": "image"}, {"type": "text", "text": "What is in this picture, in detail?"}], [image]),
        ("a somewhat longer question about nothing in particular", None),
    ):
        text = engine.processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
        inputs = dict(engine.processor(text=[text], images=images, return_tensors="pt"))
        seq = Sequence(Prepared(inputs=inputs, prompt_tokens=inputs["input_ids"].shape[1], max_tokens=100,
                                temperature=0), loop)
        engine._prefill(seq)
        seqs.append(seq)
    return seqs


def test_batched_decode_matches_one_at_a_time(engine):
    loop = asyncio.new_event_loop()
    try:
        with torch.inference_mode():
            seqs = _prefilled(engine, loop)
            assert len({s.cache.get_seq_length() for s in seqs}) == 3  # different lengths: padding is exercised
            assert seqs[1].rope_delta != 0  # the image request has M-RoPE positions
            alone = _prefilled(engine, loop)  # the same requests again, stepped one at a time
            for _ in range(3):
                rows = engine._decode_batch(seqs)
                for seq, logits in zip(seqs, rows):
                    engine._accept(seq, logits)
                for seq in alone:
                    engine._decode(seq)
            for batched, single in zip(seqs, alone):
                assert batched.token_ids == single.token_ids
                for a, b in zip(batched.cache.layers, single.cache.layers):
                    assert a.keys.shape == b.keys.shape
                    assert torch.allclose(a.keys, b.keys, atol=1e-5) and torch.allclose(a.values, b.values, atol=1e-5)
    finally:
        loop.close()
