"""The multimodal chat page: a Gradio client of any OpenAI-compatible endpoint.

``build_app(api_base, api_key, info)`` returns a ``gradio.Blocks``; ``vlmctl serve`` mounts it
at ``/chat`` and ``vlmctl ui`` launches it alone. The conversation lives in a ``gr.State`` of
turns (see ``vlmctl.ui.client``); the chat view is drawn from it, never read back from it, so
what the model is sent is exactly what was said, with each image or video in its own turn.
"""
from __future__ import annotations

import contextlib
import os
import time
from functools import lru_cache
from typing import Any

from vlmctl import envs
from vlmctl.errors import require
from vlmctl.ui.client import (
    ApiError,
    ChatClient,
    drain_batches,
    render_markdown,
    sanitize_html,
    to_messages,
)

#: Element ids the browser tests and the latency benchmark rely on.
IDS = {
    "chatbot": "chatbot",
    "input": "chat-input",
    "stop": "stop-btn",
    "regenerate": "regen-btn",
    "edit": "edit-btn",
    "clear": "clear-btn",
    "status": "endpoint-status",
    "model": "model-select",
    "plan": "plan-panel",
    "activity": "chat-activity",
    "copy": "copy-btn",
}

#: Copies its input to the clipboard; falls back to execCommand where the page is not a
#: secure context (plain http on a LAN address has no navigator.clipboard).
COPY_JS = """(text) => {
  if (!text) return;
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text);
    return;
  }
  const area = document.createElement('textarea');
  area.value = text;
  area.style.position = 'fixed';
  area.style.left = '-9999px';
  document.body.appendChild(area);
  area.select();
  try { document.execCommand('copy'); } finally { area.remove(); }
}"""

DEFAULT_MAX_TOKENS = 1024

#: Page-wide style, injected once through a component's ``head`` (``mount_gradio_app`` drops
#: a Blocks' own css). Gradio shows a Share button on every image or video in the chat that
#: uploads the file to huggingface.co; a private deployment must not offer that. Stop is red
#: only while an answer streams (the activity line says ``busy``), grey when there is nothing to stop;
#: a long model name ends in an ellipsis before the picker's arrow instead of running under it.
PAGE_HEAD = """<style>
#chatbot button[aria-label="Share"], #chatbot button[title="Share"] { display: none !important; }
body:has(#chat-activity .vlmctl-activity[data-state="busy"]) #stop-btn {
  background: #dc2626; border-color: #dc2626; color: #fff; transition: none;
}
#model-select input { padding-right: 28px; text-overflow: ellipsis; box-sizing: border-box; }
</style>"""


@lru_cache(maxsize=1024)
def _html(text: str) -> str:
    return render_markdown(text)


