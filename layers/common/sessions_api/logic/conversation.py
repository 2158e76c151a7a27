"""Message use cases: append (one or a batch), list, get one, delete one.

Every append is one transaction: the message items, the session's counters, preview, activity time,
listing order and version, and a history event. DynamoDB applies the counter ADDs atomically, so the
counters are exact however many writers append at once, and an append costs one request whatever the
session's length (contents over 64 KB first go to S3, which needs the owner's prefix: one read more).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sessions_api import errors, ids, timeutil
from sessions_api.cursor import CursorCodec
from sessions_api.dal import keys, payloads
from sessions_api.dal.expressions import Expr
from sessions_api.dal.messages_repo import MessagesRepo
from sessions_api.dal.sessions_repo import SessionsRepo, visible
from sessions_api.identity import Caller
from sessions_api.logic import access, activity, guard, history, messages, paging
from sessions_api.models.entities import WRITABLE_STATUSES, Status
from sessions_api.models.messages import MessageIn
from sessions_api.settings import Settings

DELETE_ATTEMPTS = 3


class Moved(errors.Conflict):
    """The session changed between the read a write was planned on and the write: plan again."""


Check = Callable[[dict[str, Any]], errors.ApiError | None]


def closed(session_id: str, current: dict[str, Any]) -> errors.ApiError | None:
    """Why the session takes no messages (409), or None when it does."""
    status = current["status"]
    if status == Status.EXPIRED:
        return errors.SessionExpired(f"Session {session_id} has expired and accepts no more messages")
    if status not in WRITABLE_STATUSES:
        return errors.Conflict(f"Session {session_id} is {status}; only active or running sessions accept messages")
    return None


def open_for_messages(session_id: str, also: Check | None = None) -> guard.Refusal:
    """Why a write of messages was refused: a closed session is told apart from a lost race."""
    default = guard.default_refusal(session_id)

    def refusal(current: dict[str, Any] | None) -> errors.ApiError:
        if current is None:
            return errors.SessionNotFound(session_id)
        return closed(session_id, current) or (also and also(current)) or default(current)

    return refusal


@dataclass
class Conversation:
    settings: Settings
    repo: SessionsRepo = field(default_factory=SessionsRepo)
    messages_repo: MessagesRepo = field(default_factory=MessagesRepo)

    @property
    def cursors(self) -> CursorCodec:
        return paging.codec(self.settings)

    # -- append ---------------------------------------------------------------------------------
    def append(self, caller: Caller, session_id: str, incoming: list[MessageIn]) -> list[dict[str, Any]]:
        if not ids.is_session_id(session_id):
            raise errors.SessionNotFound(session_id)
        moment = timeutil.now()
        at = timeutil.iso(moment)
        full = [
            messages.message_item(
                session_id,
                role=message.role,
                content=message.content,
                at=at,
                model_id=message.model_id,
                agent_name=message.agent_name,
                token_count=message.token_count,
                response_time_ms=message.response_time_ms,
                is_error=message.is_error,
            )
            for message in incoming
        ]
        owner = None
        if any(payloads.needs_s3(item["content"]) for item in full):
            # The object goes under the owner's prefix: learn the owner (and refuse strangers and closed
            # sessions) before writing it.
            session = guard.load_session(caller, session_id, access.Action.WRITE, self.repo).session
            problem = closed(session_id, session)
            if problem is not None:
                raise problem
            owner = session["created_by"]
        self.write_messages(caller, session_id, full, moment, owner=owner)
        return [messages.message_out(item) for item in full]

    def write_messages(
        self,
        caller: Caller,
        session_id: str,
        full: list[dict[str, Any]],
        moment: datetime,
        *,
        owner: str | None,
        build_more: Callable[[Expr], Expr] | None = None,
        refusal: guard.Refusal | None = None,
        require_open: bool = True,
    ) -> None:
        """Store `full` (items with their whole content) and count them on the session, in one transaction.

        `build_more` adds the caller's own changes (a chat's lock, its usage) to the same session update.
        """
        stored = [messages.stored(item, owner) for item in full]
        event = history.event_item(
            session_id,
            "messages_added",
            caller.user_id,
            timeutil.iso(moment),
            count=len(full),
            message_ids=[item["message_id"] for item in full],
        )

        def build(expr: Expr) -> Expr:
            if require_open:
                activity.require_writable(expr)
            messages.count_appended(expr, full)
            if build_more is not None:
                build_more(expr)
            return activity.touch(expr, session_id, moment)

        guard.write_session(
            caller,
            session_id,
            access.Action.WRITE,
            build,
            extra_items=[*stored, event],
            refusal=refusal or open_for_messages(session_id),
            repo=self.repo,
        )

    # -- read -----------------------------------------------------------------------------------
    def list(self, caller: Caller, session_id: str, *, limit: int, cursor: str | None, order: str) -> dict[str, Any]:
        """Two requests: the access check (session + the caller's shares) and one Query of the page.

        One request is not possible with these keys: between `#SESSION` and `MSG#…` sort the comments,
        deck, events and exports, and a sharee's access lives in `SHARE#…` items past the messages.
        """
        scope = f"messages:{session_id}:{order}"
        start_key = paging.partition_start(
            self.cursors, cursor, user=caller.user_id, scope=scope, session_id=session_id, prefix=keys.MESSAGE_PREFIX
        )
        guard.load_session(caller, session_id, access.Action.READ, self.repo)
        page = self.messages_repo.page(session_id, limit=limit, ascending=order == "asc", start_key=start_key)
        return {
            "messages": [messages.message_out(item) for item in page.items],
            "next_cursor": (
                self.cursors.encode(page.next_key, user=caller.user_id, scope=scope) if page.next_key else None
            ),
            "has_more": page.next_key is not None,
        }

    def _load(
        self, caller: Caller, session_id: str, message_id: str, action: access.Action
    ) -> tuple[access.Access, dict[str, Any]]:
        """The caller's access and the message, in one request (404 for the session before the message)."""
        if not ids.is_session_id(session_id):
            raise errors.SessionNotFound(session_id)
        session, shares, message = self.messages_repo.get_with_access(session_id, message_id, caller)
        session = visible(session, timeutil.now().timestamp())
        granted = access.resolve(session_id, session, shares, caller, action, timeutil.now_iso())
        if message is None:
            raise errors.MessageNotFound(message_id)
        return granted, message

    def get(self, caller: Caller, session_id: str, message_id: str) -> dict[str, Any]:
        _, message = self._load(caller, session_id, message_id, access.Action.READ)
        return messages.message_out(payloads.resolve([message])[0])

    # -- delete ---------------------------------------------------------------------------------
    def delete(self, caller: Caller, session_id: str, message_id: str) -> None:
        """Remove one message; the counters follow it in the same transaction.

        message_count, the role's count, turn_count (a user message), error_count and the message's
        token_count go down; `cost_usd` does not (it is money spent). When the newest message goes, the
        preview becomes the next newest's (one Query more), guarded by `last_message_id` so an append
        racing the delete is never overwritten: the delete is planned again instead. A large content's
        S3 object stays until the session is purged. Allowed in any status but `expired`.
        """
        for _ in range(DELETE_ATTEMPTS):
            moment = timeutil.now()
            granted, message = self._load(caller, session_id, message_id, access.Action.WRITE)
            last_id = granted.session.get("last_message_id")
            was_newest = last_id is None or last_id == message_id
            successor = None
            if was_newest:
                newest = self.messages_repo.newest(session_id, limit=2)
                successor = next((item for item in newest if item["message_id"] != message_id), None)

            event = history.event_item(
                session_id, "message_deleted", caller.user_id, timeutil.iso(moment), message_id=message_id
            )
            try:
                guard.write_session(
                    caller,
                    session_id,
                    access.Action.WRITE,
                    self._removal(session_id, message, moment, last_id, was_newest, successor),
                    extra_items=[event],
                    extra_operations=[self.messages_repo.delete_operation(session_id, message_id)],
                    refusal=self._delete_refusal(session_id, message_id, last_id, was_newest),
                    repo=self.repo,
                )
                return
            except Moved:
                continue
        raise errors.Conflict(f"Session {session_id} keeps changing; retry the delete")

    @staticmethod
    def _removal(
        session_id: str,
        message: dict[str, Any],
        moment: datetime,
        last_id: str | None,
        was_newest: bool,
        successor: dict[str, Any] | None,
    ) -> Callable[[Expr], Expr]:
        """The session update of a delete: counters down and, for the newest message, the next preview."""

        def build(expr: Expr) -> Expr:
            messages.count_removed(expr, message)
            if was_newest:
                last = expr.name("last_message_id")
                if last_id is None:
                    expr.when(f"attribute_not_exists({last})")
                else:
                    expr.when(f"{last} = {expr.value(last_id)}")
                if successor is None:
                    expr.remove("last_message_id", "last_message_preview")
                else:
                    text = successor.get("content", successor.get("content_preview", ""))
                    expr.set("last_message_id", successor["message_id"])
                    expr.set("last_message_preview", messages.preview(text))
            return activity.touch(expr, session_id, moment)

        return build

    def _delete_refusal(self, session_id: str, message_id: str, last_id: str | None, was_newest: bool) -> guard.Refusal:
        default = guard.default_refusal(session_id)

        def refusal(current: dict[str, Any] | None) -> errors.ApiError:
            if current is None:  # the session is gone, or only the message is (someone deleted it first)
                if self.messages_repo.exists(session_id, message_id):
                    return errors.SessionNotFound(session_id)
                return errors.MessageNotFound(message_id)
            if current["status"] != Status.EXPIRED and was_newest and current.get("last_message_id") != last_id:
                return Moved()
            return default(current)

        return refusal
