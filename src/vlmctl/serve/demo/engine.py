"""A small CPU engine for Qwen-VL checkpoints (Qwen2-VL, Qwen2.5-VL, Qwen3-VL): one scheduler thread, streaming,
cancellable.

Each request is prefilled on its own (vision encoder + prompt), then every running request advances
one token per round, all of them in one batched forward (their KV caches left-padded to the longest
and masked), each keeping its own cache between rounds. A new request therefore waits at most
one round (a few ms per running request on the demo model) for its first token, streams while
others stream, and stops costing anything the moment its client goes away (``Sequence.cancel``).
Positions are computed here (Qwen's 3-D M-RoPE via ``get_rope_index``), never kept on the model,
so interleaved requests cannot disturb each other.
"""
from __future__ import annotations

import asyncio
import collections
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Temperatures below this sample greedily (dividing by them overflows); vLLM uses the same bound
#: (vllm/sampling_params.py: _SAMPLING_EPS).
GREEDY_BELOW = 1e-5


@dataclass
class Prepared:
    """A request after the processor: tensors plus generation settings."""

    inputs: dict[str, Any]
    prompt_tokens: int
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0


@dataclass
class Event:
    """What the engine tells a request: a text delta, the end, or an error."""

    kind: str  # "delta" | "done" | "error"
    text: str = ""
    finish_reason: str | None = None
    completion_tokens: int = 0


class Sequence:
    """One running request. ``events`` is an asyncio queue filled from the engine thread."""

    def __init__(self, prepared: Prepared, loop: asyncio.AbstractEventLoop) -> None:
        self.id = uuid.uuid4().hex[:16]
        self.prepared = prepared
        self.loop = loop
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.cancelled = threading.Event()
        self.cache = None
        self.rope_delta = 0
        self.length = 0
        self.token_ids: list[int] = []
        self.sent_text = ""
        self.generator = None
        self.next_token = None
        self.submitted = time.monotonic()
        self.first_token_at: float | None = None

    def cancel(self) -> None:
        """Stop generating (client disconnected or gave up)."""
        self.cancelled.set()

    def _emit(self, event: Event) -> None:
        self.loop.call_soon_threadsafe(self.events.put_nowait, event)


