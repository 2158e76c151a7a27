"""Session statuses and the one table of transitions between them.

Every status change — the owner's cancel/pause/resume/end, a worker completing through PUT results,
the scheduled expiry — is a row of `TRANSITIONS`, and is written as one transaction: the session
conditioned on `status = :from` (so of two racing changes exactly one wins), the owner's counters, the
session's index keys (GSI2 `ACTIVE#` only while active, GSI3 due key only while it can expire) and a
history event.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sessions_api import errors, timeutil
from sessions_api.dal import items, keys, session_writes
from sessions_api.identity import Caller
from sessions_api.logic import authorized, policy
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


@dataclass
class Lifecycle:
    settings: Settings

    def transition(
        self, caller: Caller, session_id: str, action: Action, *, reason: str | None = None, if_match: int | None = None
    ) -> dict[str, Any]:
        """Move the session by `action` (owner only) and return it as it is now.

        One transaction in the common case (the status assumed by the table's first row); when the
        refusal shows another status the table allows, one more. TransactWriteItems returns no item,
        so the session is read back for the response.
        """
        self.write(caller, session_id, action, reason=reason, if_match=if_match)
        return session_out(authorized.read(caller, session_id, policy.Action.READ).session).model_dump(mode="json")

    def write(
        self,
        caller: Caller,
        session_id: str,
        action: Action,
        *,
        reason: str | None = None,
        if_match: int | None = None,
        with_items: list[dict[str, Any]] = (),  # type: ignore[assignment]
    ) -> Transition:
        """The transition's transaction, with `with_items` (e.g. the results) in it; returns the row applied."""
        row = rows(action)[0]
        for _ in range(3):
            moment = timeutil.now()
            details: dict[str, Any] = {"action": str(action), "from": str(row.source), "to": str(row.target)}
            event = items.event(
                session_id,
                "status_changed",
                caller.user_id,
                timeutil.iso(moment),
                **details,
                **({"reason": reason} if reason else {}),
            )
            change = session_writes.change_status(
                session_id,
                source=row.source,
                target=row.target,
                owner=caller.user_id,
                moment=moment,
                due_pk=keys.due_pk(session_id, self.settings.due_shards),
                reason=reason,
                paused_from=str(row.target) if row.action is Action.RESUME else None,
                version=if_match,
                puts=[event, *with_items],
            )
            try:
                authorized.write(caller, policy.Action.MANAGE, change)
                return row
            except policy.Moved as moved:
                found = find(action, moved.current)
                if found is None:
                    raise invalid_transition(session_id, action, moved.current["status"]) from moved
                row = found
        raise errors.Conflict(f"Session {session_id} keeps changing; retry")
