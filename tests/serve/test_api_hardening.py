"""Adversarial requests against the real demo server on 127.0.0.1: every error in OpenAI's shape,
a 4xx naming the field for anything the client can fix, never a 5xx, and the server keeps serving.

Property tests (Hypothesis) throw numbers, strings and JSON at the parsing and validation layers.
"""
from __future__ import annotations

import json
import math
import os
import signal
import time

import pytest

from tests._servers import demo_server as start_demo
from tests._servers import free_port, metric, scrape
from tests.serve.media_fixtures import data_uri, mp4_bytes, png_bytes

pytestmark = [pytest.mark.integration]

httpx = pytest.importorskip("httpx", reason="needs the demo extra")
hypothesis = pytest.importorskip("hypothesis", reason="needs the test extra")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def server(demo_server):
    """The session's demo server (tests/conftest.py); tests that stop or reconfigure one start their own."""
    return demo_server


def _post(server, raw: str | bytes, content_type: str | None = "application/json", **headers):
    if content_type is not None:
        headers["content-type"] = content_type
    return httpx.post(f"{server.api_base}/chat/completions", content=raw, headers=headers, timeout=60)


def _openai_error(resp) -> dict:
    """The error object of an OpenAI-shaped error response (asserting the shape)."""
    assert resp.headers["content-type"].startswith("application/json"), resp.text[:200]
    error = resp.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"} and error["code"] == resp.status_code
    assert error["message"] and "\n" not in error["message"] and "Traceback" not in error["message"]
    return error


def _counts(server) -> dict[str, int]:
    out = {}
    for line in httpx.get(f"{server}/metrics").text.splitlines():
        if line.startswith("vlmctl_requests_total{"):
            out[line.split('"')[1]] = int(float(line.split()[-1]))
    return out


# -- numbers -----------------------------------------------------------------------------------

RANGES = {"temperature": (0, 2), "top_p": (0, 1), "frequency_penalty": (-2, 2), "presence_penalty": (-2, 2)}


