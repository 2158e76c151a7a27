"""Slide decks: read, replace, and put or delete one slide, versioned with ETag / If-Match; and the deck a
chat run writes through its `write_slides` tool, on the same path.

The deck is one item (`DECK`) written in the same transaction as the session touch and a history
event. The session carries `deck_version`, so the transaction's condition on the session item is what
makes a write refuse a stale deck. A deck whose JSON is over `INLINE_MAX_BYTES` lives in S3, written
before the transaction that points at it (a failed transaction leaves at most an unreferenced object,
deleted at once or purged with the session).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from sessions_api import errors, ids, timeutil
from sessions_api.dal import clients, items, keys, session_writes
from sessions_api.dal.decks_repo import DecksRepo
from sessions_api.dal.objects import ObjectMissing
from sessions_api.identity import Caller
from sessions_api.logic import authorized, policy
from sessions_api.logic.policy import Access, Action
from sessions_api.models.decks import Slide, SlideContext, SlideDeck
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


@dataclass(frozen=True)
class RunDeck:
    """The deck a run's `write_slides` call makes of the deck it read (at `base_version`), and which slides it
    replaced (a revision)."""

    stored: StoredDeck
    base_version: int
    replacement_info: dict[str, int] | None


def plan_for_run(base: StoredDeck, proposed: Any, context: SlideContext | None) -> RunDeck:
    """The deck after a run's `write_slides(proposed)` over `base`: the proposal whole, or, revising, in place of
    the slides `context` names (the deck's css and scripts kept). An invalid proposal or result: 422 (a
    ValidationFailed naming each broken limit, or PayloadTooLarge)."""
    written = validate(proposed, "The deck is not a valid deck")
    replaced = None
    deck = written
    if context is not None:
        start, count = context.indices[0], len(context.indices)
        if start + count > len(base.deck["slides"]):
            raise errors.ValidationFailed(
                f"slide_context names slides {start}-{start + count - 1}, but the deck has {len(base.deck['slides'])}"
            )
        slides = [*base.deck["slides"][:start], *written["slides"], *base.deck["slides"][start + count :]]
        deck = validate({**base.deck, "slides": slides}, "The revised deck would break the deck's limits")
        replaced = {"start_index": start, "original_count": count, "replacement_count": len(written["slides"])}
    size = len(encode(deck))
    if size > MAX_DECK_BYTES:
        raise errors.PayloadTooLarge(f"The deck would be {size} bytes as JSON; the limit is {MAX_DECK_BYTES}")
    return RunDeck(StoredDeck(deck, base.version + 1), base.version, replaced)


def same_slides(before: dict[str, Any], now: dict[str, Any], context: SlideContext) -> bool:
    """Whether the slides a revision replaces are still where, and what, they were (so it can be applied to
    the deck as it is now)."""
    start, end = context.indices[0], context.indices[-1] + 1
    return end <= len(now["slides"]) and before["slides"][start:end] == now["slides"][start:end]


class DeckConflict(Exception):
    """The deck changed after the run read it, where the run would have written: nothing was stored."""

    def __init__(self, current: StoredDeck) -> None:
        super().__init__(f"The deck is at version {current.version}")
        self.current = current


def encode(deck: dict[str, Any]) -> bytes:
    return json.dumps(deck, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass
class Decks:
    repo: DecksRepo = field(default_factory=DecksRepo)

    # -- read -----------------------------------------------------------------------------------
    def get(self, caller: Caller, session_id: str) -> dict[str, Any]:
        authorized.read(caller, session_id, Action.READ)
        stored = self.read(session_id)
        return deck_out(session_id, stored)

    def check_context(self, session_id: str, context: SlideContext) -> None:
        """422 unless the session's deck has the slides a revision names (one read of the deck's item)."""
        item = self.repo.get(session_id)
        count = int(item["slide_count"]) if item else 0
        if context.indices[-1] >= count:
            raise errors.ValidationFailed(
                f"slide_context names slide {context.indices[-1]}, but the deck has {count} slides",
                errors=[{"field": "body.slide_context.indices", "message": f"must be below {count}", "type": "range"}],
            )

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
        new_deck = deck.model_dump(mode="json", exclude_none=True)

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
                slides.append(slide.model_dump(mode="json", exclude_none=True))
            else:
                slides[index] = slide.model_dump(mode="json", exclude_none=True)
            deck["slides"] = slides
            validate(deck)
            return deck, {"change": "slide_added" if created else "slide_replaced", "slide_id": slide.slide_id}

        stored = self._write(caller, session_id, change, if_match=if_match, needs_current=True)
        position = next(i for i, old in enumerate(stored.deck["slides"]) if old["slide_id"] == slide.slide_id)
        body = {
            "session_id": session_id,
            "slide": slide.model_dump(mode="json", exclude_none=True),
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
            access = authorized.read(caller, session_id, Action.WRITE)
            current = self.read(session_id) if needs_current else None
            expected = current.version if current is not None else int(access.session.get("deck_version", 0))
            if if_match is not None and if_match != expected:
                raise policy.precondition_failed(f"The deck of session {session_id}", if_match, expected)
            deck, details = change(current)
            try:
                return self._store(caller, access, deck, details, expected=expected, if_match=if_match is not None)
            except policy.Moved:
                continue
        raise errors.Conflict(f"The deck of session {session_id} keeps changing; retry")

    def store_for_run(
        self,
        caller: Caller,
        session_id: str,
        planned: RunDeck,
        *,
        request_id: str,
        alongside: list[dict[str, Any]],
    ) -> None:
        """Store the deck a run planned over the deck it read (`planned.base_version`), as `caller` (who started
        the run), with the run's own operations `alongside` in the same transaction: never over a deck
        changed meanwhile (DeckConflict, with the deck as it is now), and not at all once those fail."""
        access = authorized.read(caller, session_id, Action.WRITE)
        details: dict[str, Any] = {"change": "revised" if planned.replacement_info else "written"}
        if planned.replacement_info:
            details["replacement_info"] = planned.replacement_info
        try:
            self._store(
                caller,
                access,
                planned.stored.deck,
                {**details, "request_id": request_id},
                expected=planned.base_version,
                if_match=True,
                event_type="deck_written",
                alongside=alongside,
            )
        except errors.PreconditionFailed:
            raise DeckConflict(self.read(session_id)) from None

    def _store(
        self,
        caller: Caller,
        access: Access,
        deck: dict[str, Any],
        details: dict[str, Any],
        *,
        expected: int,
        if_match: bool,
        event_type: str = "slides_updated",
        alongside: list[dict[str, Any]] | None = None,
    ) -> StoredDeck:
        session = access.session
        session_id = session["session_id"]
        body = encode(deck)
        if len(body) > MAX_DECK_BYTES:
            raise errors.PayloadTooLarge(f"The deck would be {len(body)} bytes as JSON; the limit is {MAX_DECK_BYTES}")
        moment = timeutil.now()
        at = timeutil.iso(moment)
        version = expected + 1
        fields: dict[str, Any] = {
            "version": version,
            "slide_count": len(deck["slides"]),
            "size_bytes": len(body),
            "updated_at": at,
            "updated_by": caller.user_id,
        }
        payload_key = None
        if len(body) > INLINE_MAX_BYTES:
            payload_key = keys.deck_payload_s3_key(session["created_by"], session_id, version, ids.new_id("w"))
            self.repo.put_payload(payload_key, body)
            fields["payload_key"] = payload_key
        else:
            fields["deck"] = deck
        event = items.event(
            session_id,
            event_type,
            caller.user_id,
            at,
            version=version,
            slide_count=len(deck["slides"]),
            **details,
        )
        change = session_writes.store_deck(
            session_id,
            items.deck(session_id, fields),
            event,
            moment=moment,
            expected_version=expected,
            if_match=if_match,
            payload_key=payload_key,
            operations=alongside or [],
        )
        try:
            authorized.write(caller, Action.WRITE, change, access=access)
        except BaseException:
            if payload_key:
                self.repo.delete_payload(payload_key)
            raise
        previous = session.get("deck_payload_key")
        if previous and previous != payload_key:
            self.repo.delete_payload(previous)  # readers that still hold the old item read the item again
        return StoredDeck(deck, version)


def validate(deck: Any, problem: str = "The deck would break its limits") -> dict[str, Any]:
    """The deck as stored, if it keeps the deck's shape and limits (422 naming each broken one otherwise)."""
    try:
        return SlideDeck.model_validate(deck).model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        details = [
            {"field": ".".join(str(part) for part in error["loc"]), "message": error["msg"], "type": error["type"]}
            for error in exc.errors()
        ]
        raise errors.ValidationFailed(problem, errors=details) from exc


