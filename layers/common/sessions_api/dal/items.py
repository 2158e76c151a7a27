"""The items of a session's partition as they are stored: every builder that knows a storage key is here."""

from __future__ import annotations

from typing import Any

from sessions_api import ids, timeutil
from sessions_api.dal import keys
from sessions_api.models.entities import PREVIEW_CHARS

# An expired share stays in the owner's list (marked expired) this long before DynamoDB's TTL removes it.
EXPIRED_SHARE_KEPT_DAYS = 7


def preview(content: str) -> str:
    return content if len(content) <= PREVIEW_CHARS else content[: PREVIEW_CHARS - 1] + "…"


def new_message(
    session_id: str, *, role: str, content: str, at: str, message_id: str | None = None, **fields: Any
) -> dict[str, Any]:
    """A message with its whole content (`MessagesRepo.offload` moves a large one to S3 before it is stored);
    `message_id` when it was named before it existed (a streamed reply's events carry it)."""
    message_id = message_id or ids.new_id("msg")
    return {
        **keys.message_key(session_id, message_id),
        "type": "message",
        "message_id": message_id,
        "session_id": session_id,
        "role": role,
        "content": content,
        "created_at": at,
        "is_error": False,
        **{name: value for name, value in fields.items() if value is not None},
    }


def event(session_id: str, event_type: str, actor: str, at: str, **data: Any) -> dict[str, Any]:
    """A history event, written in the same transaction as the change it records."""
    event_id = ids.new_id("evt")
    return {
        **keys.event_key(session_id, event_id),
        "type": "event",
        "event_id": event_id,
        "session_id": session_id,
        "event_type": event_type,
        "actor": actor,
        "at": at,
        **({"data": data} if data else {}),
    }


