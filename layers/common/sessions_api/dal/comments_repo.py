"""Comments: one item each in the session's partition, in the order their time-sortable ids give."""

from __future__ import annotations

from typing import Any

from sessions_api.dal import keys
from sessions_api.dal.partition import page as partition_page
from sessions_api.dal.sessions_repo import Page


class CommentsRepo:
    def page(self, session_id: str, *, limit: int, start_key: dict[str, Any] | None) -> Page:
        return partition_page(session_id, keys.COMMENT_PREFIX, limit=limit, start_key=start_key)
