"""An erasure (DELETE /me) as the contract shows it: while it runs, and then as its receipt."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ErasureOut(BaseModel):
    erasure_id: str
    status: Literal["running", "completed"]
    requested_at: str = Field(description="When DELETE /me was asked (again, for an erasure asked twice)")
    completed_at: str | None = None
    sessions: int = Field(description="Sessions erased so far")
    items_deleted: int = Field(description="Table items deleted so far (sessions, messages, runs, shares, ...)")
    objects_deleted: int = Field(description="S3 object versions deleted so far")
    shares_removed: int = Field(description="Shares others had given you, removed")
    entries_anonymised: int = Field(
        description="What you wrote in others' sessions (comments, history entries, chat runs), now `erased-user`"
    )
    receipt_expires_at: str | None = Field(default=None, description="When this receipt itself is deleted")
