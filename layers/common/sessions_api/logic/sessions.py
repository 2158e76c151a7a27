"""Session use cases: create, list, continue, get, update, delete, cleanup, and the metrics and history views."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sessions_api import errors, ids, timeutil
from sessions_api.cursor import CursorCodec
from sessions_api.dal import items, keys, partition, payloads, session_writes
from sessions_api.dal.messages_repo import MessagesRepo
from sessions_api.dal.sessions_repo import (
    QuotaExceeded,
    SessionFilters,
    SessionsRepo,
    WriteRefused,
    erased,
    status_deltas,
    totals,
    visible,
)
from sessions_api.identity import Caller
from sessions_api.logic import authorized
from sessions_api.logic.messages import message_out
from sessions_api.logic.policy import Action
from sessions_api.models.api import CreateSessionIn, UpdateSessionIn
from sessions_api.models.entities import SessionType, Status, plain, session_out
from sessions_api.models.lifecycle import HistoryOut, MetricsOut, TimelineEvent
from sessions_api.settings import Settings

MESSAGES_EMBED_LIMIT = 100
MAX_OFFSET = 1000


@dataclass(frozen=True)
class ListQuery:
    limit: int = 50
    cursor: str | None = None
    search: str | None = None
    status: Status | None = None
    session_type: SessionType | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    offset: int | None = None
    page: int | None = None

    def scope(self) -> str:
        """What a cursor is bound to: the listing with these filters (the page size may change)."""
        filters = [self.search, self.status, self.session_type, self.date_from, self.date_to]
        digest = hashlib.sha256(json.dumps([str(value) for value in filters]).encode()).hexdigest()[:16]
        return f"sessions:{digest}"

    def filters(self) -> SessionFilters:
        return SessionFilters(
            search=self.search,
            status=str(self.status) if self.status else None,
            session_type=str(self.session_type) if self.session_type else None,
            created_from=timeutil.iso(self.date_from) if self.date_from else None,
            created_to=timeutil.iso(self.date_to) if self.date_to else None,
        )


@dataclass
class Sessions:
    settings: Settings
    repo: SessionsRepo = field(default_factory=SessionsRepo)

    @property
    def cursors(self) -> CursorCodec:
        return CursorCodec.from_settings(self.settings)

    def _due_pk(self, session_id: str) -> str:
        return keys.due_pk(session_id, self.settings.due_shards)

    # -- create ---------------------------------------------------------------------------------
    def create(self, caller: Caller, body: CreateSessionIn, *, temporary: bool = False) -> dict[str, Any]:
        """The session `create_or_get` made or found."""
        session: dict[str, Any] = self.create_or_get(caller, body, temporary=temporary)["session"]
        return session

    def create_or_get(self, caller: Caller, body: CreateSessionIn, *, temporary: bool = False) -> dict[str, Any]:
        """`{session_id, created, session}` (what an `Idempotency-Key` stores and a replay checks): a new session,
        or (`created` false) the one `body.session_id` names when the caller owns it already, as it is. The id is
        unique by the create's own condition, so racing creates of one id make one session. `temporary`: opened
        by `POST /chat` without a session (marked, and given a short idle timeout)."""
        moment = timeutil.now()
        at = timeutil.iso(moment)
        session_id = body.session_id or ids.new_session_id()
        if body.session_id and self.repo.holds_leftovers(session_id):
            # A new session there would show the old one's items until the purge took them, its own with them.
            raise errors.Conflict(f"Session id {session_id} belonged to a deleted session; choose another id")
        idle_minutes = body.idle_timeout_minutes or self.settings.idle_timeout_minutes
        first_messages = []
        if body.prompt is not None:
            first_messages.append(
                items.new_message(session_id, role="user", content=body.prompt, at=at, agent_name=body.agent_name)
            )
        chosen = {
            "title": body.title,
            "title_lower": body.title.lower(),
            "session_type": str(body.session_type),
            "status": str(Status.ACTIVE),
            "agent_name": body.agent_name,
            "model_id": body.model_id,
            "metadata": body.metadata,
            "preferences": body.preferences,
            "budget": body.budget.model_dump(exclude_none=True) if body.budget else {},
            "temporary": True if temporary else None,
            **items.initial_counters(first_messages),
        }
        session = items.new_session(
            session_id,
            chosen,
            owner=caller.user_id,
            at=at,
            due_pk=self._due_pk(session_id),
            due_epoch=timeutil.epoch_seconds(moment) + idle_minutes * 60,
            idle_seconds=idle_minutes * 60,
        )
        created = items.event(session_id, "created", caller.user_id, at, title=body.title)
        stored = MessagesRepo.offload(first_messages, caller.user_id)
        # The session never exists if this fails, so no purge would visit a large prompt's object: drop it now.
        large = [item["payload_key"] for item in stored if "payload_key" in item]
        try:
            self.repo.create(session, quota=self.settings.max_active_sessions, extra_items=[created, *stored])
        except WriteRefused as refused:
            payloads.discard(large)
            existing = _existing(caller, session_id, refused.current)
            return {"session_id": session_id, "created": False, "session": existing}
        except QuotaExceeded as exc:
            payloads.discard(large)
            raise errors.SessionQuotaExceeded(
                f"You have {self.settings.max_active_sessions} open sessions, the most allowed; "
                "end, cancel or delete one first"
            ) from exc
        except Exception:
            payloads.discard(large)
            raise
        return {"session_id": session_id, "created": True, "session": session_out(session).model_dump(mode="json")}

    # -- read -----------------------------------------------------------------------------------
    def get(self, caller: Caller, session_id: str, *, include_messages: bool) -> dict[str, Any]:
        session = authorized.read(caller, session_id, Action.READ).session
        data = session_out(session).model_dump(mode="json")
        if include_messages:
            page = MessagesRepo().page(session_id, limit=MESSAGES_EMBED_LIMIT, ascending=True, start_key=None)
            data["messages"] = [message_out(item) for item in page.items]
            data["messages_next_cursor"] = (
                self.cursors.encode(page.next_key, user=caller.user_id, scope=f"messages:{session_id}:asc")
                if page.next_key
                else None
            )
        return data

    def continue_latest(self, caller: Caller) -> dict[str, Any]:
        item = self.repo.latest_active(caller.user_id)
        if item is not None:
            counters = self.repo.counters(caller.user_id) or {}
            if erased(item, counters):  # the erasure's worker has not reached it yet: the newest one it spares
                item = self.repo.latest_active(caller.user_id, created_after=str(counters["erased_before"]))
        if item is None:
            raise errors.NoSessionFound()
        return session_out(item).model_dump(mode="json")

    def list_sessions(self, caller: Caller, query: ListQuery) -> dict[str, Any]:
        if query.date_from and query.date_to and query.date_from > query.date_to:
            raise errors.validation_error("query.date_from", "date_from must not be after date_to")
        if query.cursor and (query.offset or query.page):
            raise errors.validation_error("query.cursor", "use either cursor or offset/page, not both")
        start_key = None
        if query.cursor:
            start_key = self.cursors.decode(query.cursor, user=caller.user_id, scope=query.scope())
            if start_key.get("GSI1PK") != keys.owner_gsi1pk(caller.user_id):
                raise errors.BadRequest("The cursor does not belong to this listing")
        skip = query.offset if query.offset is not None else (query.page - 1) * query.limit if query.page else 0
        if skip > MAX_OFFSET:
            raise errors.validation_error("query.offset", f"offset is at most {MAX_OFFSET}; use cursor to go further")
        page = self.repo.list_owned(
            caller.user_id, limit=skip + query.limit, start_key=start_key, filters=query.filters()
        )
        now_epoch = timeutil.now().timestamp()  # a session past its TTL is gone, though DynamoDB lags
        counters = page.counters if start_key is None else self.repo.counters(caller.user_id)
        items = [item for item in page.items[skip:] if visible(item, now_epoch) and not erased(item, counters)]
        return {
            "sessions": [session_out(item).model_dump(mode="json") for item in items],
            "count": len(items),
            "next_cursor": (
                self.cursors.encode(page.next_key, user=caller.user_id, scope=query.scope()) if page.next_key else None
            ),
            "has_more": page.next_key is not None,
            **totals(counters),
        }

    # -- update ---------------------------------------------------------------------------------
    def update(self, caller: Caller, session_id: str, body: UpdateSessionIn, *, if_match: int | None) -> dict[str, Any]:
        """Edit the session: the owner in one transaction, a sharee with `edit` re-checked inside it.

        TransactWriteItems returns no item, so the new state is read back (the second request).
        """
        changes = body.changes()
        if not changes:
            raise errors.validation_error("body", "send at least one field to change")
        moment = timeutil.now()
        events = []
        if "title" in changes:
            renamed = items.event(session_id, "renamed", caller.user_id, timeutil.iso(moment), title=changes["title"])
            events.append(renamed)
        fields = {
            name: value.model_dump(exclude_none=True) if hasattr(value, "model_dump") else value
            for name, value in changes.items()
        }
        change = session_writes.edit(session_id, fields, events, moment=moment, version=if_match)
        authorized.write(caller, Action.WRITE, change)
        return session_out(authorized.read(caller, session_id, Action.READ).session).model_dump(mode="json")

    # -- delete ---------------------------------------------------------------------------------
    def delete(self, caller: Caller, session_id: str) -> None:
        """One request in the common case: the tombstone assumes the session is `active` and learns
        the real status from the refusal otherwise (the counters must move the right status)."""
        if not ids.is_session_id(session_id):
            raise errors.SessionNotFound(session_id)
        status: str = Status.ACTIVE
        for _ in range(3):
            try:
                self._tombstone([(session_id, status, None)], caller)
                return
            except WriteRefused as refused:
                current = visible(refused.current, timeutil.now().timestamp())
                if current is None or current["created_by"] != caller.user_id:
                    authorized.read(caller, session_id, Action.MANAGE)  # 404 or 403, as the policy says
                    raise errors.SessionNotFound(session_id) from refused
                status = current["status"]
        raise errors.Conflict(f"Session {session_id} keeps changing; retry the delete")

    def cleanup(self, caller: Caller, session_ids: list[str]) -> dict[str, Any]:
        """Delete many of the caller's own sessions: one read to learn their states, one transaction per
        99 sessions (the last slot is the counters); other users' sessions count as not found."""
        wanted = list(dict.fromkeys(session_ids))
        valid = [session_id for session_id in wanted if ids.is_session_id(session_id)]
        deleted: set[str] = set()
        for _ in range(3):
            now_epoch = timeutil.now().timestamp()
            pending = [session_id for session_id in valid if session_id not in deleted]
            found = [visible(item, now_epoch) for item in self.repo.get_many(pending)] if pending else []
            owned = [item for item in found if item is not None and item["created_by"] == caller.user_id]
            try:
                for start in range(0, len(owned), 99):
                    chunk = owned[start : start + 99]
                    self._tombstone(
                        [(item["session_id"], item["status"], int(item["version"])) for item in chunk], caller
                    )
                    deleted.update(item["session_id"] for item in chunk)
                break
            except WriteRefused:
                continue  # one of them changed meanwhile: read again and retry the rest
        else:
            raise errors.Conflict("Sessions kept changing during cleanup; retry")
        return {
            "deleted": len(deleted),
            "session_ids": [session_id for session_id in wanted if session_id in deleted],
            "not_found": [session_id for session_id in wanted if session_id not in deleted],
        }

    def _tombstone(self, sessions: list[tuple[str, str, int | None]], caller: Caller) -> None:
        """Hide the sessions and fix the counters in one transaction; the schedule purges the rest."""
        moment = timeutil.now()
        deltas: dict[str, int] = {}
        operations = []
        for session_id, status, version in sessions:
            for name, delta in status_deltas(status, None).items():
                deltas[name] = deltas.get(name, 0) + delta
            operations.append(
                self.repo.tombstone(
                    session_id,
                    caller.user_id,
                    status=status,
                    version=version,
                    now_iso=timeutil.iso(moment),
                    due_pk=self._due_pk(session_id),
                    due_sk=timeutil.epoch_seconds(moment),
                    purge_ttl=timeutil.epoch_seconds(timeutil.plus(moment, days=1)),
                )
            )
        self.repo.delete_sessions(caller.user_id, operations, deltas)

    # -- views ----------------------------------------------------------------------------------
    def metrics(self, caller: Caller, session_id: str) -> dict[str, Any]:
        """One request: the session (with the caller's shares, for access) carries every counter."""
        session = plain(authorized.read(caller, session_id, Action.READ).session)
        started = timeutil.parse(session["created_at"])
        ended_at = session.get("ended_at")
        ended = timeutil.parse(ended_at) if ended_at else timeutil.now()
        input_tokens, output_tokens = session.get("input_tokens", 0), session.get("output_tokens", 0)
        total_tokens = input_tokens + output_tokens
        cost = float(session.get("cost_usd", 0))
        counts = {role: session.get(f"{role}_messages", 0) for role in ("user", "assistant", "system")}
        return MetricsOut.model_validate(
            {
                "session_id": session_id,
                "status": session["status"],
                "execution_time": {
                    "started_at": session["created_at"],
                    "ended_at": ended_at,
                    "seconds": round(max((ended - started).total_seconds(), 0.0), 3),
                },
                "token_usage": {
                    "input_tokens": input_tokens,
                    "output_tokens": output_tokens,
                    "total_tokens": total_tokens,
                },
                "message_counts": {**counts, "total": session.get("message_count", sum(counts.values()))},
                "turn_count": session.get("turn_count", 0),
                "error_count": session.get("error_count", 0),
                "cost_breakdown": {
                    "total_usd": cost,
                    "usd_per_1k_tokens": round(cost * 1000 / total_tokens, 6) if total_tokens else None,
                },
            }
        ).model_dump(mode="json")

    def history(
        self, caller: Caller, session_id: str, *, limit: int, cursor: str | None, descending: bool
    ) -> dict[str, Any]:
        """Two requests: the session (access) and one query of its `EVENT#` items."""
        authorized.read(caller, session_id, Action.READ)
        cursors = self.cursors
        scope = f"history:{session_id}:{'desc' if descending else 'asc'}"
        start = partition.resume_key(
            cursors, cursor, user=caller.user_id, scope=scope, session_id=session_id, prefix=keys.EVENT_PREFIX
        )
        found = partition.page(session_id, keys.EVENT_PREFIX, limit=limit, start_key=start, ascending=not descending)
        next_cursor = cursors.encode(found.next_key, user=caller.user_id, scope=scope) if found.next_key else None
        return HistoryOut(
            session_id=session_id,
            timeline=[event_out(item) for item in found.items],
            next_cursor=next_cursor,
            has_more=next_cursor is not None,
        ).model_dump(mode="json")


def _existing(caller: Caller, session_id: str, holder: dict[str, Any] | None) -> dict[str, Any]:
    """The session holding the id a create asked for: the caller's own, unchanged, else a 409 naming nobody."""
    if holder is None or holder["created_by"] != caller.user_id:
        raise errors.Conflict(f"Session id {session_id} is taken; choose another id")
    if visible(holder, timeutil.now().timestamp()) is None:
        # Not reused until purged: a new session there would lose its items to the old one's pending purge.
        raise errors.Conflict(
            f"Session id {session_id} belonged to a session of yours that was deleted; choose another id"
        )
    return session_out(holder).model_dump(mode="json")


def event_out(item: dict[str, Any]) -> TimelineEvent:
    data = plain(item)
    return TimelineEvent(
        event_id=data["event_id"],
        type=data["event_type"],
        actor=data["actor"],
        at=data["at"],
        details=data.get("data") or {},
    )
