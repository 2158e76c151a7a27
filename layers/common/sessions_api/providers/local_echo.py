"""A deterministic stand-in for a language model: no network, no AWS, the same answer every time."""

from __future__ import annotations

import time

from sessions_api.providers import ModelReply, ModelRequest, estimate_tokens

LOCAL_MODEL_ID = "local-echo"


class LocalEchoProvider:
    """Answers with the last user turn and how much context it was given; `delay_seconds` simulates latency."""

    def __init__(self, delay_seconds: float = 0.0) -> None:
        self.delay_seconds = delay_seconds

    def model_for(self, requested: str) -> str:
        return LOCAL_MODEL_ID

    def converse(self, request: ModelRequest) -> ModelReply:
        started = time.perf_counter()
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        earlier = len(request.turns) - 1
        text = f"Echo: {request.turns[-1].text}\n\n({earlier} earlier turn{'s' if earlier != 1 else ''} in context)"
        words = text.split()
        if len(words) > request.max_output_tokens:  # honour the output allowance like a real model would
            text = " ".join(words[: request.max_output_tokens])
        prompt = request.system + "".join(turn.text for turn in request.turns)
        return ModelReply(
            text=text,
            model_id=LOCAL_MODEL_ID,
            input_tokens=estimate_tokens(prompt),
            output_tokens=min(estimate_tokens(text), request.max_output_tokens),
            latency_ms=int((time.perf_counter() - started) * 1000),
            stop_reason="end_turn",
        )
