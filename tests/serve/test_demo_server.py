"""The embedded demo server, for real: `vlmctl serve` as a subprocess on a free port, the openai client.

One server serves the module (fixture ``server``); tests that need other flags start their own.
"""
from __future__ import annotations

import json
import threading
import time

import pytest

from tests._servers import demo_server, metric, scrape
from tests.serve.media_fixtures import data_uri, huge_png_bytes, mp4_bytes, png_bytes

pytestmark = [pytest.mark.integration]

httpx = pytest.importorskip("httpx", reason="needs the demo extra")
openai = pytest.importorskip("openai", reason="needs the test extra")


@pytest.fixture(scope="module")
def server():
    with demo_server() as url:
        yield url


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=server.api_base, api_key="unused", max_retries=0, timeout=60)


def _model(server) -> str:
    return httpx.get(f"{server.api_base}/models").json()["data"][0]["id"]


def _chat(server, body, **kw):
    return httpx.post(f"{server.api_base}/chat/completions", json=body, timeout=60, **kw)


def _still_serves(client, server):
    out = client.chat.completions.create(
        model=_model(server), messages=[{"role": "user", "content": "still there?"}], max_tokens=4
    )
    assert out.choices[0].message.role == "assistant"
    assert out.usage.completion_tokens >= 1


def test_models_health_metrics_say_demo(server):
    models = httpx.get(f"{server.api_base}/models").json()
    card = models["data"][0]
    assert card["demo"] is True and card["random_weights"] is True
    assert "RANDOM weights" in card["description"]
    health = httpx.get(f"{server}/health")
    assert health.status_code == 200 and health.json()["demo"] is True
    metrics = httpx.get(f"{server}/metrics").text
    assert "vllm:num_requests_running" in metrics and "vlmctl_demo_random_weights 1" in metrics


def test_text(client, server):
    out = client.chat.completions.create(
        model=_model(server), messages=[{"role": "user", "content": "Say hello."}], max_tokens=8
    )
    assert out.object == "chat.completion"
    assert out.choices[0].finish_reason in ("stop", "length")
    assert out.usage.prompt_tokens > 5 and 1 <= out.usage.completion_tokens <= 8
    assert out.usage.total_tokens == out.usage.prompt_tokens + out.usage.completion_tokens


def test_one_image_data_uri(client, server):
    image = data_uri(png_bytes(320, 240), "image/png")
    text_only = client.chat.completions.create(
        model=_model(server), messages=[{"role": "user", "content": "Describe."}], max_tokens=2
    )
    out = client.chat.completions.create(
        model=_model(server),
        messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": image}},
            {"type": "text", "text": "Describe."},
        ]}],
        max_tokens=8,
    )
    # the image became vision tokens in the prompt (320x240 -> 8x12 patches of 28 -> 48+ tokens)
    assert out.usage.prompt_tokens >= text_only.usage.prompt_tokens + 40
    assert out.choices[0].message.content is not None


def test_short_real_mp4_video(client, server):
    video = data_uri(mp4_bytes(frames=12, fps=6), "video/mp4")
    out = client.chat.completions.create(
        model=_model(server),
        messages=[{"role": "user", "content": [
            {"type": "video_url", "video_url": {"url": video}},
            {"type": "text", "text": "What happens?"},
        ]}],
        max_tokens=8,
    )
    assert out.usage.prompt_tokens > 30
    assert out.choices[0].finish_reason in ("stop", "length")


def test_streaming_ends_with_done_and_usage(server):
    body = {
        "model": _model(server),
        "messages": [{"role": "user", "content": "Count to five."}],
        "max_tokens": 12,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    lines = []
    with httpx.stream("POST", f"{server.api_base}/chat/completions", json=body, timeout=60) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in resp.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    finish = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(finish) == 1
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] >= 1
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text


