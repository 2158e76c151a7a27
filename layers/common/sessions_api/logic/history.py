"""History events: one item per change that matters, written in the same transaction as the change."""

from __future__ import annotations

from typing import Any

from sessions_api import ids
from sessions_api.dal import keys


def event_item(session_id: str, event_type: str, actor: str, at: str, **data: Any) -> dict[str, Any]:
    event_id = ids.new_id("evt")
    return {
        **keys.event_key(session_id, event_id),
        "type": "event",
        "event_id": event_id,
        "session_id": session_id,
        "event_type": event_type,
        "actor": actor,
        "at": at,
        **({"data": data} if data else {}),
    }
