"""Language-model providers behind one small interface, chosen by `MODEL_PROVIDER`.

`bedrock` (deployed) calls Amazon Bedrock's Converse and ConverseStream APIs (`dal/bedrock.py`, the code
that talks to AWS); `local` is a deterministic echo for `make dev` and tests, which never leaves the process.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from sessions_api.settings import Settings

TurnRole = Literal["user", "assistant"]


def estimate_tokens(text: str) -> int:
    """A deliberately high estimate (≈ 3 UTF-8 bytes a token; real tokenizers average about 4 for English),
    so budget checks err towards refusing rather than overspending."""
    return len(text.encode("utf-8")) // 3 + 1 if text else 0


@dataclass(frozen=True)
class Tool:
    """A tool the model may call: its input is a JSON object that `input_schema` (JSON Schema) describes."""

    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    call_id: str
    name: str
    input: Any  # what the model sent: a JSON object when it kept to the schema's shape, else anything


@dataclass(frozen=True)
class ToolResult:
    call_id: str
    output: dict[str, Any]
    is_error: bool = False


@dataclass(frozen=True)
class Turn:
    role: TurnRole
    text: str
    tool_calls: tuple[ToolCall, ...] = ()  # an assistant turn's calls
    tool_results: tuple[ToolResult, ...] = ()  # the user turn after it answers each of them


@dataclass(frozen=True)
class ModelRequest:
    model_id: str
    system: str
    turns: list[Turn]  # alternating, starting and ending with a user turn
    max_output_tokens: int
    temperature: float = 0.5
    tools: tuple[Tool, ...] = ()


@dataclass(frozen=True)
class ModelReply:
    text: str
    model_id: str
    input_tokens: int
    output_tokens: int
    latency_ms: int | None = None
    stop_reason: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()  # the model wants these run, and their results, before it goes on


class ModelFailure(Exception):
    """The model gave no answer. `retryable`: throttling, timeouts, outages (503); otherwise a refusal (502)."""

    def __init__(self, reason: str, *, retryable: bool, code: str = "ModelError") -> None:
        super().__init__(f"{code}: {reason}")
        self.reason = reason
        self.retryable = retryable
        self.code = code


class ModelStream(Protocol):
    """A reply as it is produced: iterating yields text deltas (an empty one while the model writes a tool's
    input: it is alive); once exhausted, `reply` is
    the whole reply (text, tool calls, usage, stop reason). `close()` stops reading early (a cancelled run)
    and frees the connection; after it, `reply` is None. A failure before or during the stream raises ModelFailure."""

    reply: ModelReply | None

    def __iter__(self) -> Iterator[str]: ...

    def close(self) -> None: ...


class ModelProvider(Protocol):
    def model_for(self, requested: str) -> str:
        """The model id this provider really answers with when `requested` is asked for."""
        ...

    def converse(self, request: ModelRequest) -> ModelReply: ...

    def converse_stream(self, request: ModelRequest) -> ModelStream: ...


def provider_for(settings: Settings) -> ModelProvider:
    """The provider `MODEL_PROVIDER` names; the local one pauses `LOCAL_STREAM_DELAY_MS` between streamed chunks."""
    if settings.model_provider == "local":
        from sessions_api.providers.local_echo import LocalEchoProvider

        return LocalEchoProvider(chunk_delay_seconds=settings.local_stream_delay_ms / 1000)
    from sessions_api.dal.bedrock import BedrockConverseProvider

    return BedrockConverseProvider()