def _literal(value) -> str:
    """A JSON-ish literal for a Python number, NaN and the infinities included (as clients send them)."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, float) and math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return json.dumps(value)


@PROPERTY
@hypothesis.example(field="top_p", value=2.127179828187416e-296)  # once kept no token at all
@hypothesis.example(field="temperature", value=1.2039057624804055e-210)  # once divided the logits into inf
@given(field=st.sampled_from(sorted(RANGES)),
       value=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**30), 10**30)))
def test_sampling_numbers_are_accepted_in_range_and_refused_with_a_400_otherwise(server, field, value):
    lo, hi = RANGES[field]
    raw = '{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1, "%s": %s}' % (field, _literal(value))
    resp = _post(server, raw)
    valid = math.isfinite(value) and lo <= value <= hi and not (field == "top_p" and value == 0)
    if valid:
        assert resp.status_code == 200, resp.text
    else:
        assert resp.status_code == 400, (value, resp.text)
        error = _openai_error(resp)
        assert field in error["message"] and error["param"] == field


@PROPERTY
@given(field=st.sampled_from(["seed", "max_tokens", "n"]),
       value=st.one_of(st.integers(-(2**70), 2**70), st.integers(-(10**60), 10**60), st.floats()))
def test_integer_fields_fit_int64_or_are_refused(server, field, value):
    raw = '{"messages": [{"role": "user", "content": "hi"}], "%s": %s%s}' % (
        field, _literal(value), ', "max_tokens": 1' if field != "max_tokens" else "")
    resp = _post(server, raw)
    assert resp.status_code in (200, 400), resp.text
    if resp.status_code == 200:
        assert field != "seed" or -(2**63) <= value < 2**63
        assert field != "n" or value == 1
    else:
        _openai_error(resp)


def test_huge_integer_and_deep_nesting_are_400(server):
    for raw in ('{"messages": [], "seed": %s}' % ("9" * 5000),
                '{"messages": %s}' % ("[" * 50_000 + "]" * 50_000),
                '{"messages": %s}' % ("[" * 40 + "]" * 40),
                '{"messages": [{"role": "user", "content": "hi"}], "temperature": 1e999}'):
        resp = _post(server, raw)
        assert resp.status_code == 400, resp.text[:200]
        _openai_error(resp)


# -- strings and JSON --------------------------------------------------------------------------

@PROPERTY
@given(text=st.text(alphabet=st.characters(exclude_categories=()), max_size=40))
def test_any_text_is_served_or_refused_as_invalid_unicode(server, text):
    raw = json.dumps({"messages": [{"role": "user", "content": text}], "max_tokens": 1})  # \\ud800 stays escaped
    resp = _post(server, raw)
    has_surrogate = any(0xD800 <= ord(c) <= 0xDFFF for c in text)
    if has_surrogate:
        assert resp.status_code == 400
        message = _openai_error(resp)["message"]
        assert "surrogate" in message and "media" not in message
    else:
        assert resp.status_code == 200, resp.text


def _containers(inner):
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    _containers, max_leaves=12)
FIELDS = ["messages", "model", "stream", "stop", "temperature", "max_tokens", "tools", "tool_choice",
          "response_format", "stream_options", "n", "seed", "logprobs", "functions", "top_p"]


@PROPERTY
@given(extra=st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=3))
def test_arbitrary_json_fields_never_give_a_5xx(server, extra):
    body = {"messages": HI, "max_tokens": 1, **extra}
    resp = _post(server, json.dumps(body))
    assert resp.status_code < 500, resp.text
    if resp.status_code != 200:
        _openai_error(resp)


@PROPERTY
@given(raw=st.binary(max_size=64))
def test_arbitrary_bytes_as_a_body_are_a_4xx(server, raw):
    resp = _post(server, raw)
    assert 400 <= resp.status_code < 500
    _openai_error(resp)


# -- shapes of every error ---------------------------------------------------------------------

UNSUPPORTED = [
    ("tools", {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}),
    ("tool_choice", {"tool_choice": "required"}),
    ("response_format", {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}),
    ("response_format", {"response_format": {"type": "json_object"}}),
    ("logprobs", {"logprobs": True}),
    ("top_logprobs", {"top_logprobs": 3}),
    ("functions", {"functions": [{"name": "f", "parameters": {}}]}),
    ("logit_bias", {"logit_bias": {"50256": -100}}),
]


@pytest.mark.parametrize("param,extra", UNSUPPORTED, ids=[f"{p}-{i}" for i, (p, _) in enumerate(UNSUPPORTED)])
def test_unsupported_openai_features_are_a_clear_400(server, param, extra):
    resp = _post(server, json.dumps({"messages": HI, "max_tokens": 1, **extra}))
    assert resp.status_code == 400
    error = _openai_error(resp)
    assert error["param"] == param and "not" in error["message"] and "supported" in error["message"]


def test_supported_defaults_of_those_fields_still_work(server):
    body = {"messages": HI, "max_tokens": 1, "tools": [], "tool_choice": "none", "logprobs": False,
            "response_format": {"type": "text"}, "frequency_penalty": 1.5, "presence_penalty": -1, "seed": 2**63 - 1}
    assert _post(server, json.dumps(body)).status_code == 200


def test_routing_errors_are_openai_shaped_and_counted(server):
    before = _counts(server)
    cases = [
        (httpx.post(f"{server.api_base}/completions", json={"prompt": "hi"}), 404, "/v1/chat/completions"),
        (httpx.get(f"{server.api_base}/models/no-such-model"), 404, "does not exist"),
        (httpx.get(f"{server.api_base}/chat/completions"), 405, "POST"),
        (httpx.delete(f"{server.api_base}/models"), 405, "GET /v1/models"),
        (httpx.get(f"{server}/nope"), 404, "not a route"),
    ]
    for resp, status, words in cases:
        assert resp.status_code == status
        assert words in _openai_error(resp)["message"]
    assert _counts(server)["client_error"] == before["client_error"] + len(cases)
    model = httpx.get(f"{server.api_base}/models").json()["data"][0]["id"]
    assert httpx.get(f"{server.api_base}/models/{model}").json()["id"] == model


def test_content_type_required_and_host_checked(server):
    body = json.dumps({"messages": HI, "max_tokens": 1})
    missing = _post(server, body, content_type=None)
    assert missing.status_code == 415 and "Content-Type" in _openai_error(missing)["message"]
    simple_post = _post(server, body, content_type="text/plain")  # what a cross-site form/fetch can send
    assert simple_post.status_code == 415
    rebinding = _post(server, body, host="attacker.example:8000")
    assert rebinding.status_code == 403 and "loopback" in _openai_error(rebinding)["message"]
    for host in ("localhost", f"127.0.0.1:{server.rsplit(':', 1)[1]}", "[::1]:80"):
        assert _post(server, body, host=host).status_code == 200, host


def test_media_messages_point_the_right_way(server, tmp_path):
    video = mp4_bytes(frames=12)
    truncated = _post(server, json.dumps({"messages": [{"role": "user", "content": [
        {"type": "video_url", "video_url": {"url": data_uri(video[: len(video) // 2], "video/mp4")}}]}]}))
    assert truncated.status_code == 400 and "truncated" in _openai_error(truncated)["message"]
    still = _post(server, json.dumps({"messages": [{"role": "user", "content": [
        {"type": "video_url", "video_url": {"url": data_uri(png_bytes(32, 32), "video/mp4")}}]}]}))
    assert still.status_code == 415 and "still image" in _openai_error(still)["message"]


def _image_msg(url: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]


def test_fifo_directory_and_remote_failures_are_named_as_such(tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    os.mkfifo(media / "pipe.png")
    (media / "folder.png").mkdir()
    closed = free_port()  # nothing listens there
    with start_demo(args=("--allowed-media-dir", str(media), "--allow-remote-media")) as server:
        for name, words in (("pipe.png", "named pipe"), ("folder.png", "directory"), ("gone.png", "does not exist")):
            body = {"messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": f"file://{media / name}"}}]}], "max_tokens": 1}
            resp = _post(server, json.dumps(body))
            assert 400 <= resp.status_code < 500 and words in _openai_error(resp)["message"], resp.text
        for url, status, words in ((f"http://127.0.0.1:{closed}/cat.png", 502, "ConnectError"),
                                   ("http://[::1/cat.png", 400, "not a valid URL")):
            resp = _post(server, json.dumps({"messages": _image_msg(url), "max_tokens": 1}))
            assert resp.status_code == status and words in _openai_error(resp)["message"], resp.text


def test_a_huge_prompt_is_refused_before_tokenizing(server):
    raw = json.dumps({"messages": [{"role": "user", "content": "word " * 1_200_000}]})  # 6 MB
    started = time.monotonic()
    resp = _post(server, raw)
    took = time.monotonic() - started
    assert resp.status_code == 400 and "maximum context length" in _openai_error(resp)["message"]
    assert took < 3.0, f"{took:.1f} s: the length check ran after tokenizing"


def test_per_request_pixel_budget(server):
    png = data_uri(png_bytes(5000, 5000), "image/png")  # 25 Mpx each, each under the per-image cap
    body = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": png}}] * 4}],
            "max_tokens": 1}
    ok = _post(server, json.dumps({**body, "messages": [{"role": "user", "content": body["messages"][0]["content"][:1]}]}))
    assert ok.status_code == 200, ok.text
    assert _post(server, json.dumps(body)).status_code == 200  # exactly at 100 Mpx


def test_non_streaming_request_is_cancelled_when_its_client_goes(server):
    def cancelled():
        return metric(scrape(server), "vlmctl_requests_cancelled_total")

    before = cancelled()
    body = {"messages": [{"role": "user", "content": "long"}], "max_tokens": 3000, "temperature": 1.5,
            "frequency_penalty": -2}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{server.api_base}/chat/completions", json=body, timeout=httpx.Timeout(60, read=1.0))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and cancelled() <= before:
        time.sleep(0.2)
    assert cancelled() == before + 1
    assert "vllm:num_requests_running{" in httpx.get(f"{server}/metrics").text


def test_shutdown_ends_open_streams_with_an_error_event():
    with start_demo() as server:
        body = {"messages": [{"role": "user", "content": "long"}], "max_tokens": 3000, "stream": True,
                "temperature": 1.5, "frequency_penalty": -2}
        lines = []
        with httpx.stream("POST", f"{server.api_base}/chat/completions", json=body, timeout=30) as resp:
            for line in resp.iter_lines():
                if not line:
                    continue  # the blank line between events
                lines.append(line)
                if len(lines) == 3:  # one SIGTERM: a second one means "kill it now"
                    os.killpg(server.pid, signal.SIGTERM)
    events = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
    assert lines[-1] == "data: [DONE]"
    assert "shutting down" in events[-1]["error"]["message"] and events[-1]["error"]["code"] == 503