def test_streaming_with_openai_client(client, server):
    stream = client.chat.completions.create(
        model=_model(server), messages=[{"role": "user", "content": "hi"}], max_tokens=6, stream=True
    )
    chunks = list(stream)
    assert chunks and chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_three_turn_conversation_with_image_in_turn_one(client, server):
    image = data_uri(png_bytes(200, 150, (10, 120, 240)), "image/png")
    messages = [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": image}},
        {"type": "text", "text": "What colour is this?"},
    ]}]
    prompt_sizes = []
    for follow_up in ("Are you sure?", "Name a similar colour."):
        out = client.chat.completions.create(model=_model(server), messages=messages, max_tokens=6, seed=1)
        prompt_sizes.append(out.usage.prompt_tokens)
        messages += [
            {"role": "assistant", "content": out.choices[0].message.content},
            {"role": "user", "content": follow_up},
        ]
    out = client.chat.completions.create(model=_model(server), messages=messages, max_tokens=6, seed=1)
    prompt_sizes.append(out.usage.prompt_tokens)
    assert prompt_sizes[0] < prompt_sizes[1] < prompt_sizes[2]  # history (image included) is re-sent
    assert out.choices[0].message.content is not None


def test_seeded_greedy_is_deterministic(server):
    body = {"model": _model(server), "messages": [{"role": "user", "content": "x"}], "max_tokens": 6,
            "temperature": 0}
    assert _chat(server, body).json()["choices"][0]["message"] == _chat(server, body).json()["choices"][0]["message"]


def test_concurrent_streams_all_complete(server):
    results, errors = [], []

    def one(i):
        try:
            body = {"model": _model(server), "messages": [{"role": "user", "content": f"req {i}"}],
                    "max_tokens": 10, "stream": True}
            with httpx.stream("POST", f"{server.api_base}/chat/completions", json=body, timeout=60) as resp:
                lines = [line for line in resp.iter_lines() if line]
            results.append(lines[-1])
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and results == ["data: [DONE]"] * 8


def test_client_disconnect_stops_generation(server):
    before = _cancelled(server)
    body = {"model": _model(server), "messages": [{"role": "user", "content": "long"}], "max_tokens": 3000,
            "stream": True}
    with httpx.stream("POST", f"{server.api_base}/chat/completions", json=body, timeout=60) as resp:
        for n, _ in enumerate(resp.iter_lines()):
            if n > 6:
                break
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _cancelled(server) <= before:
        time.sleep(0.2)
    assert _cancelled(server) == before + 1
    assert "vllm:num_requests_running" in httpx.get(f"{server}/metrics").text


def _cancelled(server) -> float:
    return metric(scrape(server), "vlmctl_requests_cancelled_total")


def _image_msg(url: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                         {"type": "text", "text": "?"}]}]


