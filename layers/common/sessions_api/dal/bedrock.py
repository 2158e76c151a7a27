"""The Bedrock provider: Amazon Bedrock's Converse API (one request per turn) and ConverseStream (the reply
as it is produced, for chat runs)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from botocore.eventstream import EventStream, ParserError
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError
from urllib3.exceptions import HTTPError as TransportError
from urllib3.exceptions import ReadTimeoutError as TransportReadTimeout

from sessions_api.dal import clients
from sessions_api.providers import ModelFailure, ModelReply, ModelRequest, ToolCall, Turn

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


def _content(turn: Turn) -> list[dict[str, Any]]:
    """A turn as Converse's content blocks: tool results first (Converse wants them to answer the calls before
    anything else is said), then the text, then the tool calls the text announced."""
    blocks: list[dict[str, Any]] = [
        {
            "toolResult": {
                "toolUseId": result.call_id,
                "content": [{"json": result.output}],
                "status": "error" if result.is_error else "success",
            }
        }
        for result in turn.tool_results
    ]
    if turn.text:
        blocks.append({"text": turn.text})
    blocks += [
        # Converse takes back only an object: input that was not one is shown as the text the model sent
        {"toolUse": {"toolUseId": call.call_id, "name": call.name, "input": _as_object(call.input)}}
        for call in turn.tool_calls
    ]
    return blocks


def _as_object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {"unparsed_input": str(value)[:2000]}


def _params(request: ModelRequest) -> dict[str, Any]:
    params: dict[str, Any] = {
        "modelId": request.model_id,
        "messages": [{"role": turn.role, "content": _content(turn)} for turn in request.turns],
        "inferenceConfig": {"maxTokens": request.max_output_tokens, "temperature": request.temperature},
    }
    if request.system:
        params["system"] = [{"text": request.system}]
    if request.tools:
        params["toolConfig"] = {
            "tools": [
                {
                    "toolSpec": {
                        "name": tool.name,
                        "description": tool.description,
                        "inputSchema": {"json": tool.input_schema},
                    }
                }
                for tool in request.tools
            ]
        }
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
    model_id: str,
    text: str,
    stop_reason: str | None,
    usage: dict[str, Any],
    metrics: dict[str, Any],
    tool_calls: tuple[ToolCall, ...] = (),
) -> ModelReply:
    if not text.strip() and not tool_calls:
        raise ModelFailure(f"The model returned no text (stop reason {stop_reason})", retryable=False)
    return ModelReply(
        text=text,
        model_id=model_id,
        input_tokens=int(usage.get("inputTokens", 0)),
        output_tokens=int(usage.get("outputTokens", 0)),
        latency_ms=metrics.get("latencyMs"),
        stop_reason=stop_reason,
        tool_calls=tool_calls,
    )


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")  # NaN and Infinity: Python's json takes them, JSON does not


def _tool_input(streamed: str) -> Any:
    """A streamed tool input, its JSON fragments joined; one that is not JSON is kept as the text it was, for
    the tool to refuse (and the model to be told why)."""
    try:
        return json.loads(streamed, parse_constant=_not_json) if streamed else {}
    except ValueError:
        return streamed


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
        calls = tuple(
            ToolCall(block["toolUse"]["toolUseId"], block["toolUse"]["name"], block["toolUse"].get("input"))
            for block in blocks
            if "toolUse" in block
        )
        return _reply(
            request.model_id,
            text,
            response.get("stopReason"),
            response.get("usage") or {},
            response.get("metrics") or {},
            calls,
        )

    def converse_stream(self, request: ModelRequest) -> BedrockStream:
        try:
            response = clients.bedrock_runtime().converse_stream(**_params(request))
        except (ClientError, BotoCoreError) as exc:
            raise _failure(exc) from exc
        return BedrockStream(request.model_id, response["stream"])


class BedrockStream:
    """ConverseStream's events as text deltas; a tool call comes as a `contentBlockStart` naming it, its input
    as JSON fragments in `contentBlockDelta`s of that block, and is whole at its `contentBlockStop`; the stop
    reason comes in `messageStop`, the usage in the last event, `metadata`."""

    def __init__(self, model_id: str, events: EventStream) -> None:
        self.reply: ModelReply | None = None
        self._model_id = model_id
        self._events = events
        self._closed = False

    def __iter__(self) -> Iterator[str]:
        parts: list[str] = []
        stop_reason: str | None = None
        metadata: dict[str, Any] = {}
        started: dict[int, dict[str, Any]] = {}  # tool calls by content block, their input so far
        calls: list[ToolCall] = []
        try:
            for event in self._events:
                if "contentBlockStart" in event:
                    block = event["contentBlockStart"]
                    tool = block.get("start", {}).get("toolUse")
                    if tool:
                        started[block.get("contentBlockIndex", 0)] = {**tool, "input": []}
                if "contentBlockDelta" in event:
                    block = event["contentBlockDelta"]
                    delta = block.get("delta", {})
                    if delta.get("text"):
                        parts.append(delta["text"])
                        yield delta["text"]
                    if "toolUse" in delta and block.get("contentBlockIndex", 0) in started:
                        started[block.get("contentBlockIndex", 0)]["input"].append(delta["toolUse"].get("input", ""))
                        yield ""  # no text, but the model is alive: the run renews its lease meanwhile
                if "contentBlockStop" in event:
                    tool = started.pop(event["contentBlockStop"].get("contentBlockIndex", 0), None)
                    if tool:
                        calls.append(ToolCall(tool["toolUseId"], tool["name"], _tool_input("".join(tool["input"]))))
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
                self._model_id,
                "".join(parts),
                stop_reason,
                metadata.get("usage", {}),
                metadata.get("metrics", {}),
                tuple(calls),
            )

    def close(self) -> None:
        self._closed = True
        self.reply = None
        self._events.close()
