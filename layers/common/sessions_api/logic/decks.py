"""Slide decks: read, replace, and put or delete one slide, versioned with ETag / If-Match.

The deck is one item (`DECK`) written in the same transaction as the session touch and a history
event. The session carries `deck_version`, so the transaction's condition on the session item is what
makes a write refuse a stale deck. A deck whose JSON is over `INLINE_MAX_BYTES` lives in S3, written
before the transaction that points at it (a failed transaction leaves at most an unreferenced object,
deleted at once or purged with the session).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from sessions_api import errors, timeutil
from sessions_api.dal import clients, keys
from sessions_api.dal.decks_repo import DecksRepo
from sessions_api.dal.expressions import Expr
from sessions_api.dal.objects import ObjectMissing
from sessions_api.dal.sessions_repo import SessionsRepo
from sessions_api.identity import Caller
from sessions_api.logic import access, activity, guard, history
from sessions_api.models.decks import Slide, SlideDeck
from sessions_api.models.entities import plain

# An item holds 400 KB; the rest of the deck item and DynamoDB's attribute overhead need the margin.
INLINE_MAX_BYTES = 256 * 1024
# A GET returns the whole deck, and a Lambda response holds 6 MB.
MAX_DECK_BYTES = 4 * 1024 * 1024
_WRITE_ATTEMPTS = 3


def empty_deck() -> dict[str, Any]:
    return {"slides": [], "css": "", "scripts": []}


@dataclass(frozen=True)
class StoredDeck:
    deck: dict[str, Any]
    version: int


class _DeckMoved(errors.Conflict):
    """The deck changed between the read and the write (no If-Match given): read again and retry."""


def encode(deck: dict[str, Any]) -> bytes:
    return json.dumps(deck, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass
class Decks:
    repo: DecksRepo = field(default_factory=DecksRepo)
    sessions_repo: SessionsRepo = field(default_factory=SessionsRepo)

    # -- read -----------------------------------------------------------------------------------
    def get(self, caller: Caller, session_id: str) -> dict[str, Any]:
        guard.load_session(caller, session_id, access.Action.READ, self.sessions_repo)
        stored = self.read(session_id)
        return deck_out(session_id, stored)

    def read(self, session_id: str) -> StoredDeck:
        """The deck as stored (after an access check by the caller); version 0 when there is none."""
        for attempt in range(2):
            item = self.repo.get(session_id)
            if item is None:
                return StoredDeck(empty_deck(), 0)
            if "payload_key" not in item:
                return StoredDeck(plain(item["deck"]), int(item["version"]))
            try:
                return StoredDeck(json.loads(self.repo.get_payload(item["payload_key"])), int(item["version"]))
            except ObjectMissing:
                if attempt:  # a newer write replaced it between our two reads: the item now says where
                    raise clients.RetryableError("The deck changed while it was read") from None
        raise AssertionError("unreachable")

    # -- write ----------------------------------------------------------------------------------
    def replace(self, caller: Caller, session_id: str, deck: SlideDeck, *, if_match: int | None) -> dict[str, Any]:
        new_deck = deck.model_dump(mode="json")

        def change(_: StoredDeck | None) -> tuple[dict[str, Any], dict[str, Any]]:
            return new_deck, {"change": "replaced"}

        stored = self._write(caller, session_id, change, if_match=if_match, needs_current=False)
        return deck_out(session_id, stored)

    def put_slide(
        self, caller: Caller, session_id: str, slide: Slide, *, if_match: int | None
    ) -> tuple[dict[str, Any], bool]:
        """(the slide, its position and the deck version; whether it is new)."""
        created = False

        def change(current: StoredDeck | None) -> tuple[dict[str, Any], dict[str, Any]]:
            nonlocal created
            assert current is not None
            deck = dict(current.deck)
            slides = list(deck["slides"])
            index = next((i for i, old in enumerate(slides) if old["slide_id"] == slide.slide_id), None)
            created = index is None
            if index is None:
                slides.append(slide.model_dump(mode="json"))
            else:
                slides[index] = slide.model_dump(mode="json")
            deck["slides"] = slides
            validate(deck)
            return deck, {"change": "slide_added" if created else "slide_replaced", "slide_id": slide.slide_id}

        stored = self._write(caller, session_id, change, if_match=if_match, needs_current=True)
        position = next(i for i, old in enumerate(stored.deck["slides"]) if old["slide_id"] == slide.slide_id)
        body = {
            "session_id": session_id,
            "slide": slide.model_dump(mode="json"),
            "position": position,
            "version": stored.version,
        }
        return body, created

    def delete_slide(self, caller: Caller, session_id: str, slide_id: str, *, if_match: int | None) -> int:
        """The deck's new version."""

        def change(current: StoredDeck | None) -> tuple[dict[str, Any], dict[str, Any]]:
            assert current is not None
            slides = [old for old in current.deck["slides"] if old["slide_id"] != slide_id]
            if len(slides) == len(current.deck["slides"]):
                raise errors.SlideNotFound(slide_id)
            return {**current.deck, "slides": slides}, {"change": "slide_deleted", "slide_id": slide_id}

        return self._write(caller, session_id, change, if_match=if_match, needs_current=True).version

    def _write(
        self,
        caller: Caller,
        session_id: str,
        change: Callable[[StoredDeck | None], tuple[dict[str, Any], dict[str, Any]]],
        *,
        if_match: int | None,
        needs_current: bool,
    ) -> StoredDeck:
        for _ in range(_WRITE_ATTEMPTS):
            session = guard.load_session(caller, session_id, access.Action.WRITE, self.sessions_repo).session
            current = self.read(session_id) if needs_current else None
            expected = current.version if current is not None else int(session.get("deck_version", 0))
            if if_match is not None and if_match != expected:
                raise _precondition_failed(session_id, if_match, expected)
            deck, details = change(current)
            try:
                return self._store(caller, session, deck, details, expected=expected, if_match=if_match)
            except _DeckMoved:
                continue
        raise errors.Conflict(f"The deck of session {session_id} keeps changing; retry")

    def _store(
        self,
        caller: Caller,
        session: dict[str, Any],
        deck: dict[str, Any],
        details: dict[str, Any],
        *,
        expected: int,
        if_match: int | None,
    ) -> StoredDeck:
        session_id = session["session_id"]
        body = encode(deck)
        if len(body) > MAX_DECK_BYTES:
            raise errors.PayloadTooLarge(f"The deck would be {len(body)} bytes as JSON; the limit is {MAX_DECK_BYTES}")
        moment = timeutil.now()
        at = timeutil.iso(moment)
        version = expected + 1
        item: dict[str, Any] = {
            **keys.deck_key(session_id),
            "type": "deck",
            "session_id": session_id,
            "version": version,
            "slide_count": len(deck["slides"]),
            "size_bytes": len(body),
            "updated_at": at,
            "updated_by": caller.user_id,
        }
        payload_key = None
        if len(body) > INLINE_MAX_BYTES:
            payload_key = keys.deck_payload_s3_key(session["created_by"], session_id, version)
            self.repo.put_payload(payload_key, body)
            item["payload_key"] = payload_key
        else:
            item["deck"] = deck
        event = history.event_item(
            session_id,
            "slides_updated",
            caller.user_id,
            at,
            version=version,
            slide_count=len(deck["slides"]),
            **details,
        )

        def build(expr: Expr) -> Expr:
            deck_version = expr.name("deck_version")
            if expected == 0:
                expr.when(f"attribute_not_exists({deck_version}) OR {deck_version} = {expr.value(0)}")
            else:
                expr.when(f"{deck_version} = {expr.value(expected)}")
            expr.set("deck_version", version)
            if payload_key:
                expr.set("deck_payload_key", payload_key)
            else:
                expr.remove("deck_payload_key")
            return activity.touch(expr, session_id, moment)

        try:
            guard.write_session(
                caller,
                session_id,
                access.Action.WRITE,
                build,
                extra_items=[item, event],
                refusal=_refusal(session_id, expected, if_match),
                repo=self.sessions_repo,
            )
        except BaseException:
            if payload_key:
                self.repo.delete_payload(payload_key)
            raise
        previous = session.get("deck_payload_key")
        if previous and previous != payload_key:
            self.repo.delete_payload(previous)  # readers that still hold the old item read the item again
        return StoredDeck(deck, version)


