"""The only place that reads or writes a session on a caller's behalf, so who may do what is decided once.

`read` returns the caller's `Access` (404 when none, 403 when too weak). `write` commits a planned write
as the caller: with a known `Access` once (the owner's condition, or the share's ConditionCheck in the same
transaction); without one, first as the owner (one request in the common case) and, when the session turns
out to be someone else's, after reading the caller's shares, once more as the sharee.
once per `Idempotency-Key` and answers a replay only while the caller still has the access.
"""

from __future__ import annotations

from typing import Any

from sessions_api import errors, ids, timeutil
from sessions_api.dal import session_writes
from sessions_api.dal.messages_repo import MessagesRepo
from sessions_api.dal.session_writes import SessionWrite, Writer
from sessions_api.dal.sessions_repo import SessionsRepo, WriteRefused, visible
from sessions_api.identity import Caller
from sessions_api.logic import policy
from sessions_api.logic.policy import Access, Action


def _known(session_id: str) -> None:
    if not ids.is_session_id(session_id):
        raise errors.SessionNotFound(session_id)


def read(caller: Caller, session_id: str, action: Action) -> Access:
    """The session if the caller may do `action` on it: one strongly consistent request."""
    _known(session_id)
    session, shares = SessionsRepo().get_with_shares(session_id, caller)
    session = visible(session, timeutil.now().timestamp())
    return policy.resolve(session_id, session, shares, caller, action, timeutil.now_iso())


def read_message(caller: Caller, session_id: str, message_id: str, action: Action) -> tuple[Access, dict[str, Any]]:
    """The caller's access and the message, in one request (404 for the session before the message)."""
    _known(session_id)
    session, shares, message = MessagesRepo().get_with_access(session_id, message_id, caller)
    session = visible(session, timeutil.now().timestamp())
    granted = policy.resolve(session_id, session, shares, caller, action, timeutil.now_iso())
    if message is None:
        raise errors.MessageNotFound(message_id)
    return granted, message


def write(caller: Caller, action: Action, change: SessionWrite, *, access: Access | None = None) -> None:
    """Commit `change` if the caller may `action` on its session; a refusal raises `policy.refusal`'s answer."""
    session_id = change.session_id
    _known(session_id)
    if access is None:
        try:
            session_writes.commit(change, Writer(owner=caller.user_id, caller=caller.user_id))
            return
        except WriteRefused as refused:
            current = visible(refused.current, timeutil.now().timestamp())
            if not refused.session_refused or current is None or current["created_by"] == caller.user_id:
                raise policy.refusal(session_id, refused, change.expects) from refused
        access = read(caller, session_id, action)  # someone else's session: 404 or 403 unless a share allows it
    else:
        policy.authorize(session_id, access.permission, action)
    writer = Writer(owner=access.session["created_by"], caller=caller.user_id)
    if access.share is not None:
        permissions = tuple(policy.granting_permissions(action))
        writer = Writer(writer.owner, access.share, permissions, timeutil.now_iso(), caller.user_id)
        change = session_writes.signed(change, caller.user_id)  # what names a sharee in another's session
    try:
        session_writes.commit(change, writer)
    except WriteRefused as refused:
        if refused.share_lost:
            read(caller, session_id, action)  # the share was revoked, weakened or lapsed meanwhile: 404 or 403
        raise policy.refusal(session_id, refused, change.expects) from refused
