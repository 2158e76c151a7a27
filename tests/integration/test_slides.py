"""The slides endpoint group, in-process with moto: Given / When / Then."""

from __future__ import annotations

import json
import os
import re
from typing import Any

import boto3
import pytest

from tests.conftest import all_items
from tests.support import Api

BASE = "/api/v1/sessions"
DECK = {
    "slides": [
        {"slide_id": "intro", "html": "<h1>Quarterly review</h1><ul><li>Revenue up 12 %</li></ul>"},
        {"slide_id": "numbers", "html": "<h2>Numbers</h2><table><tr><th>Region</th><th>€</th></tr></table>"},
    ],
    "css": "h1 { color: #1f3864; }",
    "scripts": ["document.title = 'x'"],
}


def deck_path(session_id: str, slide_id: str | None = None) -> str:
    return f"{BASE}/{session_id}/slides" + (f"/{slide_id}" if slide_id else "")


def s3_keys(prefix: str = "sessions/") -> list[str]:
    listing = boto3.client("s3").list_objects_v2(Bucket=os.environ["BUCKET_NAME"], Prefix=prefix)
    return [entry["Key"] for entry in listing.get("Contents", [])]


def share(table: Any, session_id: str, user: str, permission: str) -> None:
    """A live share item as the sharing function stores it (what the access policy reads)."""
    table.put_item(
        Item={"PK": f"SESSION#{session_id}", "SK": f"SHARE#USER#{user}", "type": "share", "permission": permission}
    )


def test_a_session_without_a_deck_has_none_at_version_0(api: Api) -> None:
    session = api.create_session()
    result = api("GET", deck_path(session["session_id"]))
    assert result.status == 200 and result.headers["ETag"] == '"0"'
    assert result.body == {"session_id": session["session_id"], "slide_deck": None, "version": 0}


def test_a_deck_emptied_of_slides_is_still_a_deck(api: Api) -> None:
    sid = api.create_session()["session_id"]
    assert api("PUT", deck_path(sid), body={"slides": [{"slide_id": "only", "html": "<p>x</p>"}]}).status == 200
    assert api("DELETE", deck_path(sid, "only")).status == 204
    assert api("GET", deck_path(sid)).body["slide_deck"] == {"slides": [], "css": "", "scripts": [], "slide_count": 0}


def test_per_slide_scripts_are_kept_as_sent(api: Api) -> None:
    sid = api.create_session()["session_id"]
    deck = {"slides": [{"slide_id": "a", "html": "<p>a</p>", "scripts": "chart('a')"}, {"slide_id": "b", "html": "b"}]}
    assert api("PUT", deck_path(sid), body=deck).status == 200
    one = api("PUT", deck_path(sid, "c"), body={"html": "<p>c</p>", "scripts": "animate()"})
    assert one.status == 201 and one.body["slide"] == {"slide_id": "c", "html": "<p>c</p>", "scripts": "animate()"}
    slides = api("GET", deck_path(sid)).body["slide_deck"]["slides"]
    assert slides == [*deck["slides"], {"slide_id": "c", "html": "<p>c</p>", "scripts": "animate()"}]
    assert api("PUT", deck_path(sid, "d"), body={"html": "x", "scripts": ["not", "a string"]}).status == 422


def test_put_replaces_the_deck_and_get_returns_it_as_stored(api: Api, table: Any) -> None:
    session = api.create_session()
    path = deck_path(session["session_id"])
    # When a client stores a deck
    put = api("PUT", path, body=DECK, headers={"If-Match": '"0"'})
    # Then it is version 1, returned exactly as sent (HTML untouched), and the session was written to
    assert put.status == 200 and put.headers["ETag"] == '"1"'
    assert put.body["slide_deck"] == {**DECK, "slide_count": len(DECK["slides"])} and put.body["version"] == 1
    got = api("GET", path)
    assert got.body == put.body and got.headers["ETag"] == '"1"'
    assert api("GET", path, headers={"If-None-Match": '"1"'}).status == 304
    assert api("GET", f"{BASE}/{session['session_id']}").body["version"] == 2
    events = [item for item in all_items(table) if item["SK"].startswith("EVENT#")]
    assert [event["event_type"] for event in events if event["event_type"] == "slides_updated"] == ["slides_updated"]


