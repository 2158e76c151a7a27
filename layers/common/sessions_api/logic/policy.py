"""Who may do what on a session, and why a write was refused: pure decisions, no I/O.

No access at all answers exactly like a missing session (404); access that is too weak for the
action is 403 `session_not_accessible`. A refused write is explained from the session as the refusal
found it and the write's own `Expects`, the values its condition was built from.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

from sessions_api import errors, timeutil
from sessions_api.dal.session_writes import Expects
from sessions_api.dal.sessions_repo import WriteRefused, visible
from sessions_api.identity import Caller
from sessions_api.models.entities import Status


class Permission(IntEnum):
    NONE = 0
    VIEW = 1
    EDIT = 2
    COLLABORATE = 3
    OWNER = 4


class Action(StrEnum):
    READ = "read"  # the session, messages, deck, exports list, comments, history
    WRITE = "write"  # messages, chat, slides, rename and other edits
    COMMENT = "comment"
    EXPORT = "export"
    MANAGE = "manage"  # delete, share, list shares (who has access), revoke, status changes: the owner only


REQUIRED: dict[Action, Permission] = {
    Action.READ: Permission.VIEW,
    Action.WRITE: Permission.EDIT,
    Action.COMMENT: Permission.COLLABORATE,
    Action.EXPORT: Permission.COLLABORATE,
    Action.MANAGE: Permission.OWNER,
}

SHARE_PERMISSIONS: dict[str, Permission] = {
    "view": Permission.VIEW,
    "edit": Permission.EDIT,
    "collaborate": Permission.COLLABORATE,
}


def share_is_live(share: dict[str, Any], now_iso: str) -> bool:
    expires_at = share.get("expires_at")
    return expires_at is None or expires_at > now_iso


@dataclass(frozen=True)
class Access:
    session: dict[str, Any]
    permission: Permission
    share: dict[str, Any] | None  # the share that grants a non-owner's access


def resolve(
    session_id: str,
    session: dict[str, Any] | None,
    shares: list[dict[str, Any]],
    caller: Caller,
    action: Action,
    now_iso: str,
) -> Access:
    """The caller's access to the session, if it allows `action` (404 when none, 403 when too little)."""
    if session is not None and session["created_by"] == caller.user_id:
        return Access(session, Permission.OWNER, None)
    live = [share for share in shares if share_is_live(share, now_iso)] if session is not None else []
    best = max(
        live, key=lambda share: SHARE_PERMISSIONS.get(share.get("permission", ""), Permission.NONE), default=None
    )
    permission = SHARE_PERMISSIONS.get(best.get("permission", ""), Permission.NONE) if best else Permission.NONE
    authorize(session_id, permission, action)
    assert session is not None
    return Access(session, permission, best)


def granting_permissions(action: Action) -> list[str]:
    """The share permissions that allow `action` (what a write re-checks in its transaction)."""
    return [name for name, permission in SHARE_PERMISSIONS.items() if permission >= REQUIRED[action]]


def authorize(session_id: str, permission: Permission, action: Action) -> None:
    if permission is Permission.NONE:
        raise errors.SessionNotFound(session_id)
    if permission < REQUIRED[action]:
        raise errors.SessionNotAccessible(
            f"Your {permission.name.lower()} access to session {session_id} does not allow {action.value}"
        )


class Moved(errors.Conflict):
    """The session changed between the read a write was planned on and the write: plan it again from
    `current`, the session as the refusal found it (a caller out of attempts answers this 409)."""

    def __init__(self, session_id: str, current: dict[str, Any]) -> None:
        super().__init__(f"Session {session_id} keeps changing; retry")
        self.current = current


def precondition_failed(what: str, if_match: int, version: int) -> errors.PreconditionFailed:
    return errors.PreconditionFailed(
        f"{what} is at version {version}, not {if_match}", headers={"ETag": f'"{version}"'}
    )


def busy(session_id: str) -> errors.SessionBusy:
    return errors.SessionBusy(
        f"Another chat on session {session_id} is still running; retry when it has answered, "
        "or send if_busy: enqueue or interrupt",
        headers={"Retry-After": "2"},
    )


def closed(session_id: str, session: dict[str, Any], statuses: frozenset[str]) -> errors.ApiError | None:
    """Why the session's status refuses a write that accepts `statuses`, or None when it does not."""
    status = session["status"]
    if status in statuses:
        return None
    if len(statuses) == 1:  # a write planned on the status it read (a transition): plan it again
        return Moved(session_id, session)
    if status == Status.EXPIRED:
        return errors.SessionExpired(f"Session {session_id} has expired and accepts no more writes")
    allowed = " or ".join(sorted(statuses))
    return errors.Conflict(f"Session {session_id} is {status}; only {allowed} sessions accept this")


def refusal(session_id: str, refused: WriteRefused, expects: Expects) -> errors.ApiError:
    """Why the write was refused, told from the session as it was then (the caller's access aside)."""
    if not refused.session_refused:
        if refused.message_gone and expects.message_id is not None:
            return errors.MessageNotFound(expects.message_id)
        return errors.Conflict(f"Session {session_id} changed while it was being written; retry")
    current = visible(refused.current, timeutil.now().timestamp())
    if current is None:
        return errors.SessionNotFound(session_id)
    version = int(current["version"])
    if expects.version is not None and version != expects.version:
        return precondition_failed(f"Session {session_id}", expects.version, version)
    problem = closed(session_id, current, expects.statuses)
    if problem is not None:
        return problem
    if expects.paused_from is not None and current.get("paused_from", Status.ACTIVE) != expects.paused_from:
        return Moved(session_id, current)
    if expects.turn_free_at is not None and (current.get("active_run_until") or 0) >= expects.turn_free_at:
        return busy(session_id)
    deck_version = int(current.get("deck_version", 0))
    if expects.deck_version is not None and deck_version != expects.deck_version:
        if expects.deck_if_match:
            return precondition_failed(f"The deck of session {session_id}", expects.deck_version, deck_version)
        return Moved(session_id, current)
    if (
        (expects.turn_holder is not None and current.get("active_run") != expects.turn_holder)
        or (expects.turn_held_at is not None and (current.get("active_run_until") or 0) < expects.turn_held_at)
        or (expects.waiting_runs is not None and int(current.get("waiting_runs", 0)) != expects.waiting_runs)
        or (expects.checks_newest and current.get("last_message_id") != expects.newest_message)
        or (expects.message_count is not None and int(current.get("message_count", 0)) != expects.message_count)
        or refused.overtaken  # the newer message the append yielded its preview to was deleted meanwhile
    ):
        return Moved(session_id, current)
    return errors.Conflict(f"Session {session_id} changed while it was being written; retry")
