"""Fork: a new session of the caller's holding a session's messages up to one of them, its deck and its settings.

Anyone who may read a session may fork it into their own. The fork takes the source's settings (title unless
another is given, type, agent, model, metadata, preferences, budget, idle timeout), its messages up to and
including `from_message_id` (all when absent; same ids, contents and times, no run ids) and its deck; never its
shares, comments, runs, exports, results or history. Its counters are what its messages add up to, as appends
would have made them; its cost starts at nothing. Edit-and-resend is a fork before the edited message, then a chat.

However long the source, the fork is visible only once complete, and a crash leaves nothing behind for good:
1. the fork's item is written first, as a tombstone (every read treats it as missing) due on GSI3 in
   `UNPUBLISHED_SECONDS`, longer than any request: should the copy never finish, the schedule purges it,
   its S3 prefix and every item copied so far, exactly as it purges a deleted session;
2. the messages are copied a page at a time (their large contents, then the deck, copied inside S3 into the
   forker's prefix first, so an item never points at nothing), 25 to a BatchWriteItem: nothing of the source
   is held, and the source takes writes meanwhile;
3. one transaction makes it live: the fork's item replaces its tombstone (index keys, counters, `forked_from`),
   its owner's counters move within the quota (429 like a create), and both histories get a `forked` event.
   It is a write on the source as its reader (`authorized.write`): a deleted source, or a share revoked
   meanwhile, refuses the fork, and a sharee's event in the source is signed for their erasure.
A failure after step 1 marks the fork due at once, so the next scheduled run removes it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sessions_api import errors, ids, timeutil
from sessions_api.dal import fork_repo, items, keys
from sessions_api.dal.fork_repo import ForkRepo
from sessions_api.dal.objects import ObjectMissing
from sessions_api.identity import Caller
from sessions_api.logic import authorized
from sessions_api.logic.policy import Access, Action
from sessions_api.models.entities import Status, session_out
from sessions_api.models.forks import ForkIn
from sessions_api.settings import Settings

# When the schedule may purge a fork that was never published: well past the function's 29 s timeout.
UNPUBLISHED_SECONDS = 15 * 60
# Kept back from the copy for the publishing transaction and the answer (a fork whose time runs out anyway is
# left unpublished, and purged by the schedule).
PUBLISH_MARGIN_MS = 4_000
# The session's settings a fork takes as they are.
SETTINGS = ("session_type", "agent_name", "model_id", "metadata", "preferences", "budget")
_DECK_ATTEMPTS = 2


@dataclass
class Copied:
    """What the copied messages and deck add up to on the fork's session item."""

    counters: dict[str, int] = field(default_factory=lambda: items.message_counters([]))
    last: dict[str, Any] | None = None  # the last message copied
    deck: dict[str, Any] | None = None  # the fork's deck item

    def add(self, messages: list[dict[str, Any]]) -> None:
        for name, count in items.message_counters(messages).items():
            self.counters[name] += count
        if messages:
            self.last = messages[-1]

    def fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = dict(self.counters)
        if self.last is not None:
            # The newest message's id and preview, as an append sets them.
            fields["last_message_id"] = self.last["message_id"]
            fields["last_message_preview"] = items.preview(
                self.last.get("content", self.last.get("content_preview", ""))
            )
        if self.deck is not None:
            fields["deck_version"] = self.deck["version"]
            fields["deck_payload_key"] = self.deck.get("payload_key")
        return fields


