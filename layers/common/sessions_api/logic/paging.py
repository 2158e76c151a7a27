"""Cursors over one kind of item in a session's partition (comments, shares)."""

from __future__ import annotations

from typing import Any

from sessions_api import errors
from sessions_api.cursor import CursorCodec
from sessions_api.dal import keys
from sessions_api.settings import Settings


def codec(settings: Settings) -> CursorCodec:
    if settings.cursor_secret is None:
        raise RuntimeError("CURSOR_SECRET is not set: give this function the cursor-signing key in template.yaml")
    return CursorCodec(settings.cursor_secret.get_secret_value().encode())


def partition_start(
    cursors: CursorCodec, cursor: str | None, *, user: str, scope: str, session_id: str, prefix: str
) -> dict[str, Any] | None:
    """The key a signed cursor resumes from, refused unless it points into this session's `prefix` items."""
    if cursor is None:
        return None
    start = cursors.decode(cursor, user=user, scope=scope)
    if start.get("PK") != keys.session_pk(session_id) or not str(start.get("SK", "")).startswith(prefix):
        raise errors.BadRequest("The cursor does not belong to this listing")
    return {"PK": start["PK"], "SK": start["SK"]}
