"""What is stored, and how a stored session becomes the contract's session object."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from sessions_api.models.forks import ForkedFrom


class Status(StrEnum):
    ACTIVE = "active"
    QUEUED = "queued"
    INITIALIZING = "initializing"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    EXPIRED = "expired"


class SessionType(StrEnum):
    CHAT = "chat"
    RESEARCH = "research"
    ANALYSIS = "analysis"
    SYNTHESIS = "synthesis"


# Statuses that count against the per-user quota of open sessions.
OPEN_STATUSES = frozenset({Status.ACTIVE, Status.QUEUED, Status.INITIALIZING, Status.RUNNING, Status.PAUSED})
# Only these accept new messages.
WRITABLE_STATUSES = frozenset({Status.ACTIVE, Status.RUNNING})
ROLES = ("user", "assistant", "system")
PREVIEW_CHARS = 100


class TokenUsage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0


class Budget(BaseModel):
    max_tokens: int | None = None
    max_cost_usd: float | None = None


class SessionOut(BaseModel):
    """The contract's session object."""

    session_id: str
    title: str
    session_type: SessionType
    status: Status
    agent_name: str
    model_id: str | None = None
    metadata: dict[str, str] = {}
    preferences: dict[str, Any] = {}
    budget: Budget = Budget()
    created_by: str
    created_at: str
    updated_at: str
    last_activity_at: str
    expires_at: str | None = None
    is_active: bool
    message_count: int = 0
    turn_count: int = 0
    token_usage: TokenUsage = TokenUsage()
    last_message_preview: str | None = None
    has_slide_deck: bool = Field(default=False, description="The session has a slide deck (`GET …/slides`)")
    active_run: str | None = Field(default=None, description="The `request_id` of the chat run in progress")
    forked_from: ForkedFrom | None = Field(default=None, description="The session and message this one was forked from")
    version: int


def plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal: turn them into int or float, recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | set | tuple):
        return [plain(item) for item in value]
    return value


def storable(value: Any) -> Any:
    """Floats become Decimal (DynamoDB refuses floats); None-valued map entries are dropped."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {key: storable(item) for key, item in value.items() if item is not None}
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    return value


def _expires_at(data: dict[str, Any], status: Status) -> str | None:
    """When an open session expires if nothing is written before (derived, never stored)."""
    if status not in OPEN_STATUSES or "idle_seconds" not in data:
        return None
    moment = datetime.fromisoformat(data["last_activity_at"]) + timedelta(seconds=data["idle_seconds"])
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _active_run(data: dict[str, Any]) -> str | None:
    # Only while its lease holds, as a new chat judges the turn: a lapsed holder is a dead run about to be recovered.
    if data.get("active_run_until", 0) >= int(time.time()):
        return data.get("active_run")
    return None


def session_out(item: dict[str, Any]) -> SessionOut:
    data = plain(item)
    status = Status(data["status"])
    input_tokens, output_tokens = data.get("input_tokens", 0), data.get("output_tokens", 0)
    return SessionOut(
        session_id=data["session_id"],
        title=data["title"],
        session_type=data["session_type"],
        status=status,
        agent_name=data["agent_name"],
        model_id=data.get("model_id"),
        metadata=data.get("metadata") or {},
        preferences=data.get("preferences") or {},
        budget=Budget(**(data.get("budget") or {})),
        created_by=data["created_by"],
        created_at=data["created_at"],
        updated_at=data["updated_at"],
        last_activity_at=data["last_activity_at"],
        expires_at=_expires_at(data, status),
        is_active=status in OPEN_STATUSES,
        message_count=data.get("message_count", 0),
        turn_count=data.get("turn_count", 0),
        token_usage=TokenUsage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=input_tokens + output_tokens,
            cost_usd=float(data.get("cost_usd", 0)),
        ),
        last_message_preview=data.get("last_message_preview"),
        has_slide_deck=data.get("deck_version", 0) > 0,
        active_run=_active_run(data),
        forked_from=data.get("forked_from"),
        version=data["version"],
    )