class Engine:
    """Loads a checkpoint with transformers and runs the scheduler thread."""

    def __init__(self, model_dir: Path, max_num_seqs: int = 64, threads: int | None = None,
                 decode_batch: int = 32) -> None:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.model_dir = Path(model_dir)
        self.processor = AutoProcessor.from_pretrained(self.model_dir)
        self.tokenizer = self.processor.tokenizer
        self.model = AutoModelForImageTextToText.from_pretrained(self.model_dir, dtype=torch.float32).eval()
        self.config = self.model.config
        inner = getattr(self.model, "model", None)
        self._rope_index = getattr(inner, "get_rope_index", None)
        eos = self.config.text_config.eos_token_id if hasattr(self.config, "text_config") else self.config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos])
        for token in ("<|im_end|>", "<|endoftext|>"):
            tid = self.tokenizer.convert_tokens_to_ids(token)
            if isinstance(tid, int) and tid >= 0 and tid != self.tokenizer.unk_token_id:
                eos_ids.add(tid)
        self.eos_ids = {i for i in eos_ids if i is not None}
        self.max_num_seqs = max_num_seqs
        self.decode_batch = decode_batch
        self._waiting: collections.deque[Sequence] = collections.deque()
        self._running: list[Sequence] = []
        self._wake = threading.Condition()
        self._stop = False
        self.stats = collections.Counter()
        self.ttft_sum = 0.0
        self.observer = None
        """Receives ``token(seq, now)`` and ``finished(seq, reason, completion_tokens)`` (the server's metrics)."""
        self._thread = threading.Thread(target=self._loop, name="vlmctl-demo-engine", daemon=True)
        self._thread.start()

    # -- public -----------------------------------------------------------------------------
    @property
    def num_running(self) -> int:
        return len(self._running)

    @property
    def num_waiting(self) -> int:
        return len(self._waiting)

    def submit(self, prepared: Prepared, loop: asyncio.AbstractEventLoop) -> Sequence:
        """Queue a prepared request; read its events from ``seq.events``."""
        seq = Sequence(prepared, loop)
        with self._wake:
            self._waiting.append(seq)
            self._wake.notify()
        return seq

    def shutdown(self) -> None:
        """Stop the scheduler thread."""
        with self._wake:
            self._stop = True
            self._wake.notify()
        self._thread.join(timeout=5)

    # -- scheduler --------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        """False once the scheduler thread has stopped (the server then reports unhealthy)."""
        return self._thread.is_alive()

    def _loop(self) -> None:
        torch = self.torch
        with torch.inference_mode():
            while True:
                with self._wake:
                    while not self._stop and not self._waiting and not self._running:
                        self._wake.wait()
                    if self._stop:
                        return
                    new = self._waiting.popleft() if self._waiting and len(self._running) < self.max_num_seqs else None
                if new is not None:
                    self._guarded(new, self._prefill)
                active = []
                for seq in list(self._running):
                    if seq.cancelled.is_set():
                        self._finish(seq, None)
                        self.stats["cancelled"] += 1
                    else:
                        active.append(seq)
                for start in range(0, len(active), self.decode_batch):
                    group = active[start : start + self.decode_batch]
                    if len(group) == 1:
                        self._guarded(group[0], self._decode)
                        continue
                    try:
                        rows = self._decode_batch(group)
                    except Exception:  # fall back to one at a time, so one bad request cannot stop the others
                        for seq in group:
                            self._guarded(seq, self._decode)
                        continue
                    for seq, logits in zip(group, rows):
                        self._guarded(seq, lambda seq, logits=logits: self._accept(seq, logits))

    def _guarded(self, seq: Sequence, step) -> None:
        if seq.cancelled.is_set():
            self._finish(seq, None)
            self.stats["cancelled"] += 1
            return
        try:
            step(seq)
        except Exception as exc:  # one bad request must not stop the engine
            self.stats["engine_errors"] += 1
            self._finish(seq, Event("error", text=f"engine error: {type(exc).__name__}: {exc}"))

    def _finish(self, seq: Sequence, event: Event | None) -> None:
        if seq in self._running:
            self._running.remove(seq)
        seq.cache = None
        if self.observer is not None:
            reason = "abort" if event is None else event.finish_reason if event.kind == "done" else None
            tokens = len(seq.token_ids) if event is None else event.completion_tokens
            self.observer.finished(seq, reason, tokens)
        if event is not None:
            seq._emit(event)

    def _prefill(self, seq: Sequence) -> None:
        torch = self.torch
        from transformers import DynamicCache

        inputs = seq.prepared.inputs
        ids = inputs["input_ids"]
        length = ids.shape[1]
        has_media = "image_grid_thw" in inputs or "video_grid_thw" in inputs
        position_ids = None
        if self._rope_index is not None:
            if has_media:
                position_ids, delta = self._rope_index(
                    ids,
                    mm_token_type_ids=inputs.get("mm_token_type_ids"),
                    image_grid_thw=inputs.get("image_grid_thw"),
                    video_grid_thw=inputs.get("video_grid_thw"),
                    second_per_grid_ts=inputs.get("second_per_grid_ts"),
                    attention_mask=inputs.get("attention_mask"),
                )
                seq.rope_delta = int(delta.reshape(-1)[0])
            else:
                position_ids = torch.arange(length).view(1, 1, -1).expand(3, 1, -1)
        seq.cache = DynamicCache(config=self.config)
        if seq.prepared.seed is not None:
            seq.generator = torch.Generator().manual_seed(seq.prepared.seed)
        kwargs = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask", "mm_token_type_ids")}
        out = self.model(
            input_ids=ids, position_ids=position_ids, cache=seq.cache, use_cache=True, logits_to_keep=1, **kwargs
        )
        seq.length = length
        self._running.append(seq)
        self._accept(seq, out.logits[0, -1])

    def _decode(self, seq: Sequence) -> None:
        torch = self.torch
        position_ids = None
        if self._rope_index is not None:
            position_ids = torch.full((3, 1, 1), seq.length - 1 + seq.rope_delta, dtype=torch.long)
        out = self.model(
            input_ids=seq.next_token.view(1, 1), position_ids=position_ids, cache=seq.cache, use_cache=True
        )
        self._accept(seq, out.logits[0, -1])

    def _decode_batch(self, group: list[Sequence]) -> list:
        """One decode step for several requests in one forward: caches left-padded to the longest.

        Returns each request's next-token logits; its own cache then holds the new token.
        """
        torch = self.torch
        from transformers import DynamicCache

        lengths = [seq.cache.get_seq_length() for seq in group]
        longest = max(lengths)
        layers = []
        for index in range(len(group[0].cache.layers)):
            keys, values = [], []
            for seq, length in zip(group, lengths):
                layer = seq.cache.layers[index]
                pad = (0, 0, longest - length, 0)
                keys.append(torch.nn.functional.pad(layer.keys, pad) if length < longest else layer.keys)
                values.append(torch.nn.functional.pad(layer.values, pad) if length < longest else layer.values)
            layers.append((torch.cat(keys), torch.cat(values)))
        batch_cache = DynamicCache(layers, config=self.config)
        mask = torch.zeros(len(group), longest + 1, dtype=torch.long)
        for row, length in enumerate(lengths):
            mask[row, longest - length :] = 1
        input_ids = torch.stack([seq.next_token.view(1) for seq in group])
        position_ids = None
        if self._rope_index is not None:
            positions = torch.tensor([seq.length - 1 + seq.rope_delta for seq in group])
            position_ids = positions.view(1, -1, 1).expand(3, -1, 1)
        out = self.model(
            input_ids=input_ids, attention_mask=mask, position_ids=position_ids, cache=batch_cache, use_cache=True
        )
        for row, (seq, length) in enumerate(zip(group, lengths)):
            for index, layer in enumerate(seq.cache.layers):
                batched = batch_cache.layers[index]
                layer.keys = batched.keys[row : row + 1, :, longest - length :]
                layer.values = batched.values[row : row + 1, :, longest - length :]
        return [out.logits[row, -1] for row in range(len(group))]

    def _sample(self, seq: Sequence, logits):
        torch = self.torch
        p = seq.prepared
        if (p.frequency_penalty or p.presence_penalty) and seq.token_ids:
            counts = torch.bincount(torch.tensor(seq.token_ids), minlength=logits.shape[-1])[: logits.shape[-1]]
            logits = logits.float() - p.frequency_penalty * counts - p.presence_penalty * (counts > 0)
        if p.temperature < GREEDY_BELOW:
            return logits.argmax()
        probs = torch.softmax(logits.float() / p.temperature, dim=-1)
        if p.top_p < 1.0:
            sorted_p, order = probs.sort(descending=True)
            keep = sorted_p.cumsum(-1) - sorted_p < p.top_p
            keep[0] = True  # the most likely token always stays (a tiny top_p would otherwise keep none)
            probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_p[keep])
        return torch.multinomial(probs, 1, generator=seq.generator)[0]

    def _accept(self, seq: Sequence, logits) -> None:
        token = self._sample(seq, logits)
        tid = int(token)
        seq.length += 1
        if seq.first_token_at is None:
            seq.first_token_at = time.monotonic()
            self.ttft_sum += seq.first_token_at - seq.submitted
            self.stats["first_tokens"] += 1
        self.stats["generation_tokens"] += 1
        if self.observer is not None:
            self.observer.token(seq, time.monotonic())
        if tid in self.eos_ids:
            self._finish(seq, Event("done", finish_reason="stop", completion_tokens=len(seq.token_ids) + 1))
            return
        seq.token_ids.append(tid)
        seq.next_token = token.view(1)
        text = self.tokenizer.decode(seq.token_ids, skip_special_tokens=True)
        stopped = False
        for stop in seq.prepared.stop:
            cut = text.find(stop)
            if cut >= 0:
                text, stopped = text[:cut], True
        ending = stopped or len(seq.token_ids) >= seq.prepared.max_tokens
        if (ending or not text.endswith("\ufffd")) and len(text) > len(seq.sent_text) and text.startswith(seq.sent_text):
            seq._emit(Event("delta", text=text[len(seq.sent_text):]))
            seq.sent_text = text
        if stopped:
            self._finish(seq, Event("done", finish_reason="stop", completion_tokens=len(seq.token_ids)))
        elif len(seq.token_ids) >= seq.prepared.max_tokens:
            self._finish(seq, Event("done", finish_reason="length", completion_tokens=len(seq.token_ids)))
