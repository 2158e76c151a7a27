"""Each documented limit at, just under and just past its boundary, in multibyte text: the limits count
characters, and what is accepted is stored exactly (read back, not only a 201)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from sessions_api.models.messages import MAX_CONTENT_CHARS
from tests.conftest import all_items
from tests.support import Api

BASE = "/api/v1/sessions"
WIDE = "字"  # three bytes in UTF-8
EMOJI = "🦜"  # four bytes in UTF-8, two UTF-16 code units: still one character


@dataclass(frozen=True)
class Limit:
    name: str
    size: int
    write: Callable[[Api, str, str], Any]  # (api, session id, text) → the response
    read: Callable[[Api, str, Any], str]  # (api, session id, the write's response) → the stored text


def _message(api: Api, session_id: str, text: str) -> Any:
    return api("POST", f"{BASE}/{session_id}/messages", body={"role": "user", "content": text})


def _comment(api: Api, session_id: str, text: str) -> Any:
    return api("POST", f"{BASE}/{session_id}/comments", body={"content": text, "comment_type": "note"})


def _rename(api: Api, session_id: str, text: str) -> Any:
    return api("PATCH", f"{BASE}/{session_id}", body={"title": text})


def _metadata_value(api: Api, session_id: str, text: str) -> Any:
    return api("PATCH", f"{BASE}/{session_id}", body={"metadata": {"k": text}})


def _metadata_key(api: Api, session_id: str, text: str) -> Any:
    return api("PATCH", f"{BASE}/{session_id}", body={"metadata": {text: "v"}})


LIMITS = [
    Limit(
        "message content",
        MAX_CONTENT_CHARS,
        _message,
        lambda api, sid, made: api("GET", f"{BASE}/{sid}/messages/{made['message_id']}").body["content"],
    ),
    Limit(
        "comment",
        10_000,
        _comment,
        lambda api, sid, made: api("GET", f"{BASE}/{sid}/comments").body["comments"][0]["content"],
    ),
    Limit("title", 200, _rename, lambda api, sid, made: api("GET", f"{BASE}/{sid}").body["title"]),
    Limit(
        "metadata value", 512, _metadata_value, lambda api, sid, made: api("GET", f"{BASE}/{sid}").body["metadata"]["k"]
    ),
    Limit(
        "metadata key",
        64,
        _metadata_key,
        lambda api, sid, made: next(iter(api("GET", f"{BASE}/{sid}").body["metadata"])),
    ),
]


def text_of(length: int) -> str:
    """`length` characters, mostly three-byte ones, with a four-byte one at the end."""
    return WIDE * (length - 1) + EMOJI


@pytest.mark.parametrize("limit", LIMITS, ids=[limit.name for limit in LIMITS])
@pytest.mark.parametrize("offset", [-1, 0], ids=["just under", "at"])
def test_text_up_to_the_limit_is_stored_exactly(api: Api, limit: Limit, offset: int) -> None:
    session_id = api.create_session()["session_id"]
    text = text_of(limit.size + offset)
    made = limit.write(api, session_id, text)
    assert made.status in (200, 201), made.body
    assert limit.read(api, session_id, made.body) == text


@pytest.mark.parametrize("limit", LIMITS, ids=[limit.name for limit in LIMITS])
def test_text_just_past_the_limit_is_refused_and_nothing_changes(api: Api, table: Any, limit: Limit) -> None:
    session_id = api.create_session()["session_id"]
    before = sorted(all_items(table), key=lambda item: (item["PK"], item["SK"]))
    refused = limit.write(api, session_id, text_of(limit.size + 1))
    assert refused.status == 422 and refused.problem["code"] == "validation_error", refused.body
    assert sorted(all_items(table), key=lambda item: (item["PK"], item["SK"])) == before