def deck_out(session_id: str, stored: StoredDeck) -> dict[str, Any]:
    """The deck as GET answers it: `slide_deck: null` while there is none."""
    return {
        "session_id": session_id,
        "slide_deck": with_count(stored) if stored.version else None,
        "version": stored.version,
    }


def with_count(stored: StoredDeck) -> dict[str, Any]:
    return {**stored.deck, "slide_count": len(stored.deck["slides"])}


def outline(deck: dict[str, Any]) -> list[str]:
    """Each slide as its position, id and heading (its first heading, else its first words), for a model."""
    return [f"{index}. [{slide['slide_id']}] {_heading(slide['html'])}" for index, slide in enumerate(deck["slides"])]


def titles(deck: dict[str, Any]) -> list[str]:
    return [_heading(slide["html"]) for slide in deck["slides"]]


def raw_html(deck: dict[str, Any], *, title: str) -> str:
    """The deck as one standalone HTML document: its slides and its CSS (never its scripts)."""
    sections = "\n".join(
        f'<section class="slide" data-slide-id="{html.escape(slide["slide_id"])}">\n{slide["html"]}\n</section>'
        for slide in deck["slides"]
    )
    return (
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>\n{deck.get('css', '')}\n</style>\n</head>\n"
        f"<body>\n{sections}\n</body>\n</html>\n"
    )


_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)


HEADING_SEARCH_CHARS = 4096
_HEADING = re.compile(r"<h[1-6]\b[^>]*>(.*?)</h[1-6]\s*>", re.IGNORECASE | re.DOTALL)


def _heading(slide_html: str) -> str:
    """The slide's first heading, else its first words."""
    head = slide_html[:HEADING_SEARCH_CHARS]  # a heading is near the top; the patterns cost more on long input
    found = _HEADING.search(head)
    text = " ".join(html.unescape(_TAG.sub(" ", found[1] if found else head)).split())
    return text[:80] or "(no text)"
