"""Request and response bodies of sharing and comments."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, field_validator, model_validator

from sessions_api.models.types import Instant, StrictModel, Text

MAX_RECIPIENTS = 50
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_USER_ID = re.compile(r"^[^\s@]{1,128}$")


class SharePermission(StrEnum):
    VIEW = "view"
    EDIT = "edit"
    COLLABORATE = "collaborate"


class RecipientKind(StrEnum):
    USER = "user"
    EMAIL = "email"


def recipient_kind(recipient: str) -> RecipientKind:
    """An `@` makes an e-mail address (a user id never has one), anything else is a user id (`sub`)."""
    return RecipientKind.EMAIL if "@" in recipient else RecipientKind.USER


def _recipient(value: str) -> str:
    value = value.strip()
    if "@" in value:
        if len(value) > 254 or not _EMAIL.match(value):
            raise ValueError("is not an e-mail address")
        return value.lower()  # matched against the lower-cased `email` claim
    if not _USER_ID.match(value):
        raise ValueError("a user id is 1 to 128 characters without spaces")
    return value


Recipient = Annotated[str, StringConstraints(min_length=1, max_length=254), AfterValidator(_recipient)]
ShareMessage = Annotated[Text, StringConstraints(max_length=1000)]


class ShareIn(StrictModel):
    recipients: Annotated[list[Recipient], Field(min_length=1, max_length=MAX_RECIPIENTS)] = Field(
        description="User ids (`sub`) or e-mail addresses (matched case-insensitively); duplicates count once"
    )
    permissions: SharePermission = Field(description="`view` reads; `edit` also writes; `collaborate` also comments")
    message: ShareMessage | None = None
    expiration: Instant | None = Field(
        default=None, description="RFC 3339 time in the future when the access ends; none: until revoked"
    )

    @field_validator("recipients")
    @classmethod
    def _distinct(cls, recipients: list[str]) -> list[str]:
        return list(dict.fromkeys(recipients))


class ShareOut(BaseModel):
    share_id: str
    session_id: str
    share_url: str
    recipients: list[str]
    permissions: SharePermission
    message: str | None
    expires_at: str | None
    created_at: str


class GrantOut(BaseModel):
    """One recipient's access, as the owner sees it in the shares list."""

    share_id: str
    recipient: str
    recipient_kind: RecipientKind
    permissions: SharePermission
    message: str | None
    expires_at: str | None
    expired: bool
    created_at: str
    created_by: str


class ShareList(BaseModel):
    session_id: str
    shares: list[GrantOut]
    next_cursor: str | None
    has_more: bool


class CommentType(StrEnum):
    NOTE = "note"
    QUESTION = "question"
    INSIGHT = "insight"


class ReferencePoint(StrictModel):
    """What a comment is about: a message, a slide, a quoted passage (at least one)."""

    message_id: Annotated[str, StringConstraints(pattern=r"^msg_[0-9A-HJKMNP-TV-Z]{26}$")] | None = None
    slide_id: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")] | None = (
        None
    )
    quote: Annotated[Text, StringConstraints(min_length=1, max_length=1000)] | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> ReferencePoint:
        if self.message_id is None and self.slide_id is None and self.quote is None:
            raise ValueError("name at least one of message_id, slide_id, quote")
        return self


class CommentIn(StrictModel):
    content: Annotated[Text, StringConstraints(min_length=1, max_length=10_000)]
    comment_type: CommentType
    reference_point: ReferencePoint | None = None

    @field_validator("content")
    @classmethod
    def _not_blank(cls, content: str) -> str:
        if not content.strip():
            raise ValueError("must not be blank")
        return content


class CommentOut(BaseModel):
    comment_id: str
    session_id: str
    content: str
    comment_type: CommentType
    reference_point: ReferencePoint | None
    author: str
    created_at: str


class CommentList(BaseModel):
    session_id: str
    comments: list[CommentOut]
    next_cursor: str | None
    has_more: bool
