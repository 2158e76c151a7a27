"""Message use cases: append (one or a batch), list, get one, delete one.

Every append is one transaction: the message items, the session's counters, preview, activity time,
listing order and version, and a history event. DynamoDB applies the counter ADDs atomically, so the
counters are exact however many writers append at once, and an append costs one request whatever the
session's length (contents over 64 KB first go to S3, which needs the owner's prefix: one read more).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sessions_api import errors, timeutil
from sessions_api.cursor import CursorCodec
from sessions_api.dal import items, keys, partition, payloads, session_writes
from sessions_api.dal.messages_repo import MessagesRepo
from sessions_api.identity import Caller
from sessions_api.logic import authorized, policy
from sessions_api.logic.policy import Action, Moved
from sessions_api.models.entities import plain
from sessions_api.models.messages import MessageIn
from sessions_api.settings import Settings

DELETE_ATTEMPTS = 3


def message_out(item: dict[str, Any]) -> dict[str, Any]:
    data = plain(item)
    return {
        "message_id": data["message_id"],
        "session_id": data["session_id"],
        "role": data["role"],
        "content": data["content"],
        "created_at": data["created_at"],
        "token_count": data.get("token_count"),
        "model_id": data.get("model_id"),
        "agent_name": data.get("agent_name"),
        "response_time_ms": data.get("response_time_ms"),
        "is_error": bool(data.get("is_error", False)),
        **({"metadata": data["metadata"]} if data.get("metadata") else {}),
        "request_id": data.get("request_id"),
        "stopped": bool(data.get("stopped", False)),
    }


@dataclass
class Messages:
    settings: Settings

    def append(self, caller: Caller, session_id: str, incoming: list[MessageIn]) -> list[dict[str, Any]]:
        moment = timeutil.now()
        at = timeutil.iso(moment)
        full = [
            items.new_message(
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
        access = None
        if any(payloads.needs_s3(item["content"]) for item in full):
            # The object goes under the owner's prefix: learn the owner (and refuse strangers) before writing it.
            access = authorized.read(caller, session_id, Action.WRITE)
            problem = policy.closed(session_id, access.session, session_writes.OPEN_FOR_MESSAGES)
            if problem is not None:
                raise problem
        owner = access.session["created_by"] if access else None
        event = items.messages_added(session_id, caller.user_id, at, full)
        change = session_writes.append_messages(session_id, MessagesRepo.offload(full, owner), event, moment=moment)
        authorized.write(caller, Action.WRITE, change, access=access)
        return [message_out(item) for item in full]

    # -- read -----------------------------------------------------------------------------------
    def list(self, caller: Caller, session_id: str, *, limit: int, cursor: str | None, order: str) -> dict[str, Any]:
        """Two requests: the access check (session + the caller's shares) and one Query of the page.

        One request is not possible with these keys: between `#SESSION` and `MSG#…` sort the comments,
        deck, events and exports, and a sharee's access lives in `SHARE#…` items past the messages.
        """
        cursors = CursorCodec.from_settings(self.settings)
        scope = f"messages:{session_id}:{order}"
        start_key = partition.resume_key(
            cursors, cursor, user=caller.user_id, scope=scope, session_id=session_id, prefix=keys.MESSAGE_PREFIX
        )
        authorized.read(caller, session_id, Action.READ)
        page = MessagesRepo().page(session_id, limit=limit, ascending=order == "asc", start_key=start_key)
        return {
            "messages": [message_out(item) for item in page.items],
            "next_cursor": cursors.encode(page.next_key, user=caller.user_id, scope=scope) if page.next_key else None,
            "has_more": page.next_key is not None,
        }

    def get(self, caller: Caller, session_id: str, message_id: str) -> dict[str, Any]:
        _, message = authorized.read_message(caller, session_id, message_id, Action.READ)
        return message_out(payloads.resolve([message])[0])

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
            access, message = authorized.read_message(caller, session_id, message_id, Action.WRITE)
            last_id = access.session.get("last_message_id")
            was_newest = last_id is None or last_id == message_id
            successor = None
            if was_newest:
                newest = MessagesRepo().newest(session_id, limit=2)
                successor = next((item for item in newest if item["message_id"] != message_id), None)
            moment = timeutil.now()
            event = items.event(
                session_id, "message_deleted", caller.user_id, timeutil.iso(moment), message_id=message_id
            )
            change = session_writes.remove_message(
                session_id,
                message,
                event,
                moment=moment,
                newest_seen=last_id,
                counted=int(access.session.get("message_count", 0)),
                successor=successor,
                was_newest=was_newest,
            )
            try:
                authorized.write(caller, Action.WRITE, change, access=access)
                return
            except Moved:
                continue
        raise errors.Conflict(f"Session {session_id} keeps changing; retry the delete")