def _bad_cases(model: str) -> list[tuple[str, dict, int, str]]:
    png = png_bytes(64, 64)
    ok_text = [{"role": "user", "content": "hi"}]
    big_prompt = [{"role": "user", "content": "word " * 5000}]
    return [
        ("corrupt image", {"messages": _image_msg(data_uri(b"\x89PNG\r\n\x1a\nnot really a png", "image/png"))},
         400, "not a readable image"),
        ("zero-byte image", {"messages": _image_msg("data:image/png;base64,")}, 400, "empty"),
        ("truncated image", {"messages": _image_msg(data_uri(png_bytes(300, 300, (1, 2, 3))[:-60], "image/png"))},
         400, "corrupt or truncated"),
        ("20000x20000 png", {"messages": _image_msg(data_uri(huge_png_bytes(), "image/png"))}, 413, "400000000 pixels"),
        ("image sent as text/plain", {"messages": _image_msg(data_uri(png, "text/plain"))}, 415, "content type"),
        ("video sent as image/png", {"messages": [{"role": "user", "content": [
            {"type": "video_url", "video_url": {"url": data_uri(png, "image/png")}}]}]}, 415, "content type"),
        ("bad base64", {"messages": _image_msg("data:image/png;base64,@@@notbase64@@@")}, 400, "base64"),
        ("remote url (SSRF off)", {"messages": _image_msg("http://169.254.169.254/latest/meta-data")}, 403,
         "remote image URLs are disabled"),
        ("local path not allowed", {"messages": _image_msg("file:///etc/passwd")}, 403, "local image paths are disabled"),
        ("unknown content part", {"messages": [{"role": "user", "content": [{"type": "audio", "audio": "x"}]}]},
         400, "supported types are text, image_url and video_url"),
        ("unknown model", {"model": "gpt-5", "messages": ok_text}, 404, "does not exist"),
        ("prompt longer than max_model_len", {"messages": big_prompt}, 400, "maximum context length"),
        ("negative max_tokens", {"messages": ok_text, "max_tokens": -5}, 400, "at least 1"),
        ("huge max_tokens", {"messages": ok_text, "max_tokens": 10**9}, 400, "maximum context length"),
        ("max_tokens not an integer", {"messages": ok_text, "max_tokens": "ten"}, 400, "integer"),
        ("temperature out of range", {"messages": ok_text, "temperature": 7}, 400, "at most 2"),
        ("empty messages", {"messages": []}, 400, "non-empty list"),
        ("too many images", {"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": data_uri(png, "image/png")}}] * 5}]}, 400, "at most 4"),
        ("unknown role", {"messages": [{"role": "wizard", "content": "x"}]}, 400, "not supported"),
        ("n > 1", {"messages": ok_text, "n": 3}, 400, "'n' must be 1"),
    ]


def test_bad_input_matrix_each_a_clear_4xx_and_server_survives(server, client):
    model = _model(server)
    cases = _bad_cases(model)
    assert len(cases) >= 15
    failures = []
    for name, body, status, words in cases:
        body = {"model": model, **body}
        resp = _chat(server, body)
        message = resp.json().get("error", {}).get("message", "") if resp.headers.get("content-type", "").startswith(
            "application/json") else resp.text
        if resp.status_code != status or words.lower() not in message.lower():
            failures.append(f"{name}: {resp.status_code} {message[:160]!r} (want {status} with {words!r})")
    assert not failures, "\n".join(failures)
    _still_serves(client, server)


