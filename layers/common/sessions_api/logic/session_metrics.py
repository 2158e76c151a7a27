"""A session's metrics, from the counters every write keeps on the session item (never from its messages)."""

from __future__ import annotations

from typing import Any

from sessions_api import timeutil
from sessions_api.dal.sessions_repo import SessionsRepo
from sessions_api.identity import Caller
from sessions_api.logic import access, guard
from sessions_api.models.entities import plain
from sessions_api.models.lifecycle import MetricsOut


def metrics(caller: Caller, session_id: str, repo: SessionsRepo | None = None) -> dict[str, Any]:
    """One request: the session (with the caller's shares, for access) carries every counter."""
    session = plain(guard.load_session(caller, session_id, access.Action.READ, repo).session)
    started = timeutil.parse(session["created_at"])
    ended_at = session.get("ended_at")
    ended = timeutil.parse(ended_at) if ended_at else timeutil.now()
    input_tokens, output_tokens = session.get("input_tokens", 0), session.get("output_tokens", 0)
    total_tokens = input_tokens + output_tokens
    cost = float(session.get("cost_usd", 0))
    counts = {role: session.get(f"{role}_messages", 0) for role in ("user", "assistant", "system")}
    return MetricsOut.model_validate(
        {
            "session_id": session_id,
            "status": session["status"],
            "execution_time": {
                "started_at": session["created_at"],
                "ended_at": ended_at,
                "seconds": round(max((ended - started).total_seconds(), 0.0), 3),
            },
            "token_usage": {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "total_tokens": total_tokens,
            },
            "message_counts": {**counts, "total": session.get("message_count", sum(counts.values()))},
            "turn_count": session.get("turn_count", 0),
            "error_count": session.get("error_count", 0),
            "cost_breakdown": {
                "total_usd": cost,
                "usd_per_1k_tokens": round(cost * 1000 / total_tokens, 6) if total_tokens else None,
            },
        }
    ).model_dump(mode="json")
