"""Request and response bodies of the lifecycle endpoints: status changes, results, metrics, history."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, StrictBool

from sessions_api.models.entities import Status
from sessions_api.models.types import JsonFloat, Reason, StrictModel, Text

# What results may carry; the whole document is at most the API's 1 MiB body (larger ones go to S3).
MAX_SUMMARY_CHARS = 100_000
MAX_CITATIONS = 1_000


class TransitionIn(StrictModel):
    reason: Reason | None = Field(default=None, description="Why; kept on the session and in its history")


class ResultsIn(StrictModel):
    results: Any = Field(default=None, description="Any JSON value the agent produced")
    summary: Annotated[Text, Field(max_length=MAX_SUMMARY_CHARS)] | None = None
    citations: Annotated[
        list[dict[str, Any] | Annotated[Text, Field(max_length=2_048)]], Field(max_length=MAX_CITATIONS)
    ] = Field(default_factory=list, description="Sources: a URL or title string, or an object such as {title, url}")
    confidence_score: Annotated[JsonFloat, Field(ge=0, le=1)] | None = None
    execution_metadata: dict[str, Any] = Field(default_factory=dict)
    complete: StrictBool = Field(default=False, description="Also move the session to `completed` (owner only)")


class ResultsOut(BaseModel):
    session_id: str
    status: Status | None = None
    results: Any = None
    summary: str | None = None
    citations: list[Any] = []
    confidence_score: float | None = None
    execution_metadata: dict[str, Any] = {}
    stored_at: str | None = None
    stored_by: str | None = None


class ExecutionTime(BaseModel):
    started_at: str
    ended_at: str | None
    seconds: float


class TokenCounts(BaseModel):
    input_tokens: int
    output_tokens: int
    total_tokens: int


class MessageCounts(BaseModel):
    user: int
    assistant: int
    system: int
    total: int


class CostBreakdown(BaseModel):
    currency: str = "USD"
    total_usd: float
    usd_per_1k_tokens: float | None


class MetricsOut(BaseModel):
    session_id: str
    status: Status
    execution_time: ExecutionTime
    token_usage: TokenCounts
    message_counts: MessageCounts
    turn_count: int
    error_count: int
    cost_breakdown: CostBreakdown


class TimelineEvent(BaseModel):
    event_id: str
    type: str
    actor: str
    at: str
    details: dict[str, Any] = {}


class HistoryOut(BaseModel):
    session_id: str
    timeline: list[TimelineEvent]
    next_cursor: str | None
    has_more: bool
