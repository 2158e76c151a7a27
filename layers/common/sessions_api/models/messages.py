"""Request and response bodies of the messages and chat endpoints."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Discriminator, Field, StrictBool, Tag

from sessions_api.ids import SESSION_ID_PATTERN
from sessions_api.models.decks import SlideContext, SlideDeckOut
from sessions_api.models.types import JsonInt, Metadata, ModelId, Name, StrictModel, Text

MAX_CONTENT_CHARS = 100_000
MAX_BATCH = 25

Role = Literal["user", "assistant", "system"]
Content = Annotated[Text, Field(min_length=1, max_length=MAX_CONTENT_CHARS)]


class MessageIn(StrictModel):
    role: Role
    content: Content
    model_id: ModelId | None = None
    agent_name: Name | None = None
    token_count: JsonInt | None = Field(default=None, ge=0, le=10_000_000)
    response_time_ms: JsonInt | None = Field(default=None, ge=0, le=86_400_000)
    is_error: StrictBool = False


class MessageBatchIn(StrictModel):
    messages: Annotated[list[MessageIn], Field(min_length=1, max_length=MAX_BATCH)]


def _append_shape(value: Any) -> str:
    if isinstance(value, dict):
        return "batch" if "messages" in value else "message"
    return "batch" if isinstance(value, MessageBatchIn) else "message"


# One message, or `{messages: [...]}`: validation errors speak of the shape the client sent, not of both.
AppendIn = Annotated[
    Annotated[MessageIn, Tag("message")] | Annotated[MessageBatchIn, Tag("batch")], Discriminator(_append_shape)
]


class MessageOut(BaseModel):
    message_id: str
    session_id: str
    role: Role
    content: str
    created_at: str
    token_count: int | None = None
    model_id: str | None = None
    agent_name: str | None = None
    response_time_ms: int | None = None
    is_error: bool = False
    metadata: dict[str, str] | None = None
    request_id: str | None = Field(default=None, description="The chat run that wrote it")
    stopped: bool = Field(default=False, description="A reply cut short by a cancel")


class MessageBatchOut(BaseModel):
    messages: list[MessageOut]


# What an append answers: the message, or `{messages: [...]}` when a batch was sent.
AppendOut = MessageOut | MessageBatchOut


class MessagePage(BaseModel):
    messages: list[MessageOut]
    next_cursor: str | None
    has_more: bool


class ChatIn(StrictModel):
    message: Content
    metadata: Metadata | None = None


class NewChatIn(ChatIn):
    session_id: Annotated[str, Field(pattern=SESSION_ID_PATTERN)] | None = Field(
        default=None, description="Omit to start a temporary session"
    )


IfBusy = Literal["reject", "enqueue", "interrupt"]


class ChatRunIn(ChatIn):
    """A chat as a run (async, stream): what a session's chat takes, and what to do while another runs."""

    agent_name: Name | None = Field(default=None, description="The agent for this chat (default: the session's)")
    slide_context: SlideContext | None = Field(
        default=None,
        description="Revise only these slides of the deck (needs an agent that writes slides, e.g. `slides`)",
    )
    if_busy: IfBusy = Field(
        default="reject",
        description="While another run holds the session: `reject` (409 session_busy), `enqueue` (run after it, "
        "in submission order) or `interrupt` (cancel it, keeping its partial reply, and run this one)",
    )


class NewChatRunIn(ChatRunIn):
    session_id: Annotated[str, Field(pattern=SESSION_ID_PATTERN)] | None = Field(
        default=None, description="Omit to start a temporary session"
    )


class RunAccepted(BaseModel):
    request_id: str
    session_id: str
    status: Literal["queued"]
    poll_url: str


class RunEvent(BaseModel):
    id: int
    type: Literal["assistant", "tool_call", "tool_result", "slides", "error", "complete"]
    at: str
    model_config = {"extra": "allow"}


class ReplacementInfo(BaseModel):
    start_index: int
    original_count: int
    replacement_count: int


class RunResult(BaseModel):
    message_id: str
    content: str
    usage: dict[str, Any] | None = None
    slides: SlideDeckOut | None = Field(default=None, description="The whole deck, when the run wrote it")
    raw_html: str | None = Field(default=None, description="The deck as one standalone HTML document (no scripts)")
    replacement_info: ReplacementInfo | None = Field(default=None, description="Which slides a revision replaced")


class RunPoll(BaseModel):
    request_id: str
    session_id: str
    status: Literal["queued", "running", "completed", "error", "cancelled"]
    events: list[RunEvent]
    last_message_id: int = Field(description="The last event id seen: send it as `after_message_id` next time")
    result: RunResult | None = None
    error: dict[str, Any] | None = None


class RunCancelled(BaseModel):
    request_id: str
    status: Literal["cancelled"]


class RunSummary(BaseModel):
    request_id: str
    status: str
    created_at: str
    finished_at: str | None = None
    message_id: str | None = None


class RunPage(BaseModel):
    runs: list[RunSummary]
    next_cursor: str | None
    has_more: bool


class Usage(BaseModel):
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float


class ChatOut(BaseModel):
    response: str
    session_id: str
    message_id: str = Field(description="The assistant reply's id")
    user_message_id: str
    model_id: str
    execution_time: float = Field(description="Seconds the whole chat call took")
    request_id: str | None
    usage: Usage | None
    stopped: bool = Field(default=False, description="The run was cancelled: `response` is the reply so far")
