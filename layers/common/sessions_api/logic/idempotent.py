"""Idempotency: a route's work runs once per `Idempotency-Key`, and a replay is authorized like a first call.

Every route that takes the header goes through `once`. Powertools' idempotency utility (in
`dal/idempotency.py`) stores the first response and calls the route's work back only for a new key, so
this module sits above the use case the work calls, and control never comes back into a module below it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sessions_api.dal import idempotency
from sessions_api.identity import Caller
from sessions_api.logic import authorized
from sessions_api.logic.policy import Action


def once(
    caller: Caller,
    action: Action,
    *,
    session_id: str | None,
    operation: str,
    key: str | None,
    body: Any,
    produce: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """`produce()` once per `Idempotency-Key`; a replay is answered only while the caller may still `action`.

    A replay skips the route's own code, so the access check a first call makes happens here instead:
    a revoked or expired share, or a deleted session, answers 404/403, never the stored response.
    `session_id` None: a create, whose replay is checked against the session it made or found.
    """
    result, replayed = idempotency.run_once(
        operation=operation, user=caller.user_id, key=key, body=body, session_id=session_id, produce=produce
    )
    if replayed:
        authorized.read(caller, session_id or result["session_id"], action)
    return result
