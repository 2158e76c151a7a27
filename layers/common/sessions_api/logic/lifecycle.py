"""Session statuses and the one table of transitions between them.

Every status change — the owner's cancel/pause/resume/end, a worker completing through PUT results,
the scheduled expiry — is a row of `TRANSITIONS`, and is written as one transaction: the session
conditioned on `status = :from` (so of two racing changes exactly one wins), the owner's counters, the
session's index keys (GSI2 `ACTIVE#` only while active, GSI3 due key only while it can expire) and a
history event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sessions_api import errors, ids, timeutil
from sessions_api.dal import keys
from sessions_api.dal.expressions import Expr
from sessions_api.dal.sessions_repo import (
    SessionsRepo,
    WriteRefused,
    counters_update,
    owner_condition,
    status_deltas,
    visible,
)
from sessions_api.identity import Caller
from sessions_api.logic import access, activity, guard, history
from sessions_api.models.entities import OPEN_STATUSES, Status, session_out
from sessions_api.settings import Settings


class Action(StrEnum):
    CANCEL = "cancel"
    PAUSE = "pause"
    RESUME = "resume"
    END = "end"
    COMPLETE = "complete"  # a worker, through PUT /results with `complete: true`
    EXPIRE = "expire"  # the scheduled function, never a client


@dataclass(frozen=True)
class Transition:
    action: Action
    source: Status
    target: Status


S = Status
# The whole state machine. For each action the first row is the status a request assumes the session
# is in (its common case), so a transition is one request; a refusal tells the real status.
# RESUME goes back to the status the session was paused from (kept as `paused_from`).
TRANSITIONS: tuple[Transition, ...] = (
    *(
        Transition(Action.CANCEL, source, S.CANCELLED)
        for source in (S.ACTIVE, S.RUNNING, S.PAUSED, S.QUEUED, S.INITIALIZING)
    ),
    Transition(Action.PAUSE, S.ACTIVE, S.PAUSED),
    Transition(Action.PAUSE, S.RUNNING, S.PAUSED),
    Transition(Action.RESUME, S.PAUSED, S.ACTIVE),
    Transition(Action.RESUME, S.PAUSED, S.RUNNING),
    Transition(Action.END, S.ACTIVE, S.COMPLETED),
    Transition(Action.END, S.RUNNING, S.COMPLETED),
    Transition(Action.END, S.PAUSED, S.COMPLETED),
    Transition(Action.COMPLETE, S.ACTIVE, S.COMPLETED),
    Transition(Action.COMPLETE, S.RUNNING, S.COMPLETED),
    *(Transition(Action.EXPIRE, source, S.EXPIRED) for source in sorted(OPEN_STATUSES)),
)
CLIENT_ACTIONS = (Action.CANCEL, Action.PAUSE, Action.RESUME, Action.END, Action.COMPLETE)


def rows(action: Action) -> list[Transition]:
    return [row for row in TRANSITIONS if row.action is action]


def find(action: Action, current: dict[str, Any]) -> Transition | None:
    """The row that applies to the session as it is, if any."""
    status = Status(current["status"])
    candidates = [row for row in rows(action) if row.source is status]
    if action is Action.RESUME:
        paused_from = current.get("paused_from", Status.ACTIVE)
        candidates = [row for row in candidates if row.target == paused_from]
    return candidates[0] if candidates else None


def allowed_actions(status: Status | str) -> list[str]:
    """What a client can do from `status` (the problem's `allowed_actions`)."""
    return [str(action) for action in CLIENT_ACTIONS if any(row.source == status for row in rows(action))]


def invalid_transition(session_id: str, action: Action, status: str) -> errors.InvalidStateTransition:
    return errors.InvalidStateTransition(
        f"Session {session_id} is {status}; it cannot {action.value}",
        extra={"current_status": status, "allowed_actions": allowed_actions(status)},
    )


def apply(expr: Expr, row: Transition, session_id: str, owner: str, moment: datetime, due_pk: str) -> Expr:
    """The session's side of a client's transition: condition, status, index keys, activity."""
    at = timeutil.iso(moment)
    status = expr.name("status")
    expr.when(f"{status} = {expr.value(str(row.source))}")
    if row.action is Action.RESUME:
        paused_from = expr.name("paused_from")
        if row.target is Status.ACTIVE:  # sessions paused before `paused_from` existed resume as active
            expr.when(f"attribute_not_exists({paused_from}) OR {paused_from} = {expr.value(str(row.target))}")
        else:
            expr.when(f"{paused_from} = {expr.value(str(row.target))}")
        expr.remove("paused_from")
    if row.action is Action.PAUSE:
        expr.set("paused_from", str(row.source))
    expr.set("status", str(row.target)).set("status_changed_at", at)
    listed_active, due = row.target is Status.ACTIVE, row.target in OPEN_STATUSES
    if listed_active:
        expr.set("GSI2PK", keys.active_gsi2pk(owner))
    else:
        expr.remove("GSI2PK", "GSI2SK")
    if due:
        expr.set("GSI3PK", due_pk)
    else:
        expr.remove("GSI3PK", "GSI3SK")
        expr.set("ended_at", at)
    return activity.touch(expr, session_id, moment, active_listing=listed_active, due=due)


def apply_expiry(expr: Expr, row: Transition, moment: datetime, *, purge_epoch: int, ttl: int) -> Expr:
    """The session's side of expiry, only if it is still idle: a write since has moved its due time
    (GSI3SK) past now, and then this condition fails and the session stays open."""
    at = timeutil.iso(moment)
    expr.when(f"attribute_exists(PK) AND attribute_not_exists({expr.name('deleted_at')})")
    expr.when(f"{expr.name('status')} = {expr.value(str(row.source))}")
    expr.when(f"{expr.name('GSI3SK')} <= {expr.value(timeutil.epoch_seconds(moment))}")
    expr.set("status", str(row.target)).set("status_changed_at", at).set("ended_at", at).set("updated_at", at)
    expr.set("GSI3SK", purge_epoch).set("ttl", ttl)  # still due: for the purge, after the retention
    expr.remove("GSI2PK", "GSI2SK", "paused_from")
    return expr.add("version", 1)


@dataclass
class Lifecycle:
    settings: Settings
    repo: SessionsRepo = field(default_factory=SessionsRepo)

    def due_pk(self, session_id: str) -> str:
        return keys.due_gsi3pk(keys.due_shard(session_id, self.settings.due_shards))

    def transition(
        self, caller: Caller, session_id: str, action: Action, *, reason: str | None = None, if_match: int | None = None
    ) -> dict[str, Any]:
        """Move the session by `action` (owner only) and return it as it is now.

        One transaction in the common case (the status assumed by the table's first row); when the
        refusal shows another status the table allows, one more. TransactWriteItems returns no item,
        so the session is read back for the response.
        """
        self.write(caller, session_id, action, reason=reason, if_match=if_match)
        return session_out(guard.load_session(caller, session_id, access.Action.READ, self.repo).session).model_dump(
            mode="json"
        )

    def write(
        self,
        caller: Caller,
        session_id: str,
        action: Action,
        *,
        reason: str | None = None,
        if_match: int | None = None,
        extra_items: Callable[[str], list[dict[str, Any]]] = lambda _: [],
    ) -> Transition:
        """The transition's transaction, with `extra_items(at)` (e.g. the results) in it; returns the row applied."""
        if not ids.is_session_id(session_id):
            raise errors.SessionNotFound(session_id)
        row = rows(action)[0]
        for _ in range(3):
            moment = timeutil.now()
            at = timeutil.iso(moment)
            expr = apply(
                self._owned(caller, if_match), row, session_id, caller.user_id, moment, self.due_pk(session_id)
            )
            if reason is None:
                expr.remove("status_reason")
            else:
                expr.set("status_reason", reason)
            details: dict[str, Any] = {"action": str(action), "from": str(row.source), "to": str(row.target)}
            event = history.event_item(
                session_id, "status_changed", caller.user_id, at, **details, **({"reason": reason} if reason else {})
            )
            counters = counters_update(caller.user_id, status_deltas(row.source, row.target))
            try:
                self.repo.update(session_id, expr, extra_items=[event, *extra_items(at)], extra_operations=[counters])
                return row
            except WriteRefused as refused:
                current = self._owned_current(caller, session_id, refused)
                if if_match is not None and int(current["version"]) != if_match:
                    version = int(current["version"])
                    raise errors.PreconditionFailed(
                        f"Session {session_id} is at version {version}, not {if_match}",
                        headers={"ETag": f'"{version}"'},
                    ) from refused
                found = find(action, current)
                if found is None:
                    raise invalid_transition(session_id, action, current["status"]) from refused
                row = found
        raise errors.Conflict(f"Session {session_id} keeps changing; retry")

    @staticmethod
    def _owned(caller: Caller, if_match: int | None) -> Expr:
        expr = owner_condition(Expr(), caller.user_id)
        activity.require_version(expr, if_match)
        return expr

    def _owned_current(self, caller: Caller, session_id: str, refused: WriteRefused) -> dict[str, Any]:
        """The session a refused write met, if the caller owns it; else 404 or 403 as the policy says."""
        current = visible(refused.current, timeutil.now().timestamp())
        if current is None or current["created_by"] != caller.user_id:
            guard.load_session(caller, session_id, access.Action.MANAGE, self.repo)
            raise errors.SessionNotFound(session_id) from refused
        return current
