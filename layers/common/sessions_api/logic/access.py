"""Who may do what on a session: the one policy every endpoint group calls.

No access at all answers exactly like a missing session (404); access that is too weak for the
action is 403 `session_not_accessible`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

from sessions_api import errors
from sessions_api.identity import Caller


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
