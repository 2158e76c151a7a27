"""POST /sessions/{id}/fork: a new session of the caller's with the messages up to one of them, the deck and
the settings, visible only once complete, and nothing left behind by a fork that never completes."""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

import boto3
import pytest

from sessions_api import timeutil
from sessions_api.dal import clients, items, keys
from sessions_api.dal.fork_repo import ForkRepo
from sessions_api.identity import Caller
from sessions_api.logic.expiry import Expiry
from sessions_api.logic.forks import PUBLISH_MARGIN_MS
from sessions_api.logic.sessions import Sessions
from sessions_api.models.api import CreateSessionIn
from sessions_api.settings import get_settings
from tests import lifecycle_support, support
from tests.conftest import all_items
from tests.lifecycle_support import BASE, Clock, assert_counters_exact, counters, partition, session_item
from tests.support import Api, Result

clock = lifecycle_support.clock

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is a tide?", "token_count": 7},
    {"role": "assistant", "content": "The sea rising and falling.", "token_count": 11, "model_id": "m1"},
    {"role": "user", "content": "Why?", "token_count": 3},
    {"role": "assistant", "content": "The moon.", "token_count": 5, "is_error": True, "response_time_ms": 40},
]
DECK = {"slides": [{"slide_id": "s1", "html": "<h1>Tides</h1>"}], "css": "h1{}"}


def seeded(api: Api, user: str = "alice", messages: list[dict[str, Any]] = MESSAGES, **body: Any) -> dict[str, Any]:
    """A session with settings of its own and `messages` appended (in batches, as a client would)."""
    session = api.create_session(
        user=user,
        title="Tides",
        session_type="research",
        agent_name="oracle",
        model_id="m1",
        metadata={"topic": "sea"},
        preferences={"tone": "dry"},
        budget={"max_tokens": 5000},
        idle_timeout_minutes=90,
        **body,
    )
    for start in range(0, len(messages), 25):
        batch = {"messages": messages[start : start + 25]}
        appended = api("POST", f"{BASE}/{session['session_id']}/messages", body=batch, user=user)
        assert appended.status == 201, appended.body
    return session


def messages_of(api: Api, session_id: str, user: str = "alice") -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        page = api("GET", f"{BASE}/{session_id}/messages", query=query, user=user)
        assert page.status == 200, page.body
        found += page.body["messages"]
        cursor = page.body["next_cursor"]
        if cursor is None:
            return found


def fork(api: Api, session_id: str, user: str = "alice", *, seconds: float | None = None, **body: Any) -> Result:
    """The fork request, in an invocation with `seconds` left (the test context's constant 10 s by default)."""
    logical_id, event = support.http_event("POST", f"{BASE}/{session_id}/fork", body=body, user=user)
    if seconds is None:
        return api.invoke(logical_id, event)
    module = support.load_function(logical_id)
    raw = module.lambda_handler(event, support.LambdaContext(function_name=logical_id, timeout_seconds=seconds))
    return Result(raw["statusCode"], raw.get("headers") or {}, json.loads(raw["body"]), raw)


def run_schedule() -> None:
    report = Expiry(get_settings()).run(lambda: 60_000)
    assert report.errors == 0, report


def bucket_keys(prefix: str) -> list[str]:
    found = boto3.client("s3").list_object_versions(Bucket=os.environ["BUCKET_NAME"], Prefix=prefix)
    return [entry["Key"] for entry in [*found.get("Versions", []), *found.get("DeleteMarkers", [])]]


def comparable(message: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in message.items() if name not in {"session_id", "request_id"}}


def listed(api: Api, user: str) -> list[str]:
    return [session["session_id"] for session in api("GET", BASE, user=user).body["sessions"]]


