"""The Bedrock provider: Amazon Bedrock's Converse API (one request per turn) and ConverseStream (the reply
as it is produced, for chat runs)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.eventstream import EventStream, ParserError
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError
from urllib3.exceptions import HTTPError as TransportError
from urllib3.exceptions import ReadTimeoutError as TransportReadTimeout

from sessions_api.dal import clients
from sessions_api.providers import ModelFailure, ModelReply, ModelRequest

# Worth retrying later (503 + Retry-After); anything else is a refusal of this request (502).
RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "ServiceUnavailableException",
        "ModelTimeoutException",
        "ModelNotReadyException",
        "InternalServerException",
        "ServiceQuotaExceededException",
    }
)

# What reading a stream can raise: botocore raises its error events as ClientError (EventStreamError), and the
# body is read straight from urllib3, whose errors botocore does not wrap there; a garbled frame: ParserError.
_STREAM_READ_ERRORS = (ClientError, BotoCoreError, TransportError, ParserError)


def _params(request: ModelRequest) -> dict[str, Any]:
    params: dict[str, Any] = {
        "modelId": request.model_id,
        "messages": [{"role": turn.role, "content": [{"text": turn.text}]} for turn in request.turns],
        "inferenceConfig": {"maxTokens": request.max_output_tokens, "temperature": request.temperature},
    }
    if request.system:
        params["system"] = [{"text": request.system}]
    return params


def _failure(exc: Exception) -> ModelFailure:
    """A botocore or transport error as the failure the chat reports (retryable: 503 + Retry-After; else 502)."""
    if isinstance(exc, ClientError):
        code = clients.error_code(exc) or "ClientError"
        code = code[:1].upper() + code[1:]  # error events name their exception in camelCase: throttlingException
        message = exc.response.get("Error", {}).get("Message") or code
        return ModelFailure(message, retryable=code in RETRYABLE_CODES, code=code)
    if isinstance(exc, ReadTimeoutError | TransportReadTimeout | ConnectionError):
        return ModelFailure("Bedrock did not answer in time", retryable=True, code="Timeout")
    return ModelFailure(str(exc), retryable=True, code=type(exc).__name__)


def _reply(
    model_id: str, text: str, stop_reason: str | None, usage: dict[str, Any], metrics: dict[str, Any]
) -> ModelReply:
    if not text.strip():
        raise ModelFailure(f"The model returned no text (stop reason {stop_reason})", retryable=False)
    return ModelReply(
        text=text,
        model_id=model_id,
        input_tokens=int(usage.get("inputTokens", 0)),
        output_tokens=int(usage.get("outputTokens", 0)),
        latency_ms=metrics.get("latencyMs"),
        stop_reason=stop_reason,
    )


class BedrockConverseProvider:
    def model_for(self, requested: str) -> str:
        return requested

    def converse(self, request: ModelRequest) -> ModelReply:
        try:
            response = clients.bedrock_runtime().converse(**_params(request))
        except (ClientError, BotoCoreError) as exc:
            raise _failure(exc) from exc
        blocks = ((response.get("output") or {}).get("message") or {}).get("content") or []
        text = "".join(block["text"] for block in blocks if "text" in block).strip()
        return _reply(
            request.model_id,
            text,
            response.get("stopReason"),
            response.get("usage") or {},
            response.get("metrics") or {},
        )

    def converse_stream(self, request: ModelRequest) -> BedrockStream:
        try:
            response = clients.bedrock_runtime().converse_stream(**_params(request))
        except (ClientError, BotoCoreError) as exc:
            raise _failure(exc) from exc
        return BedrockStream(request.model_id, response["stream"])


class BedrockStream:
    """ConverseStream's events as text deltas (tool use and other non-text deltas are skipped); the stop reason
    comes in `messageStop`, the usage in the last event, `metadata`."""

    def __init__(self, model_id: str, events: EventStream) -> None:
        self.reply: ModelReply | None = None
        self._model_id = model_id
        self._events = events
        self._closed = False

    def __iter__(self) -> Iterator[str]:
        parts: list[str] = []
        stop_reason: str | None = None
        metadata: dict[str, Any] = {}
        try:
            for event in self._events:
                delta = event.get("contentBlockDelta", {}).get("delta", {}).get("text")
                if delta:
                    parts.append(delta)
                    yield delta
                if self._closed:
                    return
                if "messageStop" in event:
                    stop_reason = event["messageStop"].get("stopReason")
                if "metadata" in event:
                    metadata = event["metadata"]
        except _STREAM_READ_ERRORS as exc:
            if self._closed:
                return  # closing the connection can end a read in progress with an error: it was asked for
            raise _failure(exc) from exc
        if not self._closed:  # a close after the last event still leaves no reply, as the protocol says
            self.reply = _reply(
                self._model_id, "".join(parts), stop_reason, metadata.get("usage", {}), metadata.get("metrics", {})
            )

    def close(self) -> None:
        self._closed = True
        self.reply = None
        self._events.close()
