"""A deterministic stand-in for a language model: no network, no AWS, the same answer every time.

It streams too, a few words a chunk with a pause between chunks, so streaming, polling and cancelling can be
watched offline. `[stream N]` in the last user turn (1 ≤ N ≤ 20,000) adds N generated words to the answer.
Offered `write_slides`, it writes decks as `local_slides` says.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

from sessions_api.providers import ModelReply, ModelRequest, ToolCall, estimate_tokens, local_slides

LOCAL_MODEL_ID = "local-echo"
WORDS_PER_CHUNK = 4
MAX_STREAM_WORDS = 20_000
_STREAM_MARKER = re.compile(r"\[stream ([1-9]\d{0,4})\]")
# A word with the whitespace after it: chunks of these join back into exactly the answer.
_WORD = re.compile(r"\S+\s*")


def reply_text(request: ModelRequest) -> str:
    """The answer, streamed or not: the last user turn and how much context came with it, then, for a
    `[stream N]` marker in that turn, the words `word1` … `wordN`."""
    last = request.turns[-1].text
    earlier = len(request.turns) - 1
    text = f"Echo: {last}\n\n({earlier} earlier turn{'s' if earlier != 1 else ''} in context)"
    marker = _STREAM_MARKER.search(last)
    if marker and int(marker[1]) <= MAX_STREAM_WORDS:
        text += "\n\n" + " ".join(f"word{number}" for number in range(1, int(marker[1]) + 1))
    words = text.split()
    if len(words) > request.max_output_tokens:  # honour the output allowance like a real model would
        text = " ".join(words[: request.max_output_tokens])
    return text


def answer(request: ModelRequest) -> tuple[str, tuple[ToolCall, ...]]:
    """The text and the tool calls of the answer: a slide deck when `write_slides` is offered and the last
    turn asks (or a tool's refusal asks again), what was made once the tool has answered; else the echo."""
    last = request.turns[-1]
    if not any(tool.name == "write_slides" for tool in request.tools):
        return reply_text(request), ()
    refused = [result for result in last.tool_results if result.is_error and result.output.get("status") != "conflict"]
    if last.tool_results and not refused:
        return local_slides.summary(last.tool_results[0].output), ()
    asked = next(turn for turn in reversed(request.turns) if turn.role == "user" and not turn.tool_results)
    text, call = local_slides.slide_call(
        ModelRequest(request.model_id, request.system, [asked], request.max_output_tokens),
        f"tooluse_local_{len(request.turns)}",
    )
    return text, (call,)


def _reply(request: ModelRequest, text: str, started: float, calls: tuple[ToolCall, ...] = ()) -> ModelReply:
    prompt = request.system + "".join(turn.text for turn in request.turns)
    return ModelReply(
        text=text,
        model_id=LOCAL_MODEL_ID,
        input_tokens=estimate_tokens(prompt),
        output_tokens=min(
            estimate_tokens(text + "".join(str(call.input) for call in calls)), request.max_output_tokens
        ),
        latency_ms=int((time.perf_counter() - started) * 1000),
        stop_reason="tool_use" if calls else "end_turn",
        tool_calls=calls,
    )


class LocalEchoStream:
    """`reply_text` in chunks of `WORDS_PER_CHUNK` words, `chunk_delay_seconds` apart."""

    def __init__(self, request: ModelRequest, chunk_delay_seconds: float, started: float) -> None:
        self.reply: ModelReply | None = None
        self._request = request
        self._chunk_delay_seconds = chunk_delay_seconds
        self._started = started
        self._closed = False

    def __iter__(self) -> Iterator[str]:
        text, calls = answer(self._request)
        words = _WORD.findall(text)
        for start in range(0, len(words), WORDS_PER_CHUNK):
            if start:
                time.sleep(self._chunk_delay_seconds)
            if self._closed:
                return
            yield "".join(words[start : start + WORDS_PER_CHUNK])
        if not self._closed:  # a close after the last chunk still leaves no reply, as the protocol says
            self.reply = _reply(self._request, text, self._started, calls)

    def close(self) -> None:
        self._closed = True
        self.reply = None


class LocalEchoProvider:
    """Answers with the last user turn and how much context it was given; `delay_seconds` simulates the wait
    for a reply (or its first chunk), `chunk_delay_seconds` the pace of a streamed one."""

    def __init__(self, delay_seconds: float = 0.0, chunk_delay_seconds: float = 0.05) -> None:
        self.delay_seconds = delay_seconds
        self.chunk_delay_seconds = chunk_delay_seconds

    def model_for(self, requested: str) -> str:
        return LOCAL_MODEL_ID

    def converse(self, request: ModelRequest) -> ModelReply:
        started = time.perf_counter()
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        text, calls = answer(request)
        return _reply(request, text, started, calls)

    def converse_stream(self, request: ModelRequest) -> LocalEchoStream:
        started = time.perf_counter()
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        return LocalEchoStream(request, self.chunk_delay_seconds, started)