@dataclass
class Forks:
    settings: Settings
    repo: ForkRepo = field(default_factory=ForkRepo)

    def fork(self, caller: Caller, session_id: str, body: ForkIn, *, remaining_ms: int) -> dict[str, Any]:
        """`{session_id, session}` of the new fork (what an `Idempotency-Key` stores, and a replay checks)."""
        deadline = time.monotonic() + max(remaining_ms - PUBLISH_MARGIN_MS, 0) / 1000
        if body.from_message_id is None:
            access = authorized.read(caller, session_id, Action.READ)
        else:
            access, _ = authorized.read_message(caller, session_id, body.from_message_id, Action.READ)
        if self._over_quota(caller):  # before any work; the publishing transaction guards it again
            raise self._quota_exceeded()
        fork_id = ids.new_session_id()
        moment = timeutil.now()
        self.repo.begin(
            items.unpublished_fork(
                fork_id,
                caller.user_id,
                at=timeutil.iso(moment),
                due_pk=keys.due_pk(fork_id, self.settings.due_shards),
                due_epoch=timeutil.epoch_seconds(moment) + UNPUBLISHED_SECONDS,
            )
        )
        try:
            copied = Copied()
            self._copy_messages(session_id, fork_id, caller.user_id, body.from_message_id, copied, deadline)
            copied.deck = self._copy_deck(session_id, fork_id, caller.user_id)
            fork = self._publish(caller, access, fork_id, body, copied)
        except Exception:
            self.repo.abandon(fork_id, timeutil.epoch_seconds(timeutil.now()))
            raise
        return {"session_id": fork_id, "session": session_out(fork).model_dump(mode="json")}

    def _copy_messages(
        self, source_id: str, fork_id: str, owner: str, through: str | None, copied: Copied, deadline: float
    ) -> None:
        start: dict[str, Any] | None = None
        while True:
            if time.monotonic() > deadline:
                raise errors.PayloadTooLarge(
                    f"Session {source_id} is too long to fork in one request ({copied.counters['message_count']} "
                    "messages copied in the time there was); fork it from an earlier message"
                )
            page = self.repo.messages(source_id, through=through, start_key=start)
            copies, objects = [], []
            for message in page.items:
                payload_key = None
                if "payload_key" in message:
                    payload_key = keys.message_payload_s3_key(owner, fork_id, message["message_id"])
                    objects.append((message["payload_key"], payload_key))
                copies.append(items.forked_message(fork_id, message, payload_key=payload_key))
            try:
                self.repo.copy_objects(objects)
            except ObjectMissing as exc:  # only a purge removes a message's object: the source is going
                raise errors.SessionNotFound(source_id) from exc
            self.repo.write_items(copies)
            copied.add(copies)
            start = page.next_key
            if start is None:
                return

    def _copy_deck(self, source_id: str, fork_id: str, owner: str) -> dict[str, Any] | None:
        """The deck as the fork stores it (None: the source has none); a large one's object copied first."""
        for _ in range(_DECK_ATTEMPTS):
            stored = self.repo.deck(source_id)
            if stored is None:
                return None
            payload_key = None
            if "payload_key" in stored:
                version = int(stored["version"])
                payload_key = keys.deck_payload_s3_key(owner, fork_id, version, ids.new_id("w"))
                try:
                    self.repo.copy_objects([(stored["payload_key"], payload_key)])
                except ObjectMissing:
                    continue  # a newer deck replaced it between the two reads: the item now says where
            deck = items.forked_deck(fork_id, stored, payload_key=payload_key, by=owner)
            self.repo.write_items([deck])
            return deck
        raise errors.Conflict(f"The deck of session {source_id} kept changing while it was forked; retry")

    def _publish(self, caller: Caller, access: Access, fork_id: str, body: ForkIn, copied: Copied) -> dict[str, Any]:
        source = access.session
        moment = timeutil.now()
        at = timeutil.iso(moment)
        source_id = source["session_id"]
        title = body.title or source["title"]
        idle_seconds = int(source.get("idle_seconds") or self.settings.idle_timeout_minutes * 60)
        last_id = copied.last["message_id"] if copied.last else None
        derived = copied.fields()
        fields = {
            "title": title,
            "title_lower": title.lower(),
            "status": str(Status.ACTIVE),
            **{name: source.get(name) for name in SETTINGS},
            **derived,
            "forked_from": {"session_id": source_id, "message_id": last_id},
        }
        fork = items.new_session(
            fork_id,
            fields,
            owner=caller.user_id,
            at=at,
            due_pk=keys.due_pk(fork_id, self.settings.due_shards),
            due_epoch=timeutil.epoch_seconds(moment) + idle_seconds,
            idle_seconds=idle_seconds,
        )
        # A new session's token totals start at zero; a fork's are its messages'.
        fork.update(input_tokens=derived["input_tokens"], output_tokens=derived["output_tokens"])
        count = copied.counters["message_count"]
        details = {"message_id": last_id, "message_count": count}
        own = items.event(fork_id, "forked", caller.user_id, at, from_session_id=source_id, **details)
        noted = items.event(source_id, "forked", caller.user_id, at, to_session_id=fork_id, **details)
        quota = self.settings.max_active_sessions
        change = fork_repo.publishing(source_id, fork, [own], noted, quota=quota)
        try:
            authorized.write(caller, Action.READ, change, access=access)
        except errors.Conflict as refused:
            if self._over_quota(caller):  # another session opened since the check above took the last place
                raise self._quota_exceeded() from refused
            raise
        return fork

    def _over_quota(self, caller: Caller) -> bool:
        counters = self.repo.counters(caller.user_id) or {}
        return int(counters.get("open_count", 0)) >= self.settings.max_active_sessions

    def _quota_exceeded(self) -> errors.SessionQuotaExceeded:
        return errors.SessionQuotaExceeded(
            f"You have {self.settings.max_active_sessions} open sessions, the most allowed; "
            "end, cancel or delete one first"
        )