def test_invalid_json_wrong_content_type_and_oversized_body(server, client):
    url = f"{server.api_base}/chat/completions"
    resp = httpx.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert resp.status_code == 400 and "not valid JSON" in resp.json()["error"]["message"]
    resp = httpx.post(url, content=b"messages=hi", headers={"content-type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 415 and "application/json" in resp.json()["error"]["message"]
    resp = httpx.post(url, content=b"[1, 2]", headers={"content-type": "application/json"})
    assert resp.status_code == 400 and "JSON object" in resp.json()["error"]["message"]
    big = b'{"messages": "' + b"a" * (65 * 1024 * 1024) + b'"}'
    resp = httpx.post(url, content=big, headers={"content-type": "application/json"}, timeout=60)
    assert resp.status_code == 413
    _still_serves(client, server)


def test_api_key_enforced():
    with demo_server(api_key="s3cret") as server:
        body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        missing = _chat(server, body)
        assert missing.status_code == 401 and "API key" in missing.json()["error"]["message"]
        wrong = _chat(server, body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert httpx.get(f"{server.api_base}/models").status_code == 401
        assert httpx.get(f"{server}/health").status_code == 200  # probes stay open, as in vLLM
        good = openai.OpenAI(base_url=server.api_base, api_key="s3cret", max_retries=0)
        out = good.chat.completions.create(model=good.models.list().data[0].id,
                                           messages=[{"role": "user", "content": "hi"}], max_tokens=2)
        assert out.usage.completion_tokens >= 1
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=server.api_base, api_key="bad", max_retries=0).models.list()


def test_local_media_only_from_allowed_dir(tmp_path):
    allowed = tmp_path / "media"
    allowed.mkdir()
    (allowed / "cat.png").write_bytes(png_bytes(80, 60))
    (tmp_path / "secret.png").write_bytes(png_bytes(80, 60))
    with demo_server(args=("--allowed-media-dir", str(allowed))) as server:
        ok = _chat(server, {"messages": _image_msg(f"file://{allowed / 'cat.png'}"), "max_tokens": 2})
        assert ok.status_code == 200, ok.text
        outside = _chat(server, {"messages": _image_msg(str(allowed / ".." / "secret.png")), "max_tokens": 2})
        assert outside.status_code == 403 and "outside the allowed media directory" in outside.json()["error"]["message"]
        relative = _chat(server, {"messages": _image_msg("cat.png"), "max_tokens": 2})
        assert relative.status_code == 400


def test_video_frames_are_capped_by_media_limits(server):
    short = data_uri(mp4_bytes(frames=8, fps=4), "video/mp4")
    longer = data_uri(mp4_bytes(frames=120, fps=6), "video/mp4")  # 20 s at 6 fps -> 40 frames at 2 fps

    def prompt_tokens(url):
        body = {"messages": [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": url}}]}],
                "max_tokens": 1}
        resp = _chat(server, body)
        assert resp.status_code == 200, resp.text
        return resp.json()["usage"]["prompt_tokens"]

    base = prompt_tokens(short)
    capped = prompt_tokens(longer)
    # 16 sampled frames at most -> 8 temporal groups; per group 2x2 merged tokens of a 64x48 frame
    assert base < capped <= base * 8


@pytest.mark.slow
def test_chat_page_mounted_at_chat():
    pytest.importorskip("gradio", reason="the chat page needs the ui extra")
    with demo_server(ui=True) as server:
        assert httpx.get(f"{server}/health").json()["chat_path"] == "/chat"
        root = httpx.get(f"{server}/", follow_redirects=False)
        assert root.status_code in (302, 307) and root.headers["location"].endswith("/chat")
        page = httpx.get(f"{server}/chat/", follow_redirects=True, timeout=30)
        assert page.status_code == 200 and "<html" in page.text.lower()
        # the API next to it still answers
        assert _chat(server, {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}).status_code == 200


@pytest.mark.slow
def test_real_checkpoint_folder_with_a_plans_media_limits(tmp_path):
    """`--model PATH` serves a checkpoint folder on CPU (not the demo), within a plan's media limits."""
    import shutil

    from tests._servers import shared_cache_dir
    from vlmctl.plan import make_plan
    from vlmctl.serve.demo.build import demo_model_dir

    with demo_server():  # makes sure the shared cache holds a built checkpoint to copy
        pass
    source = demo_model_dir().relative_to(demo_model_dir().parents[1])
    folder = tmp_path / "my-qwen"
    shutil.copytree(f"{shared_cache_dir()}/{source}", folder)
    (folder / "vlmctl_demo.json").unlink()
    result = make_plan("Qwen/Qwen2.5-VL-3B-Instruct", gpus="a100-80gb:1")
    plan = result.plan.model_copy(update={
        "max_model_len": 2048,
        "media_limits": result.plan.media_limits.model_copy(update={"max_images": 1, "max_videos": 0}),
    })
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan.model_dump_json())
    with demo_server(args=("--engine", "cpu", "--plan", str(plan_file), "--model", str(folder))) as server:
        card = httpx.get(f"{server.api_base}/models").json()["data"][0]
        assert card["id"] == "my-qwen" and card["max_model_len"] == 2048 and "demo" not in card
        png = data_uri(png_bytes(64, 64), "image/png")
        one = _chat(server, {"messages": _image_msg(png), "max_tokens": 2})
        assert one.status_code == 200, one.text
        two = _chat(server, {"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": png}}] * 2}], "max_tokens": 2})
        assert two.status_code == 400 and "at most 1 per request" in two.json()["error"]["message"]
        video = _chat(server, {"messages": [{"role": "user", "content": [
            {"type": "video_url", "video_url": {"url": data_uri(mp4_bytes(), "video/mp4")}}]}], "max_tokens": 2})
        assert video.status_code == 400 and "at most 0 per request" in video.json()["error"]["message"]