# -- what a fork takes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("at", [0, 2, 4, None], ids=["first", "middle", "last", "all"])
def test_a_fork_takes_the_messages_up_to_and_including_the_one_named(api: Api, table: Any, at: int | None) -> None:
    # Given a session of five messages with settings of its own
    source = seeded(api)
    source_id = source["session_id"]
    originals = messages_of(api, source_id)
    # When it is forked at a message (or whole)
    body = {} if at is None else {"from_message_id": originals[at]["message_id"]}
    forked = fork(api, source_id, **body)
    # Then a new session of the caller's holds exactly the messages up to it, same ids, contents and times
    assert forked.status == 201, forked.body
    fork_id = forked.body["session_id"]
    assert fork_id != source_id
    assert forked.headers["Location"] == f"{BASE}/{fork_id}"
    assert forked.headers["ETag"] == f'"{forked.body["version"]}"'
    taken = originals[: (len(originals) if at is None else at + 1)]
    copies = messages_of(api, fork_id)
    assert [comparable(message) for message in copies] == [comparable(message) for message in taken]
    assert all(message["session_id"] == fork_id for message in copies)
    # And it keeps the source's settings, says where it came from, and starts its own life
    session = api("GET", f"{BASE}/{fork_id}").body
    assert session == forked.body
    for name in ("title", "session_type", "agent_name", "model_id", "metadata", "preferences", "budget"):
        assert session[name] == source[name], name
    assert session["forked_from"] == {"session_id": source_id, "message_id": taken[-1]["message_id"]}
    assert session["created_by"] == "alice" and session["status"] == "active" and session["version"] == 1
    assert session["created_at"] > source["created_at"]
    assert session["expires_at"] == timeutil.iso(timeutil.plus(timeutil.parse(session["last_activity_at"]), minutes=90))
    # And its counters are what its messages add up to, as appends would have made them
    users = [message for message in taken if message["role"] == "user"]
    assistants = [message for message in taken if message["role"] == "assistant"]
    assert session["message_count"] == len(taken) and session["turn_count"] == len(users)
    assert session["last_message_preview"] == taken[-1]["content"]
    input_tokens = sum(message["token_count"] or 0 for message in taken if message["role"] != "assistant")
    output_tokens = sum(message["token_count"] or 0 for message in assistants)
    assert session["token_usage"] == {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "cost_usd": 0.0,
    }
    metrics = api("GET", f"{BASE}/{fork_id}/metrics").body
    assert metrics["message_counts"] == {
        "user": len(users),
        "assistant": len(assistants),
        "system": len(taken) - len(users) - len(assistants),
        "total": len(taken),
    }
    assert metrics["error_count"] == sum(1 for message in taken if message["is_error"])
    # And the source is as it was, both are listed, and the counters are exact
    assert api("GET", f"{BASE}/{source_id}").body["message_count"] == len(originals)
    assert messages_of(api, source_id) == originals
    assert set(listed(api, "alice")) == {source_id, fork_id}
    assert_counters_exact(table, "alice")
    # And a message added to the fork does not reach the source, nor the other way round
    api("POST", f"{BASE}/{fork_id}/messages", body={"role": "user", "content": "only in the fork"})
    api("POST", f"{BASE}/{source_id}/messages", body={"role": "user", "content": "only in the source"})
    assert [m["content"] for m in messages_of(api, fork_id)][-1] == "only in the fork"
    assert "only in the fork" not in [m["content"] for m in messages_of(api, source_id)]


def test_a_fork_of_a_session_without_messages_is_empty_and_says_so(api: Api) -> None:
    source_id = api.create_session(title="Empty")["session_id"]
    forked = fork(api, source_id)
    assert forked.status == 201, forked.body
    assert forked.body["message_count"] == 0 and forked.body["last_message_preview"] is None
    assert forked.body["forked_from"] == {"session_id": source_id, "message_id": None}


@pytest.mark.parametrize("title", [None, "Tides, take two"], ids=["kept", "given"])
def test_a_fork_is_titled_as_asked_or_as_its_source(api: Api, title: str | None) -> None:
    source_id = seeded(api)["session_id"]
    forked = fork(api, source_id, **({"title": title} if title else {}))
    assert forked.status == 201, forked.body
    assert forked.body["title"] == (title or "Tides")
    found = api("GET", BASE, query={"search": (title or "Tides").lower()}).body["sessions"]
    assert forked.body["session_id"] in [session["session_id"] for session in found]