def test_if_match_guards_every_deck_write(api: Api) -> None:
    session = api.create_session()
    path = deck_path(session["session_id"])
    api("PUT", path, body=DECK)
    # Given a client holding version 1 while someone else writes version 2
    assert api("PUT", deck_path(session["session_id"], "extra"), body={"html": "<p>x</p>"}).status == 201
    # Then its writes are refused with the current ETag, whatever the route
    for method, target, body in [
        ("PUT", path, DECK),
        ("PUT", deck_path(session["session_id"], "intro"), {"html": "<p>y</p>"}),
        ("DELETE", deck_path(session["session_id"], "intro"), None),
    ]:
        result = api(method, target, body=body, headers={"If-Match": '"1"'})
        assert result.status == 412 and result.problem["code"] == "precondition_failed"
        assert result.headers["ETag"] == '"2"'
    assert api("GET", path).body["version"] == 2


def test_one_slide_is_added_replaced_and_deleted(api: Api) -> None:
    session = api.create_session()
    sid = session["session_id"]
    api("PUT", deck_path(sid), body=DECK)
    added = api("PUT", deck_path(sid, "outro"), body={"html": "<h1>Thanks</h1>"})
    assert added.status == 201 and added.body["position"] == 2 and added.headers["ETag"] == '"2"'
    replaced = api("PUT", deck_path(sid, "intro"), body={"html": "<h1>New intro</h1>"}, headers={"If-Match": '"2"'})
    assert replaced.status == 200 and replaced.body["position"] == 0 and replaced.body["version"] == 3
    deleted = api("DELETE", deck_path(sid, "numbers"))
    assert deleted.status == 204 and deleted.headers["ETag"] == '"4"'
    deck = api("GET", deck_path(sid)).body["slide_deck"]
    assert [(slide["slide_id"], slide["html"]) for slide in deck["slides"]] == [
        ("intro", "<h1>New intro</h1>"),
        ("outro", "<h1>Thanks</h1>"),
    ]
    assert deck["css"] == DECK["css"] and deck["scripts"] == DECK["scripts"]
    missing = api("DELETE", deck_path(sid, "numbers"))
    assert missing.status == 404 and missing.problem["code"] == "slide_not_found"


@pytest.mark.parametrize(
    ("case", "body"),
    [
        ("duplicate ids", {"slides": [{"slide_id": "a", "html": "x"}, {"slide_id": "a", "html": "y"}]}),
        ("bad slide id", {"slides": [{"slide_id": "../etc", "html": "x"}]}),
        ("empty slide id", {"slides": [{"slide_id": "", "html": "x"}]}),
        ("too many slides", {"slides": [{"slide_id": f"s{i}", "html": ""} for i in range(501)]}),
        ("html too long", {"slides": [{"slide_id": "a", "html": "x" * 200_001}]}),
        ("unknown field", {"slides": [], "theme": "dark"}),
        ("unknown slide field", {"slides": [{"slide_id": "a", "html": "x", "notes": "n"}]}),
        ("html not a string", {"slides": [{"slide_id": "a", "html": 3}]}),
        ("control characters", {"slides": [{"slide_id": "a", "html": "x\u0000"}]}),
        ("scripts not text", {"slides": [], "scripts": [1]}),
        ("slides not a list", {"slides": {"a": "x"}}),
    ],
)
def test_a_bad_deck_is_422_and_stores_nothing(api: Api, table: Any, case: str, body: dict[str, Any]) -> None:
    session = api.create_session()
    before = all_items(table)
    result = api("PUT", deck_path(session["session_id"]), body=body)
    assert result.status == 422, case
    assert result.problem["code"] == "validation_error" and result.problem["errors"]
    assert all_items(table) == before and s3_keys() == []


def test_bad_single_slides_are_refused(api: Api, table: Any) -> None:
    session = api.create_session()
    sid = session["session_id"]
    api("PUT", deck_path(sid), body={"slides": [{"slide_id": f"s{i}", "html": ""} for i in range(500)]})
    before = all_items(table)
    full = api("PUT", deck_path(sid, "one-more"), body={"html": "<p>501st</p>"})
    assert full.status == 422 and full.problem["code"] == "validation_error"
    assert api("PUT", deck_path(sid, "bad id!"), body={"html": "x"}).status == 422
    assert api("PUT", deck_path(sid, "s1"), body={"html": "x", "extra": 1}).status == 422
    assert all_items(table) == before