def validate(deck: dict[str, Any]) -> None:
    """A deck assembled from stored slides and a new one still keeps the deck limits (422 otherwise)."""
    try:
        SlideDeck.model_validate(deck)
    except ValidationError as exc:
        details = [
            {"field": ".".join(str(part) for part in error["loc"]), "message": error["msg"], "type": error["type"]}
            for error in exc.errors()
        ]
        raise errors.ValidationFailed("The deck would break its limits", errors=details) from exc


def deck_out(session_id: str, stored: StoredDeck) -> dict[str, Any]:
    return {"session_id": session_id, "slide_deck": stored.deck, "version": stored.version}


def _precondition_failed(session_id: str, if_match: int, version: int) -> errors.PreconditionFailed:
    return errors.PreconditionFailed(
        f"The deck of session {session_id} is at version {version}, not {if_match}", headers={"ETag": f'"{version}"'}
    )


def _refusal(session_id: str, expected: int, if_match: int | None) -> guard.Refusal:
    default = guard.default_refusal(session_id)

    def refusal(current: dict[str, Any] | None) -> errors.ApiError:
        if current is None or current.get("status") == "expired":
            return default(current)
        version = int(current.get("deck_version", 0))
        if version != expected:
            if if_match is not None:
                return _precondition_failed(session_id, if_match, version)
            return _DeckMoved()
        return default(current)

    return refusal
