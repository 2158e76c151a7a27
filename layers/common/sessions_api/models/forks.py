"""A fork as it crosses HTTP: what the caller asks for, and where a fork came from."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from sessions_api.models.types import StrictModel, Title

MessageId = Annotated[str, StringConstraints(pattern=r"^msg_[0-9A-HJKMNP-TV-Z]{26}$")]


class ForkIn(StrictModel):
    from_message_id: MessageId | None = Field(
        default=None,
        description="The last message the fork takes (it and every one before it); all of them when absent",
    )
    title: Title | None = Field(default=None, description="The fork's title; the source's when absent")


class ForkedFrom(BaseModel):
    session_id: str
    message_id: str | None = Field(default=None, description="The last message copied; null when there was none")