def test_a_deck_larger_than_an_item_lives_in_s3_and_reads_back_the_same(api: Api, table: Any) -> None:
    session = api.create_session()
    sid = session["session_id"]
    big = {"slides": [{"slide_id": f"s{i}", "html": f"<p>{'x' * 40_000} é</p>"} for i in range(10)], "css": ""}
    # When a deck of ~800 KB is stored (the body limit is 1 MiB)
    put = api("PUT", deck_path(sid), body=big)
    assert put.status == 200
    # Then its item points at an object under the session's prefix, written before it
    item = table.get_item(Key={"PK": f"SESSION#{sid}", "SK": "DECK"})["Item"]
    assert "deck" not in item and re.fullmatch(
        rf"sessions/alice/{sid}/payloads/deck-1-w_\w{{26}}\.json", item["payload_key"]
    )
    assert s3_keys() == [item["payload_key"]]
    got = api("GET", deck_path(sid)).body
    assert got["slide_deck"]["slides"] == big["slides"] and got["version"] == 1
    # And one more slide writes a new object and removes the superseded one
    assert api("PUT", deck_path(sid, "s10"), body={"html": "<p>end</p>"}).status == 201
    (second,) = s3_keys()
    assert second.startswith(f"sessions/alice/{sid}/payloads/deck-2-")
    assert len(api("GET", deck_path(sid)).body["slide_deck"]["slides"]) == 11
    # And a small deck goes back into the item
    api("PUT", deck_path(sid), body=DECK)
    assert s3_keys() == [] and api("GET", deck_path(sid)).body["slide_deck"] == {**DECK, "slide_count": 2}


def test_a_deck_over_the_total_limit_is_413(api: Api) -> None:
    session = api.create_session()
    sid = session["session_id"]
    html = "x" * 190_000
    for index in range(22):
        assert api("PUT", deck_path(sid, f"s{index}"), body={"html": html}).status == 201
    result = api("PUT", deck_path(sid, "s22"), body={"html": html})
    assert result.status == 413 and result.problem["code"] == "payload_too_large"
    assert len(api("GET", deck_path(sid)).body["slide_deck"]["slides"]) == 22


def test_someone_elses_deck_is_404_and_a_viewer_cannot_write(api: Api, table: Any) -> None:
    session = api.create_session()
    sid = session["session_id"]
    api("PUT", deck_path(sid), body=DECK)
    for method, target, body in [
        ("GET", deck_path(sid), None),
        ("PUT", deck_path(sid), DECK),
        ("PUT", deck_path(sid, "intro"), {"html": "x"}),
        ("DELETE", deck_path(sid, "intro"), None),
    ]:
        result = api(method, target, body=body, user="mallory")
        assert result.status == 404 and result.problem["code"] == "session_not_found", (method, target)
    share(table, sid, "victor", "view")
    assert api("GET", deck_path(sid), user="victor").status == 200
    refused = api("PUT", deck_path(sid, "intro"), body={"html": "x"}, user="victor")
    assert refused.status == 403 and refused.problem["code"] == "session_not_accessible"
    share(table, sid, "eddie", "edit")
    edited = api("PUT", deck_path(sid, "intro"), body={"html": "<h1>by eddie</h1>"}, user="eddie")
    assert edited.status == 200 and edited.body["version"] == 2


def test_an_expired_session_takes_no_deck_writes(api: Api, table: Any) -> None:
    session = api.create_session()
    sid = session["session_id"]
    table.update_item(
        Key={"PK": f"SESSION#{sid}", "SK": "#SESSION"},
        UpdateExpression="SET #s = :e",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":e": "expired"},
    )
    result = api("PUT", deck_path(sid), body=DECK)
    assert result.status == 409 and result.problem["code"] == "session_expired"
    assert api("GET", deck_path(sid)).status == 200


def test_html_is_stored_as_given(api: Api) -> None:
    session = api.create_session()
    html = '<script>alert("x")</script><img src=x onerror="steal()"><p style="color:red">ü — €</p>'
    api("PUT", deck_path(session["session_id"]), body={"slides": [{"slide_id": "x", "html": html}]})
    raw = api("GET", deck_path(session["session_id"])).raw["body"]
    assert json.loads(raw)["slide_deck"]["slides"][0]["html"] == html


def test_request_counts(api: Api, ddb_calls: list[str]) -> None:
    session = api.create_session()
    sid = session["session_id"]
    ddb_calls.clear()
    api("GET", deck_path(sid))
    assert ddb_calls == ["BatchGetItem", "GetItem"], "access check, then the deck"
    ddb_calls.clear()
    api("PUT", deck_path(sid), body=DECK)
    assert ddb_calls == ["BatchGetItem", "TransactWriteItems"], "a whole deck needs no read of the old one"
    ddb_calls.clear()
    api("PUT", deck_path(sid, "intro"), body={"html": "x"})
    assert ddb_calls == ["BatchGetItem", "GetItem", "TransactWriteItems"]