def test_runs_shares_comments_exports_and_results_stay_with_the_source(api: Api, table: Any) -> None:
    # Given a session with a chat's run, a share, a comment, an export and results
    source_id = seeded(api)["session_id"]
    chat = api("POST", f"{BASE}/{source_id}/chat", body={"message": "hello"})
    assert chat.status == 200, chat.body
    api("POST", f"{BASE}/{source_id}/share", body={"recipients": ["bob"], "permissions": "view"})
    api("POST", f"{BASE}/{source_id}/comments", body={"content": "a note", "comment_type": "note"})
    assert api("POST", f"{BASE}/{source_id}/export", body={"format": "markdown"}).status == 201
    api("PUT", f"{BASE}/{source_id}/results", body={"summary": "found it"})
    # When it is forked
    fork_id = fork(api, source_id).body["session_id"]
    # Then the fork holds its messages (with no run ids), its own history event, and nothing else of the source's
    kinds = sorted({item["type"] for item in partition(table, fork_id)})
    assert kinds == ["event", "message", "session"]
    assert all("request_id" not in item for item in partition(table, fork_id))
    assert len(messages_of(api, fork_id)) == len(MESSAGES) + 2
    assert api("GET", f"{BASE}/{fork_id}/comments").body["comments"] == []
    assert api("GET", f"{BASE}/{fork_id}/exports").body["exports"] == []
    assert api("GET", f"{BASE}/{fork_id}/runs").body["runs"] == []
    assert api("GET", f"{BASE}/{fork_id}/shares").body["shares"] == []
    assert api("GET", f"{BASE}/{fork_id}", user="bob").status == 404
    assert api("GET", f"{BASE}/{fork_id}/results").body["stored_at"] is None


def test_the_history_of_both_says_so(api: Api) -> None:
    source_id = seeded(api)["session_id"]
    fork_id = fork(api, source_id).body["session_id"]
    mine = api("GET", f"{BASE}/{fork_id}/history").body["timeline"]
    assert [event["type"] for event in mine] == ["forked"]
    last = messages_of(api, source_id)[-1]["message_id"]
    details = {"message_id": last, "message_count": len(MESSAGES)}
    assert mine[0]["details"] == {"from_session_id": source_id, **details} and mine[0]["actor"] == "alice"
    theirs = api("GET", f"{BASE}/{source_id}/history", query={"order": "desc"}).body["timeline"][0]
    assert theirs["type"] == "forked" and theirs["details"] == {"to_session_id": fork_id, **details}


# -- who may fork ---------------------------------------------------------------------------------------


def test_a_view_sharee_forks_into_a_session_of_their_own(api: Api, table: Any) -> None:
    # Given alice's session shared with bob for viewing
    source_id = seeded(api)["session_id"]
    shared = api("POST", f"{BASE}/{source_id}/share", body={"recipients": ["bob"], "permissions": "view"})
    assert shared.status == 201
    alice_before = counters(table, "alice")
    # When bob forks it
    forked = fork(api, source_id, user="bob")
    # Then the fork is bob's: listed and counted as his, out of alice's sight, with its own copies
    assert forked.status == 201, forked.body
    fork_id = forked.body["session_id"]
    assert forked.body["created_by"] == "bob"
    assert listed(api, "bob") == [fork_id]
    assert fork_id not in listed(api, "alice")
    assert api("GET", f"{BASE}/{fork_id}", user="alice").status == 404
    assert counters(table, "alice") == alice_before
    assert counters(table, "bob")["open_count"] == 1
    assert_counters_exact(table, "alice")
    assert_counters_exact(table, "bob")
    # And bob may write to it, though he may only view the source
    assert api("POST", f"{BASE}/{fork_id}/messages", body={"role": "user", "content": "mine"}, user="bob").status == 201
    refused = api("POST", f"{BASE}/{source_id}/messages", body={"role": "user", "content": "x"}, user="bob")
    assert refused.status == 403
    # And alice's history names bob's fork, signed for bob's erasure
    event = api("GET", f"{BASE}/{source_id}/history", query={"order": "desc"}).body["timeline"][0]
    assert event["type"] == "forked" and event["actor"] == "bob"
    assert any(item["SK"].startswith(keys.AUTHORED_PREFIX) for item in all_items(table) if item["PK"] == "USER#bob")


