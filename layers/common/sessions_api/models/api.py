"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator, model_validator

from sessions_api.ids import SESSION_ID_PATTERN
from sessions_api.models.entities import SessionOut, SessionType, Status
from sessions_api.models.types import JsonFloat, JsonInt, Metadata, ModelId, Name, Preferences, StrictModel, Text, Title

SessionId = Annotated[
    str,
    Field(pattern=SESSION_ID_PATTERN, examples=["session_0123456789abcdef", "0b6f4d4e-7c1a-4f0e-9a39-2d5c8e1f3a70"]),
]


# Paths under /sessions that are routes of their own: a session by that id could not be read there.
RESERVED_SESSION_IDS = frozenset({"continue"})


class BudgetIn(StrictModel):
    max_tokens: JsonInt | None = Field(default=None, ge=1, le=1_000_000_000)
    max_cost_usd: JsonFloat | None = Field(default=None, ge=0, le=1_000_000)


class CreateSessionIn(StrictModel):
    session_id: SessionId | None = Field(
        default=None,
        description=(
            "The client's own id (8–64 of `A-Z a-z 0-9 _ -`, e.g. a UUID); by default `session_` + 16 random hex. "
            "One the caller already owns → `200` with that session, unchanged; one that is taken → `409`"
        ),
    )
    title: Title = "New Chat"
    session_type: SessionType = SessionType.CHAT

    @field_validator("session_id")
    @classmethod
    def _not_a_route(cls, value: str | None) -> str | None:
        if value in RESERVED_SESSION_IDS:
            raise ValueError(f"{value!r} names a route (/sessions/{value}); choose another id")
        return value

    agent_name: Name = "chat"
    model_id: ModelId | None = None
    prompt: Annotated[Text, Field(min_length=1, max_length=100_000)] | None = Field(
        default=None, description="Stored as the session's first user message"
    )
    metadata: Metadata = Field(default_factory=dict)
    budget: BudgetIn | None = None
    preferences: Preferences = Field(default_factory=dict)
    idle_timeout_minutes: JsonInt | None = Field(default=None, ge=1, le=43_200)


class UpdateSessionIn(StrictModel):
    title: Title | None = None
    agent_name: Name | None = None
    model_id: ModelId | None = None
    metadata: Metadata | None = None
    preferences: Preferences | None = None

    @model_validator(mode="after")
    def _not_null(self) -> UpdateSessionIn:
        for name in self.model_fields_set:
            if getattr(self, name) is None and name in {"title", "agent_name"}:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        """Only the fields the client sent; `model_id: null` clears the model."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class CleanupIn(StrictModel):
    session_ids: Annotated[list[Annotated[str, Field(max_length=64)]], Field(min_length=1, max_length=100)]


class CleanupOut(BaseModel):
    deleted: int
    session_ids: list[str]
    not_found: list[str]


class SessionList(BaseModel):
    sessions: list[SessionOut]
    count: int
    total: int = Field(description="The caller's own sessions, whatever the filters")
    next_cursor: str | None
    has_more: bool
    summary: dict[Status, int] = Field(description="The caller's own sessions counted by status")


class SessionWithMessages(SessionOut):
    messages: list[dict[str, Any]] | None = None
    messages_next_cursor: str | None = None
