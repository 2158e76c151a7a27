"""`If-Match` and `If-None-Match` on every route that takes them: a current tag, a stale one, hostile ones."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import all_items
from tests.support import Api

BASE = "/api/v1/sessions"
DECK = {"slides": [{"slide_id": "intro", "html": "<h1>Hi</h1>"}], "css": "", "scripts": []}


def snapshot(table: Any) -> list[dict[str, Any]]:
    return sorted(all_items(table), key=lambda item: (item["PK"], item["SK"]))


@dataclass(frozen=True)
class Write:
    name: str
    method: str
    path: str  # `{id}` is the session
    body: dict[str, Any] | None
    tag_of: Callable[[Api, str], str]  # the current ETag the route compares with


def session_tag(api: Api, session_id: str) -> str:
    return api("GET", f"{BASE}/{session_id}").headers["ETag"]


def deck_tag(api: Api, session_id: str) -> str:
    return api("GET", f"{BASE}/{session_id}/slides").headers["ETag"]


WRITES = [
    Write("patch session", "PATCH", "", {"title": "renamed"}, session_tag),
    Write("put results", "PUT", "/results", {"results": {"n": 1}}, session_tag),
    Write("pause", "POST", "/pause", None, session_tag),
    Write("end", "POST", "/end", {"reason": "done"}, session_tag),
    Write("put slides", "PUT", "/slides", DECK, deck_tag),
    Write("put one slide", "PUT", "/slides/intro", {"html": "<p>new</p>"}, deck_tag),
    Write("delete one slide", "DELETE", "/slides/intro", None, deck_tag),
]


def session_with_deck(api: Api) -> str:
    session_id = api.create_session()["session_id"]
    assert api("PUT", f"{BASE}/{session_id}/slides", body=DECK).status == 200
    return session_id


def send(api: Api, write: Write, session_id: str, if_match: str) -> Any:
    return api(write.method, f"{BASE}/{session_id}{write.path}", body=write.body, headers={"If-Match": if_match})


HOSTILE_TAGS = [
    '"' + "9" * 5_000 + '"',  # over Python's integer-string limit
    "9" * 100_000,
    '"19"',  # a version nobody reached yet (stale in the other direction)
    '"-1"',
    '"²"',  # a Unicode digit that int() would refuse
    '"1.0"',
    '""',
    "garbage",
]


@pytest.mark.parametrize("write", WRITES, ids=[write.name for write in WRITES])
@pytest.mark.parametrize(
    "tag",
    HOSTILE_TAGS,
    ids=["5000 digits", "100000 digits", "future", "negative", "superscript", "decimal", "empty", "garbage"],
)
def test_a_tag_that_names_no_version_is_412_and_changes_nothing(api: Api, table: Any, write: Write, tag: str) -> None:
    session_id = session_with_deck(api)
    before = snapshot(table)
    result = send(api, write, session_id, tag)
    assert result.status == 412, result.body
    assert result.problem["code"] == "precondition_failed" and len(result.problem["detail"]) < 200
    assert snapshot(table) == before


@pytest.mark.parametrize("write", WRITES, ids=[write.name for write in WRITES])
def test_a_stale_tag_is_412_and_the_current_one_writes(api: Api, table: Any, write: Write) -> None:
    # Given a tag read before someone else's write
    session_id = session_with_deck(api)
    stale = write.tag_of(api, session_id)
    assert api("PATCH", f"{BASE}/{session_id}", body={"metadata": {"k": "v"}}).status == 200
    assert api("PUT", f"{BASE}/{session_id}/slides", body=DECK).status == 200
    before = snapshot(table)
    # When the write is sent with it, Then 412 and nothing changed
    assert send(api, write, session_id, stale).status == 412
    assert snapshot(table) == before
    # And with the current tag it is written
    written = send(api, write, session_id, write.tag_of(api, session_id))
    assert written.status in (200, 204), written.body
    assert snapshot(table) != before


READS = [
    ("session", lambda session_id: f"{BASE}/{session_id}"),
    ("slides", lambda session_id: f"{BASE}/{session_id}/slides"),
]


@pytest.mark.parametrize(("name", "path_of"), READS, ids=[name for name, _ in READS])
def test_if_none_match_is_304_only_for_the_current_tag(api: Api, name: str, path_of: Callable[[str], str]) -> None:
    session_id = session_with_deck(api)
    path = path_of(session_id)
    current = api("GET", path).headers["ETag"]
    stale = f'"{int(current.strip(chr(34))) - 1}"'
    assert api("GET", path, headers={"If-None-Match": stale}).status == 200
    assert api("GET", path, headers={"If-None-Match": '"' + "9" * 5_000 + '"'}).status == 200
    for matching in (current, f"W/{current}", f"{stale}, {current}", "*"):
        not_modified = api("GET", path, headers={"If-None-Match": matching})
        assert not_modified.status == 304 and not_modified.headers["ETag"] == current, matching
    # After a write the old tag is stale: the client gets the new content
    api("PUT", f"{BASE}/{session_id}/slides", body={**DECK, "css": "h1{color:red}"})
    api("PATCH", f"{BASE}/{session_id}", body={"title": "changed"})
    fresh = api("GET", path, headers={"If-None-Match": current})
    assert fresh.status == 200 and fresh.headers["ETag"] != current


def test_if_none_match_on_the_docs_assets_is_304_only_for_the_current_tag(api: Api) -> None:
    path = "/api/v1/openapi.json"
    current = api("GET", path, user=None).headers["ETag"]
    assert api("GET", path, headers={"If-None-Match": '"0123456789abcdef"'}, user=None).status == 200
    assert api("GET", path, headers={"If-None-Match": current}, user=None).status == 304
