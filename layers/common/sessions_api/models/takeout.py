"""An export-everything job (POST /me/export) as the contract shows it: its progress, then its download."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

TakeoutStatus = Literal["queued", "running", "completed", "failed", "cancelled"]


class TakeoutJobOut(BaseModel):
    job_id: str = Field(description="`takeout_` + a ULID")
    status: TakeoutStatus = Field(
        description="`queued` until a worker takes it, `running`, then `completed`, `failed` (see `error`) or "
        "`cancelled` (by an erasure of everything, DELETE /me)"
    )
    created_at: str
    started_at: str | None = None
    completed_at: str | None = None
    sessions: int | None = Field(default=None, description="Sessions in the archive (known once it runs)")
    sessions_done: int = Field(default=0, description="Sessions written to the archive so far")
    size_bytes: int | None = Field(default=None, description="The archive's size, once completed")
    download_url: str | None = Field(default=None, description="A presigned link to the zip, once completed")
    download_url_expires_at: str | None = Field(default=None, description="When `download_url` stops working")
    expires_at: str | None = Field(default=None, description="When the archive itself is deleted")
    error: str | None = Field(default=None, description="Why a failed job failed")