def test_a_stranger_gets_404_and_nothing_is_stored(api: Api, table: Any) -> None:
    source_id = seeded(api)["session_id"]
    before = all_items(table)
    refused = fork(api, source_id, user="mallory")
    assert refused.status == 404 and refused.problem["code"] == "session_not_found"
    assert "Tides" not in str(refused.body)
    assert all_items(table) == before


def test_an_unknown_message_is_404_and_nothing_is_stored(api: Api, table: Any) -> None:
    source_id = seeded(api)["session_id"]
    before = all_items(table)
    unknown = fork(api, source_id, from_message_id="msg_01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert unknown.status == 404 and unknown.problem["code"] == "message_not_found"
    malformed = fork(api, source_id, from_message_id="not-a-message")
    assert malformed.status == 422 and malformed.problem["code"] == "validation_error"
    extra = fork(api, source_id, shares=True)
    assert extra.status == 422
    assert all_items(table) == before


def test_the_quota_refuses_a_fork_with_nothing_visible(api: Api, table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_ACTIVE_SESSIONS", "2")
    get_settings.cache_clear()
    app = support.load_function("SessionsFunction")
    app.sessions.cache_clear(), app.forks.cache_clear()
    try:
        # Given alice at her quota of open sessions
        source_id = seeded(api)["session_id"]
        second = api.create_session()["session_id"]
        before = all_items(table)
        # When she forks, Then 429 like a create, and nothing was written
        over = fork(api, source_id)
        assert over.status == 429 and over.problem["code"] == "session_quota_exceeded"
        assert all_items(table) == before
        # And when another session takes the last place while the fork copies, the fork is refused at the end
        api("DELETE", f"{BASE}/{second}")
        original, raced = ForkRepo.write_items, []

        def racing(self: ForkRepo, items: list[dict[str, Any]]) -> None:
            original(self, items)
            if not raced:
                raced.append(Sessions(get_settings()).create(Caller("alice"), CreateSessionIn()))

        monkeypatch.setattr(ForkRepo, "write_items", racing)
        late = fork(api, source_id)
        assert late.status == 429 and late.problem["code"] == "session_quota_exceeded"
        assert len(listed(api, "alice")) == 2
        assert_counters_exact(table, "alice")
        run_schedule()  # the refused fork was due at once: purged with what it had copied
        assert not [item for item in all_items(table) if item.get("forking")]
    finally:
        monkeypatch.delenv("MAX_ACTIVE_SESSIONS")
        get_settings.cache_clear()
        app.sessions.cache_clear(), app.forks.cache_clear()


# -- decks and large contents -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", ["small", "large"])
def test_the_deck_is_copied(api: Api, table: Any, size: str) -> None:
    # Given a session with a deck (a large one lives in S3), at version 2
    source_id = seeded(api)["session_id"]
    deck = DECK
    if size == "large":
        deck = {"slides": [{"slide_id": f"s{i}", "html": f"<p>{'x' * 40_000}</p>"} for i in range(10)], "css": ""}
    assert api("PUT", f"{BASE}/{source_id}/slides", body=DECK).status == 200
    assert api("PUT", f"{BASE}/{source_id}/slides", body=deck).status == 200
    # When it is forked
    fork_id = fork(api, source_id).body["session_id"]
    # Then the fork has the same deck at the same version, its own copy
    source_deck = api("GET", f"{BASE}/{source_id}/slides").body
    fork_deck = api("GET", f"{BASE}/{fork_id}/slides").body
    assert fork_deck == {**source_deck, "session_id": fork_id} and fork_deck["version"] == 2
    assert api("GET", f"{BASE}/{fork_id}").body["has_slide_deck"] is True
    stored = session_item(table, fork_id)
    assert stored is not None and stored["deck_version"] == 2
    if size == "large":
        assert stored["deck_payload_key"].startswith(keys.s3_session_prefix("alice", fork_id) + "payloads/deck-2-")
        assert bucket_keys(keys.s3_session_prefix("alice", fork_id)) == [stored["deck_payload_key"]]
    # And changing either deck leaves the other as it was
    assert api("PUT", f"{BASE}/{fork_id}/slides", body=DECK).status == 200
    assert api("GET", f"{BASE}/{source_id}/slides").body == source_deck


def test_large_messages_are_copied_and_outlive_the_purged_source(api: Api, table: Any) -> None:
    # Given alice's session with a message too large for its item, shared with bob
    large = "é" * 70_000
    source_id = seeded(api, messages=[*MESSAGES, {"role": "user", "content": large}])["session_id"]
    api("POST", f"{BASE}/{source_id}/share", body={"recipients": ["bob"], "permissions": "view"})
    # When bob forks it, and alice deletes the source and the schedule purges it
    fork_id = fork(api, source_id, user="bob").body["session_id"]
    assert bucket_keys(keys.s3_session_prefix("bob", fork_id)) != []
    assert api("DELETE", f"{BASE}/{source_id}").status == 204
    run_schedule()
    assert partition(table, source_id) == []
    assert bucket_keys(keys.s3_session_prefix("alice", source_id)) == []
    # Then bob's fork still reads in full
    copies = messages_of(api, fork_id, user="bob")
    assert copies[-1]["content"] == large and len(copies) == len(MESSAGES) + 1
    one = api("GET", f"{BASE}/{fork_id}/messages/{copies[-1]['message_id']}", user="bob").body
    assert one["content"] == large
    assert api("GET", f"{BASE}/{fork_id}", user="bob").body["last_message_preview"].startswith("éé")


# -- crashes, replays, size --------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["the request fails", "the invocation dies"])
def test_a_fork_that_never_completes_is_never_seen_and_the_schedule_removes_it(
    api: Api, table: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    # Given a session of 1,200 messages, one of them in S3
    many = [{"role": "user", "content": f"message {n}"} for n in range(1_200)]
    source_id = seeded(api, messages=[{"role": "user", "content": "x" * 70_000}, *many])["session_id"]
    before = counters(table, "alice")
    # When the fork fails after some batches (and, when the invocation dies, nothing runs after that)
    original, calls = ForkRepo.write_items, {"n": 0}

    def failing(self: ForkRepo, items: list[dict[str, Any]]) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("the invocation died here")
        original(self, items)

    monkeypatch.setattr(ForkRepo, "write_items", failing)
    if how == "the invocation dies":
        monkeypatch.setattr(ForkRepo, "abandon", lambda *_: None)
    assert fork(api, source_id).status == 500
    # Then nothing of it is listed, counted or readable, though some of it was written
    (unpublished,) = [item for item in all_items(table) if item.get("forking")]
    fork_id = unpublished["session_id"]
    assert len(partition(table, fork_id)) > 500
    assert bucket_keys(keys.s3_session_prefix("alice", fork_id)) != []
    assert listed(api, "alice") == [source_id]
    assert counters(table, "alice") == before
    for path in ("", "/messages", "/history", "/slides"):
        assert api("GET", f"{BASE}/{fork_id}{path}").status == 404, path
    # And once the schedule runs past its due time, no item or object of it remains
    if how == "the invocation dies":
        run_schedule()
        assert session_item(table, fork_id) is not None, "not due before any request could have ended"
        clock.advance(minutes=16)
    run_schedule()
    assert partition(table, fork_id) == []
    assert bucket_keys(keys.s3_session_prefix("alice", fork_id)) == []
    assert len(messages_of(api, source_id)) == 1_201
    assert_counters_exact(table, "alice")


def test_an_idempotency_key_replays_the_same_fork(api: Api, table: Any) -> None:
    source_id = seeded(api)["session_id"]
    headers = {"Idempotency-Key": "fork-once"}
    path = f"{BASE}/{source_id}/fork"
    first = api("POST", path, body={"title": "Again"}, headers=headers)
    again = api("POST", path, body={"title": "Again"}, headers=headers)
    assert first.status == again.status == 201 and again.body == first.body
    assert len(listed(api, "alice")) == 2
    assert api("POST", path, body={"title": "Other"}, headers=headers).status == 409
    # The record goes with the fork: deleted and purged, a replay finds nothing, and no record is left
    fork_id = first.body["session_id"]
    assert api("DELETE", f"{BASE}/{fork_id}").status == 204
    assert api("POST", path, body={"title": "Again"}, headers=headers).status == 404
    run_schedule()
    assert not [item for item in all_items(table) if "IDEMPOTENCY" in item["PK"] + item["SK"]]


LONG = 2_600  # benchmarks/forks.py forks 10,000: moto takes minutes over that, DynamoDB about 2 s


def test_a_long_fork_costs_a_batch_per_25_messages_and_a_query_per_500(
    api: Api, table: Any, no_chat_worker: None
) -> None:
    # Given a long session (stored as appends store them, written straight to the table for speed)
    source_id = api.create_session(title="Long")["session_id"]
    at = timeutil.now_iso()
    with table.batch_writer() as batch:
        for n in range(LONG):
            role = "user" if n % 2 == 0 else "assistant"
            batch.put_item(Item=items.new_message(source_id, role=role, content=f"message {n}", at=at, token_count=2))
    # When it is forked (an invocation with the SessionsFunction's 29 s)
    requests: Counter[str] = Counter()
    clients.dynamodb().meta.events.register("before-call.dynamodb", lambda model, **_: requests.update([model.name]))
    forked = fork(api, source_id, seconds=29)
    # Then the fork holds all of them, counted
    assert forked.status == 201, forked.body
    fork_id = forked.body["session_id"]
    assert forked.body["message_count"] == LONG and forked.body["turn_count"] == LONG // 2
    assert forked.body["token_usage"]["total_tokens"] == 2 * LONG
    assert forked.body["last_message_preview"] == f"message {LONG - 1}"
    stored = [item for item in partition(table, fork_id) if item["SK"].startswith(keys.MESSAGE_PREFIX)]
    assert len(stored) == LONG
    # And it cost one BatchWriteItem per 25 messages, one Query per 500, and a handful of requests besides:
    # access (BatchGetItem), quota and deck (GetItem ×2), the tombstone with the write-rate counter and the
    # publishing (TransactWriteItems ×2)
    assert requests == {
        "BatchWriteItem": LONG // 25,
        "Query": LONG // 500 + 1,
        "BatchGetItem": 1,
        "GetItem": 2,
        "TransactWriteItems": 2,
    }


def test_a_copy_that_would_outrun_the_invocation_is_refused_and_removed(api: Api, table: Any) -> None:
    # Given an invocation with no time left for copying (the publishing transaction's margin only)
    source_id = seeded(api)["session_id"]
    refused = fork(api, source_id, seconds=PUBLISH_MARGIN_MS / 1000)
    # Then the fork is refused, never seen, and the next scheduled run removes what it began
    assert refused.status == 413 and refused.problem["code"] == "payload_too_large"
    assert listed(api, "alice") == [source_id]
    assert [item for item in all_items(table) if item.get("forking")] != []
    run_schedule()
    assert [item for item in all_items(table) if item.get("forking")] == []
    assert_counters_exact(table, "alice")