def chat_view(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Turns → the Chatbot's messages: sanitised HTML text, uploaded files shown by path."""
    view: list[dict[str, Any]] = []
    for turn in turns:
        if turn["role"] == "user":
            content: list[dict[str, Any]] = [
                {"path": path, "alt_text": os.path.basename(path)} for path in turn.get("files") or []
            ]
            if turn.get("text"):
                content.append({"type": "text", "text": _html(turn["text"])})
            if content:
                view.append({"role": "user", "content": content})
        elif turn.get("error"):
            quoted = "\n".join("> " + line for line in turn["text"].splitlines())
            text = _html(f"> **Error:**\n{quoted}")
            view.append({"role": "assistant", "content": [{"type": "text", "text": text}]})
        else:
            text = turn.get("text", "")
            if not text:
                text = "…" if turn.get("pending") else "_(stopped before the first token)_"
            elif turn.get("stopped"):
                text += "\n\n_(stopped)_"
            # A growing answer changes every update: render it, but only cache finished turns.
            html = render_markdown(text) if turn.get("pending") else _html(text)
            view.append({"role": "assistant", "content": [{"type": "text", "text": html}]})
    return view


_DOT_COLOURS = {"green": "#16a34a", "orange": "#d97706", "red": "#dc2626", "gray": "#9ca3af"}


def _status(colour: str, markdown_text: str) -> str:
    """A coloured dot and a Markdown sentence, as sanitised HTML."""
    dot = sanitize_html(f'<span style="color:{_DOT_COLOURS[colour]}">●</span> ')
    body = _html(markdown_text)
    if body.startswith("<p>"):
        return "<p>" + dot + body[3:]
    return dot + body


def _activity(state: str, markdown_text: str) -> str:
    """The line under the chat: ``data-state`` is idle, busy, done, stopped or error."""
    body = _html(markdown_text) if markdown_text else ""
    return f'<div class="vlmctl-activity" data-state="{state}">{body}</div>'


def plan_markdown(info: dict[str, Any]) -> str:
    """The small 'what is serving' panel: model, TP × PP, dtype, context, GPUs, demo notice."""
    lines = ["**Serving**", ""]
    if info.get("model"):
        lines.append(f"- model: `{info['model']}`")
    tp, pp = info.get("tensor_parallel_size"), info.get("pipeline_parallel_size")
    if tp or pp:
        lines.append(f"- parallelism: TP {tp or 1} × PP {pp or 1}")
    elif info.get("tp_pp"):
        lines.append(f"- parallelism: {info['tp_pp']}")
    if info.get("dtype"):
        lines.append(f"- dtype: `{info['dtype']}`")
    if info.get("max_model_len"):
        lines.append(f"- max context: {int(info['max_model_len']):,} tokens")
    gpus = info.get("gpus")
    if gpus:
        shown = ", ".join(str(g) for g in gpus) if isinstance(gpus, (list, tuple)) else str(gpus)
        lines.append(f"- GPUs: {shown}")
    if info.get("demo") or info.get("demo_notice"):
        notice = info.get("demo_notice") or (
            "This is the embedded demo model: tiny and random, its answers are not meaningful."
        )
        prefix = "" if notice.lower().startswith("demo model") else "**Demo model.** "
        lines += ["", f"> {prefix}{notice}"]
    return "\n".join(lines)


def card_info(card: dict[str, Any]) -> dict[str, Any]:
    """What a ``GET /models`` entry says about the serving side (vLLM: id, max_model_len, root; the demo adds
    ``demo`` and a ``description``)."""
    out: dict[str, Any] = {"model": card.get("id")}
    if isinstance(card.get("max_model_len"), int) and card["max_model_len"] > 0:
        out["max_model_len"] = card["max_model_len"]
    if card.get("demo") is True:
        out["demo"] = True
        if isinstance(card.get("description"), str) and card["description"].strip():
            out["demo_notice"] = card["description"].strip()
    return {k: v for k, v in out.items() if v is not None}


def _clean(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copy of turns with interrupted, empty answers dropped and pending flags settled."""
    cleaned = []
    for turn in turns:
        turn = dict(turn)
        if turn["role"] == "assistant" and not turn.get("error"):
            if turn.pop("pending", False) and turn.get("text"):
                turn["stopped"] = True
            if not turn.get("text"):
                continue
        cleaned.append(turn)
    return cleaned


def update_interval(answer_chars: int) -> float:
    """Seconds between page updates: the browser re-renders the whole answer each time, so
    long answers get fewer updates (env VLMCTL_UI_UPDATE_MS overrides, for benchmarks)."""
    fixed = envs.ui_update_ms()
    if fixed is not None:
        return fixed / 1000
    return min(0.2, 0.02 + answer_chars / 100_000)


def _sampling(use_defaults, temperature, top_p, repetition_penalty, max_tokens) -> dict[str, Any]:
    params: dict[str, Any] = {"max_tokens": int(max_tokens)}
    if not use_defaults:
        params.update(
            temperature=float(temperature),
            top_p=float(top_p),
            repetition_penalty=float(repetition_penalty),
        )
    return params


def build_app(api_base: str, api_key: str | None = None, info: dict | None = None):
    """Build the chat page for the OpenAI-compatible API at ``api_base`` (e.g. ``…/v1``).

    ``info`` (optional): tensor_parallel_size, pipeline_parallel_size, dtype, gpus and the like, shown in
    the side panel next to what the API's ``GET /models`` says (model, max context, demo notice), which
    the page reads itself, whatever serves the API.
    """
    gr = require("gradio", "ui")
    client = ChatClient(api_base, api_key)
    info = dict(info or {})
    max_context = int(info.get("max_model_len") or 32768)
    cards: dict[str, dict[str, Any]] = {}

    def panel(model_id: str | None):
        merged = {**info, **card_info(cards.get(model_id or "", {}))}
        shown = bool(merged.get("model") or merged.get("demo"))
        return gr.update(value=_html(plan_markdown(merged)) if shown else "", visible=shown)

    def context_limit(model_id: str | None, current: float | None):
        limit = card_info(cards.get(model_id or "", {})).get("max_model_len") or max_context
        return gr.update(maximum=limit, value=min(current or DEFAULT_MAX_TOKENS, limit))

    async def refresh_models(current: str | None, tokens: float | None = None):
        try:
            models = await client.list_models()
        except ApiError as exc:
            return gr.update(), _status("red", f"**Endpoint unreachable** — {exc}"), gr.update(), gr.update()
        cards.clear()
        cards.update({str(m["id"]): m for m in models if isinstance(m, dict) and m.get("id")})
        ids = list(cards)
        preferred = current if current in ids else info.get("model") if info.get("model") in ids else None
        value = preferred or (ids[0] if ids else None)
        if not ids:
            return gr.update(choices=[], value=value), _status(
                "orange", f"**Connected, but no models listed**  \n{client.api_base}"
            ), panel(None), gr.update()
        plural = "s" * (len(ids) != 1)
        status = _status("green", f"**Connected** · {len(ids)} model{plural}  \n{client.api_base}")
        return gr.update(choices=ids, value=value), status, panel(value), context_limit(value, tokens)

    def add_user_turn(message: dict | None, turns: list[dict[str, Any]]):
        message = message or {}
        text = (message.get("text") or "").strip()
        files = list(message.get("files") or [])
        turns = _clean(turns)
        if not text and not files:
            return turns, chat_view(turns), gr.update()
        turns.append({"role": "user", "text": text, "files": files})
        return turns, chat_view(turns), {"text": "", "files": []}

    async def answer(
        control, turns, model, system_prompt, use_defaults, temperature, top_p,
        repetition_penalty, max_tokens, resend_media,
    ):
        control["run"] += 1
        control["stop"] = False
        this_run = control["run"]
        turns = _clean(turns)
        if not turns or turns[-1]["role"] != "user":
            yield turns, chat_view(turns), _activity("idle", "Nothing to answer.")
            return
        failure = None
        if not model:
            failure = ("No model is selected and the endpoint listed none. "
                       "Check the endpoint status, press ↻, or type a model name.")
        else:
            try:
                messages = to_messages(turns, system_prompt, resend_media)
            except (ApiError, OSError) as exc:
                failure = str(exc)
        if failure:
            turns.append({"role": "assistant", "error": True, "text": failure})
            yield turns, chat_view(turns), _activity("error", "Error (see the chat).")
            return
        reply = {"role": "assistant", "text": "", "pending": True}
        turns.append(reply)
        started = time.monotonic()
        yield turns, chat_view(turns), _activity("busy", f"Answering with `{model}`…")
        params = _sampling(use_defaults, temperature, top_p, repetition_penalty, max_tokens)
        stream = drain_batches(
            client.stream_chat(model, messages, params),
            heartbeat=0.1,
            min_interval=lambda: update_interval(len(reply["text"])),
        )
        try:
            async with contextlib.aclosing(stream) as batches:
                async for delta in batches:
                    if control["run"] != this_run:
                        return  # cleared or edited meanwhile: this answer is gone
                    if control["stop"]:
                        reply.pop("pending", None)
                        reply["stopped"] = True
                        yield turns, chat_view(turns), _activity("stopped", "Stopped.")
                        return
                    if delta:
                        reply["text"] += delta
                        yield turns, chat_view(turns), gr.skip()
        except ApiError as exc:
            if control["run"] != this_run:
                return
            reply.pop("pending", None)
            if not reply["text"]:
                turns.pop()
            turns.append({"role": "assistant", "error": True, "text": str(exc)})
            yield turns, chat_view(turns), _activity("error", "Error (see the chat).")
            return
        reply.pop("pending", None)
        elapsed = time.monotonic() - started
        done = f"Done · {elapsed:.1f} s · {len(reply['text']):,} characters."
        yield turns, chat_view(turns), _activity("done", done)

    def request_stop(control):
        control["stop"] = True

    def forget_running(control):
        control["run"] += 1

    def prepare_regenerate(turns):
        turns = _clean(turns)
        while turns and turns[-1]["role"] == "assistant":
            turns.pop()
        return turns, chat_view(turns)

    def edit_last(control, turns):
        forget_running(control)
        turns = _clean(turns)
        last_user = max((i for i, t in enumerate(turns) if t["role"] == "user"), default=None)
        if last_user is None:
            return turns, chat_view(turns), gr.update()
        message = {"text": turns[last_user]["text"], "files": list(turns[last_user]["files"])}
        turns = turns[:last_user]
        return turns, chat_view(turns), message

    def last_answer_text(turns):
        answers = [t for t in turns if t["role"] == "assistant" and not t.get("error")]
        return answers[-1]["text"] if answers else ""

    def clear(control):
        forget_running(control)
        return [], [], {"text": "", "files": []}, _activity("idle", "")

    with gr.Blocks(title="vlmctl chat", analytics_enabled=False, fill_width=True) as demo:
        turns = gr.State([])
        control = gr.State({"run": 0, "stop": False})
        with gr.Row(equal_height=False):
            with gr.Column(scale=4):
                chatbot = gr.Chatbot(
                    elem_id=IDS["chatbot"],
                    label="Chat",
                    height="70vh",
                    min_height=420,
                    sanitize_html=True,
                    render_markdown=True,
                    latex_delimiters=[],
                    allow_tags=False,
                    feedback_options=None,
                    # Gradio's copy buttons copy the message value, which here is HTML;
                    # "Copy answer" below copies the Markdown the model wrote.
                    buttons=[],
                    group_consecutive_messages=False,
                    placeholder="Ask a question, or drop images and videos into the box below.",
                )
                box = gr.MultimodalTextbox(
                    elem_id=IDS["input"],
                    file_types=["image", "video"],
                    file_count="multiple",
                    sources=["upload"],
                    placeholder="Message (Enter sends, Shift+Enter new line). Drop or paste images/videos.",
                    show_label=False,
                    max_plain_text_length=200_000,
                    autofocus=True,
                )
                activity = gr.HTML(_activity("idle", ""), elem_id=IDS["activity"], head=PAGE_HEAD)
                with gr.Row():
                    stop_btn = gr.Button("Stop", elem_id=IDS["stop"], size="sm")
                    regen_btn = gr.Button("Regenerate", elem_id=IDS["regenerate"], size="sm")
                    edit_btn = gr.Button("Edit last", elem_id=IDS["edit"], size="sm")
                    clear_btn = gr.Button("Clear", elem_id=IDS["clear"], size="sm")
                    copy_btn = gr.Button("Copy answer", elem_id=IDS["copy"], size="sm")
                last_answer = gr.Textbox(visible=False, elem_id="last-answer")
            with gr.Column(scale=1, min_width=280):
                status = gr.HTML(_status("gray", "Checking the endpoint…"), elem_id=IDS["status"])
                model = gr.Dropdown(
                    label="Model", elem_id=IDS["model"], choices=[], value=info.get("model"),
                    allow_custom_value=True,
                )
                refresh_btn = gr.Button("↻ Refresh models", size="sm", elem_id="refresh-models")
                plan_panel = gr.HTML(_html(plan_markdown(info)) if info else "", elem_id=IDS["plan"],
                                     visible=bool(info))
                with gr.Accordion("Settings", open=False, elem_id="chat-settings"):
                    system_prompt = gr.Textbox(label="System prompt", lines=3, value="", elem_id="system-prompt")
                    use_defaults = gr.Checkbox(
                        value=True, label="Use the model's sampling defaults",
                        info="Off: send temperature, top_p and repetition penalty below.",
                    )
                    temperature = gr.Slider(0.0, 2.0, value=0.7, step=0.05, label="temperature", interactive=False)
                    top_p = gr.Slider(0.05, 1.0, value=0.8, step=0.05, label="top_p", interactive=False)
                    repetition_penalty = gr.Slider(
                        1.0, 2.0, value=1.05, step=0.01, label="repetition penalty", interactive=False
                    )
                    max_tokens = gr.Slider(
                        16, max_context, value=min(DEFAULT_MAX_TOKENS, max_context), step=16,
                        label="max tokens", elem_id="max-tokens",
                    )
                    resend_media = gr.Checkbox(
                        value=True, label="Send earlier turns' images and videos again",
                        info="Off: only the newest turn's media reach the model (shorter prompts).",
                    )

        settings = [model, system_prompt, use_defaults, temperature, top_p, repetition_penalty,
                    max_tokens, resend_media]
        stream_opts = {"concurrency_limit": None, "show_progress": "hidden"}

        submit_event = box.submit(
            add_user_turn, [box, turns], [turns, chatbot, box], queue=False
        ).then(answer, [control, turns, *settings], [turns, chatbot, activity], **stream_opts)
        regen_event = regen_btn.click(
            prepare_regenerate, [turns], [turns, chatbot], queue=False
        ).then(answer, [control, turns, *settings], [turns, chatbot, activity], **stream_opts)
        for event in (submit_event, regen_event):
            event.then(last_answer_text, [turns], [last_answer], queue=False)
        copy_btn.click(None, [last_answer], None, js=COPY_JS)
        running = [submit_event, regen_event]
        # Stop is a flag the streaming loop checks (≤ 0.1 s): it closes the request, which
        # vLLM aborts, and draws the final state itself, so no late update can undo it.
        stop_btn.click(request_stop, [control], None, queue=False)
        edit_btn.click(edit_last, [control, turns], [turns, chatbot, box], cancels=running, queue=False)
        for trigger in (clear_btn.click, chatbot.clear):
            trigger(clear, [control], [turns, chatbot, box, activity], cancels=running, queue=False)
        use_defaults.change(
            lambda on: [gr.update(interactive=not on)] * 3,
            [use_defaults], [temperature, top_p, repetition_penalty], queue=False,
        )
        refreshed = [model, status, plan_panel, max_tokens]
        refresh_btn.click(refresh_models, [model, max_tokens], refreshed)
        demo.load(refresh_models, [model, max_tokens], refreshed)
        model.input(lambda m, t: (panel(m), context_limit(m, t)), [model, max_tokens], [plan_panel, max_tokens],
                    queue=False)
    demo.queue(default_concurrency_limit=None)
    return demo
