"""`vlmctl serve --demo-family qwen3_vl`: the demo built as a tiny Qwen3-VL, served for real (image and video)."""
from __future__ import annotations

import pytest

from tests._servers import demo_server
from tests.serve.media_fixtures import data_uri, mp4_bytes, png_bytes
from vlmctl.cli.main import main

pytestmark = [pytest.mark.integration]

httpx = pytest.importorskip("httpx", reason="needs the demo extra")
pytest.importorskip("torch", reason="needs the demo extra")


def _chat(base: str, model: str, content) -> dict:
    body = {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 4}
    resp = httpx.post(f"{base}/chat/completions", json=body, timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_qwen3_vl_demo_serves_image_and_video_on_its_32px_grid(tmp_path):
    from vlmctl.serve.demo.build import demo_model_dir

    with demo_server(args=("--demo-family", "qwen3_vl"), cache_dir=str(tmp_path)) as server:
        assert (demo_model_dir("qwen3_vl").name in {p.name for p in (tmp_path / "models").iterdir()})
        card = httpx.get(f"{server.api_base}/models").json()["data"][0]
        assert card["family"] == "qwen3_vl" and card["demo"] is True and "tiny Qwen3-VL" in card["description"]
        assert httpx.get(f"{server}/health").json()["family"] == "qwen3_vl"
        model = card["id"]
        text = _chat(server.api_base, model, [{"type": "text", "text": "Describe."}])
        image = _chat(server.api_base, model, [
            {"type": "image_url", "image_url": {"url": data_uri(png_bytes(320, 240), "image/png")}},
            {"type": "text", "text": "Describe."},
        ])
        # 320x240 fits the 64-token budget (64 x 32² px) as 295x221, then snaps to the 32-px grid: 288x224,
        # 9 x 7 = 63 image tokens, plus vision start/end (a 28-px grid would give 10 x 8 = 80)
        assert image["usage"]["prompt_tokens"] - text["usage"]["prompt_tokens"] == 63 + 2
        video = _chat(server.api_base, model, [
            {"type": "video_url", "video_url": {"url": data_uri(mp4_bytes(frames=12, width=160, height=96, fps=6), "video/mp4")}},
            {"type": "text", "text": "Describe."},
        ])
        # 2 s sampled at 2 fps = 4 frames of 160x96, on the 32-px grid: 2 temporal steps of 5 x 3 = 15 tokens
        # (a 28-px grid: 168x84, 6 x 3 = 18), each step with its own vision start/end and its "<t seconds>"
        # timestamp (7 tokens with the demo tokenizer), plus the outer vision start/end
        assert video["usage"]["prompt_tokens"] - text["usage"]["prompt_tokens"] == 2 + 2 * (15 + 2 + 7)
        assert video["choices"][0]["finish_reason"] in ("stop", "length")


def test_unknown_demo_family_is_a_one_line_error_with_did_you_mean(capsys):
    assert main(["serve", "--demo-family", "qwen3vl", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "--demo-family 'qwen3vl' is not a demo family" in err and "did you mean 'qwen3_vl'?" in err
    assert "Traceback" not in err