def messages_added(session_id: str, actor: str, at: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The history event of an append (or of a chat's message or reply)."""
    message_ids = [item["message_id"] for item in messages]
    return event(session_id, "messages_added", actor, at, count=len(messages), message_ids=message_ids)


def initial_counters(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The session attributes for a session created with these messages already in it."""
    counters: dict[str, Any] = {"message_count": len(messages), "turn_count": 0, "error_count": 0}
    for role in ("user", "assistant", "system"):
        counters[f"{role}_messages"] = sum(1 for message in messages if message["role"] == role)
    counters["turn_count"] = counters["user_messages"]
    if messages:
        counters["last_message_preview"] = preview(messages[-1]["content"])
        counters["last_message_id"] = messages[-1]["message_id"]
    return counters


def new_session(
    session_id: str, fields: dict[str, Any], *, owner: str, at: str, due_pk: str, due_epoch: int, idle_seconds: int
) -> dict[str, Any]:
    """A new session with its listing, active and due index keys (`fields`: what the client chose)."""
    session: dict[str, Any] = {
        **keys.session_key(session_id),
        "type": "session",
        "session_id": session_id,
        **fields,
        "created_by": owner,
        "created_at": at,
        "updated_at": at,
        "last_activity_at": at,
        "idle_seconds": idle_seconds,
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_usd": 0,
        "version": 1,
        "GSI1PK": keys.owner_gsi1pk(owner),
        "GSI1SK": keys.activity_sk(at, session_id),
        "GSI2PK": keys.active_gsi2pk(owner),
        "GSI2SK": keys.activity_sk(at, session_id),
        "GSI3PK": due_pk,
        "GSI3SK": due_epoch,
        "active_until": due_epoch,
    }
    return {name: value for name, value in session.items() if value is not None}


def share(
    session_id: str,
    *,
    share_id: str,
    recipient: str,
    kind: str,
    permission: str,
    owner: str,
    at: str,
    message: str | None,
    expires_at: str | None,
) -> dict[str, Any]:
    """One recipient's grant, indexed under the recipient for "shared with me"."""
    item: dict[str, Any] = {
        **keys.share_key(session_id, kind, recipient),
        "type": "share",
        "share_id": share_id,
        "session_id": session_id,
        "permission": permission,
        "recipient": recipient,
        "recipient_kind": kind,
        "created_at": at,
        "created_by": owner,
        "GSI2PK": keys.shared_gsi2pk(recipient),
        "GSI2SK": keys.activity_sk(at, session_id),
    }
    if message is not None:
        item["message"] = message
    if expires_at is not None:
        item["expires_at"] = expires_at
        expiry = timeutil.parse(expires_at)
        item["ttl"] = timeutil.epoch_seconds(timeutil.plus(expiry, days=EXPIRED_SHARE_KEPT_DAYS))
    return item


def comment(session_id: str, comment_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {**keys.comment_key(session_id, comment_id), "type": "comment", "comment_id": comment_id, **fields}


# The fields by which a stored item names the user who wrote it.
AUTHOR_FIELDS = ("author", "actor", "created_by")


def authored(author: str, session_id: str, written: list[dict[str, Any]]) -> dict[str, Any] | None:
    """In the author's partition, written with them: which of `written` name `author` (and by which field),
    so an erasure of theirs can anonymise them in a session that is not theirs. None: none does."""
    named = [
        {"key": {"PK": item["PK"], "SK": item["SK"]}, "field": name}
        for item in written
        for name in AUTHOR_FIELDS
        if item.get(name) == author
    ]
    if not named:
        return None
    return {**keys.authored_key(author, session_id, ids.new_id("auth")), "type": "authored", "named": named}


def export_record(session_id: str, summary: dict[str, Any], *, ttl: int) -> dict[str, Any]:
    """The record of an export whose file is already in S3; it goes when the file may, never later."""
    return {**keys.export_key(session_id, summary["export_id"]), "type": "export", **summary, "ttl": ttl}


def deck(session_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {**keys.deck_key(session_id), "type": "deck", "session_id": session_id, **fields}


def results(session_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {**keys.results_key(session_id), "type": "results", "session_id": session_id, **fields}


def run(session_id: str, request_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """A chat run: `phase` says where it is (waiting for the turn, ready for a worker, running, done)."""
    return {**keys.run_key(session_id, request_id), "type": "run", "request_id": request_id, **fields}


def run_event(session_id: str, request_id: str, number: int, event: dict[str, Any], *, ttl: int) -> dict[str, Any]:
    """Event `number` of a run, kept `ttl` (the events of a finished run expire; its messages stay)."""
    return {
        **keys.run_event_key(session_id, request_id, number),
        "type": "run_event",
        "request_id": request_id,
        "event": {**event, "id": number},
        "ttl": ttl,
    }


def run_queue_entry(session_id: str, request_id: str, *, first: bool = False) -> dict[str, Any]:
    """A waiting run's place in its session's queue."""
    return {**keys.run_queue_key(session_id, request_id, first=first), "type": "run_queue", "request_id": request_id}


# -- forks ----------------------------------------------------------------------------------------------
# What a copied message leaves behind: its old place, and the run that wrote it (runs stay with their session).
_NOT_FORKED = frozenset({"PK", "SK", "session_id", "request_id", "payload_key"})


def message_counters(messages: list[dict[str, Any]]) -> dict[str, int]:
    """What stored `messages` add to their session's counters, as an append adds them (no model call billed)."""
    counters = {"message_count": len(messages)}
    for role in ("user", "assistant", "system"):
        counters[f"{role}_messages"] = sum(1 for message in messages if message["role"] == role)
    counters["turn_count"] = counters["user_messages"]
    counters["error_count"] = sum(1 for message in messages if message.get("is_error"))
    tokens = [(message["role"], int(message.get("token_count", 0))) for message in messages]
    counters["input_tokens"] = sum(count for role, count in tokens if role != "assistant")
    counters["output_tokens"] = sum(count for role, count in tokens if role == "assistant")
    return counters


def forked_message(session_id: str, message: dict[str, Any], *, payload_key: str | None) -> dict[str, Any]:
    """`message` as the fork `session_id` stores it: the same id, role, content, metadata and times; a large
    content at `payload_key`, the fork's own copy of the object."""
    copied = {name: value for name, value in message.items() if name not in _NOT_FORKED}
    return {
        **keys.message_key(session_id, message["message_id"]),
        **copied,
        "session_id": session_id,
        **({"payload_key": payload_key} if payload_key else {}),
    }


def forked_deck(session_id: str, stored: dict[str, Any], *, payload_key: str | None, by: str) -> dict[str, Any]:
    """The source's deck item as the fork stores it, at the same version (a large deck at `payload_key`),
    written `by` the forker: the fork names no one else."""
    fields = {name: value for name, value in stored.items() if name not in {"type", "updated_by", *_NOT_FORKED}}
    return deck(session_id, {**fields, "updated_by": by, **({"payload_key": payload_key} if payload_key else {})})


def unpublished_fork(session_id: str, owner: str, *, at: str, due_pk: str, due_epoch: int) -> dict[str, Any]:
    """A fork while it is being copied: a tombstone from its first write (every read treats it as missing), due
    on GSI3 at `due_epoch`, so should the copy never finish the schedule purges what it left like a deleted
    session's. No `ttl`: DynamoDB removing it before the purge would orphan its copies."""
    return {
        **keys.session_key(session_id),
        "type": "session",
        "session_id": session_id,
        "created_by": owner,
        "created_at": at,
        "updated_at": at,
        "deleted_at": at,
        "forking": True,
        "GSI3PK": due_pk,
        "GSI3SK": due_epoch,
    }
