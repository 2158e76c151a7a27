"""A session's history as a timeline: its `EVENT#` items, oldest first (or newest first), paginated."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sessions_api.dal import keys, partition
from sessions_api.dal.sessions_repo import SessionsRepo
from sessions_api.identity import Caller
from sessions_api.logic import access, guard, paging
from sessions_api.models.entities import plain
from sessions_api.models.lifecycle import HistoryOut, TimelineEvent
from sessions_api.settings import Settings


def event_out(item: dict[str, Any]) -> TimelineEvent:
    data = plain(item)
    return TimelineEvent(
        event_id=data["event_id"],
        type=data["event_type"],
        actor=data["actor"],
        at=data["at"],
        details=data.get("data") or {},
    )


@dataclass
class Timeline:
    settings: Settings
    repo: SessionsRepo = field(default_factory=SessionsRepo)

    def page(
        self, caller: Caller, session_id: str, *, limit: int, cursor: str | None, descending: bool
    ) -> dict[str, Any]:
        """Two requests: the session (access) and one query of its events."""
        guard.load_session(caller, session_id, access.Action.READ, self.repo)
        cursors = paging.codec(self.settings)
        scope = f"history:{session_id}:{'desc' if descending else 'asc'}"
        start = paging.partition_start(
            cursors, cursor, user=caller.user_id, scope=scope, session_id=session_id, prefix=keys.EVENT_PREFIX
        )
        found = partition.page(session_id, keys.EVENT_PREFIX, limit=limit, start_key=start, ascending=not descending)
        next_cursor = cursors.encode(found.next_key, user=caller.user_id, scope=scope) if found.next_key else None
        return HistoryOut(
            session_id=session_id,
            timeline=[event_out(item) for item in found.items],
            next_cursor=next_cursor,
            has_more=next_cursor is not None,
        ).model_dump(mode="json")
