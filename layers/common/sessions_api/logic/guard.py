"""Reads and writes of a session on a caller's behalf, always through the access policy.

Every endpoint group loads and writes sessions through here, so who may do what is decided once.
An owner's write is one request (the ownership is a condition of the write itself); anyone else's
write carries a ConditionCheck on the share that allowed it, in the same transaction, so a
revocation or expiry can never race the write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sessions_api import errors, ids, timeutil
from sessions_api.dal import idempotency
from sessions_api.dal.expressions import Expr
from sessions_api.dal.sessions_repo import SessionsRepo, WriteRefused, owner_condition, visible
from sessions_api.identity import Caller
from sessions_api.logic import access
from sessions_api.models.entities import Status

Refusal = Callable[[dict[str, Any] | None], errors.ApiError]


def load_session(
    caller: Caller, session_id: str, action: access.Action, repo: SessionsRepo | None = None
) -> access.Access:
    """The session if the caller may do `action` on it (404 when no access, 403 when too little)."""
    if not ids.is_session_id(session_id):
        raise errors.SessionNotFound(session_id)
    session, shares = (repo or SessionsRepo()).get_with_shares(session_id, caller)
    session = visible(session, timeutil.now().timestamp())
    return access.resolve(session_id, session, shares, caller, action, timeutil.now_iso())


def once(
    caller: Caller,
    action: access.Action,
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
    `session_id` None: a create, whose replay is checked against the session it made.
    """
    result, replayed = idempotency.run_once(
        operation=operation, user=caller.user_id, key=key, body=body, session_id=session_id, produce=produce
    )
    if replayed:
        load_session(caller, session_id or result["session_id"], action)
    return result


def default_refusal(session_id: str) -> Refusal:
    """Why a conditional write was refused, told from the session as it was."""

    def refusal(current: dict[str, Any] | None) -> errors.ApiError:
        if current is None:
            return errors.SessionNotFound(session_id)
        if current["status"] == Status.EXPIRED:
            return errors.SessionExpired(f"Session {session_id} has expired and accepts no more writes")
        return errors.Conflict(f"Session {session_id} changed while it was being written; retry")

    return refusal


def write_session(
    caller: Caller,
    session_id: str,
    action: access.Action,
    build: Callable[[Expr], Expr],
    *,
    extra_items: Iterable[dict[str, Any]] = (),
    extra_operations: Iterable[dict[str, Any]] = (),
    refusal: Refusal | None = None,
    repo: SessionsRepo | None = None,
) -> None:
    """Apply `build(expr)` to the session with `extra_items`, atomically, if the caller may `action`.

    `build` adds the write's own SET/ADD/REMOVE and conditions; ownership is added here.
    `extra_operations` are unconditional transaction operations (e.g. Deletes) of the same write.
    """
    repo = repo or SessionsRepo()
    refuse = refusal or default_refusal(session_id)
    items = list(extra_items)
    operations = list(extra_operations)
    if not ids.is_session_id(session_id):
        raise errors.SessionNotFound(session_id)
    try:
        repo.update(
            session_id, build(owner_condition(Expr(), caller.user_id)), extra_items=items, extra_operations=operations
        )
        return
    except WriteRefused as refused:
        current = visible(refused.current, timeutil.now().timestamp())
        if current is None or current["created_by"] == caller.user_id:
            raise refuse(current) from refused
        owner = current["created_by"]
    granted = load_session(caller, session_id, action, repo)  # 404 or 403 unless a share allows it
    if granted.share is None:  # ownership changed hands between the two reads: never happens, but never write
        raise errors.SessionNotFound(session_id)
    check = repo.share_check(granted.share, access.granting_permissions(action), timeutil.now_iso())
    try:
        repo.update(
            session_id,
            build(owner_condition(Expr(), owner)),
            extra_items=items,
            share_check=check,
            extra_operations=operations,
        )
    except WriteRefused as refused:
        if refused.current is None:  # the share went away meanwhile
            load_session(caller, session_id, action, repo)
        raise refuse(visible(refused.current, timeutil.now().timestamp())) from refused
