"""Per-user write rate limits (dal/rates.py): past the limit a write is `429 rate_limited` with Retry-After and
stores nothing; within it nobody notices. Every write route counts, through the one mechanism."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sessions_api import timeutil
from sessions_api.dal import keys
from sessions_api.settings import get_settings
from tests import access_matrix as matrix
from tests import support
from tests.conftest import all_items
from tests.integration.test_access_matrix import Baseline, in_process_world
from tests.support import Api

BASE = "/api/v1/sessions"
PARAMETERS = support.stack().template["Parameters"]
LIMIT = int(PARAMETERS["UserWritesPerSecond"]["Default"])
SESSION_LIMIT = int(PARAMETERS["SessionWritesPerSecond"]["Default"])


@pytest.fixture(autouse=True)
def template_limits(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The limits as deployed by default (the suite's other tests write faster, seeding big sessions)."""
    monkeypatch.setenv("USER_WRITES_PER_SECOND", str(LIMIT))
    monkeypatch.setenv("SESSION_WRITES_PER_SECOND", str(SESSION_LIMIT))
    get_settings.cache_clear()
    assert (get_settings().user_writes_per_second, get_settings().session_writes_per_second) == (LIMIT, SESSION_LIMIT)
    yield
    get_settings.cache_clear()


MULTIBYTE = "日本語のテキスト🙂"


class FrozenSecond:
    """`timeutil.now()` held inside one second (half past it), moved on only by the test."""

    def __init__(self) -> None:
        self.moment = datetime.now(UTC).replace(microsecond=500_000)

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)

    @property
    def epoch(self) -> int:
        return timeutil.epoch_seconds(self.moment)


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> FrozenSecond:
    clock = FrozenSecond()
    monkeypatch.setattr(timeutil, "now", lambda: clock.moment)
    return clock


def used(table: Any, user: str, second: int) -> int:
    item = table.get_item(Key=keys.rate_key(user, second), ConsistentRead=True).get("Item") or {}
    return int(item.get("writes", 0))


def stored_messages(table: Any, session_id: str) -> list[dict[str, Any]]:
    response = table.query(
        KeyConditionExpression="PK = :pk AND begins_with(SK, :msg)",
        ExpressionAttributeValues={":pk": keys.session_pk(session_id), ":msg": keys.MESSAGE_PREFIX},
        ConsistentRead=True,
    )
    return list(response["Items"])


def append(api: Api, session_id: str, count: int, text: str = "m") -> Any:
    if count == 1:
        return api("POST", f"{BASE}/{session_id}/messages", body={"role": "user", "content": text})
    batch = [{"role": "user", "content": f"{text}{n}"} for n in range(count)]
    return api("POST", f"{BASE}/{session_id}/messages", body={"messages": batch})


def fill(api: Api, table: Any, second: int, sessions: list[str], up_to: int) -> None:
    """Write to `sessions` in turn (batches of 25, then fewer) until the user has written `up_to` this second."""
    turn = 0
    while (left := up_to - used(table, "alice", second)) > 0:
        assert append(api, sessions[turn % len(sessions)], min(25, left)).status == 201
        turn += 1
    assert used(table, "alice", second) == up_to


def test_a_burst_past_the_users_limit_is_429_with_retry_after_and_stores_nothing(
    api: Api, table: Any, frozen: FrozenSecond
) -> None:
    # Given a user one write short of their limit this second, spread over two sessions (within theirs)
    sessions = [api.create_session()["session_id"] for _ in range(2)]
    fill(api, table, frozen.epoch, sessions, LIMIT - 1)
    target = sessions[1]
    # When a batch of two would pass the limit by one, it is refused whole; a single message reaches it
    over = append(api, target, 2, MULTIBYTE)
    assert over.status == 429 and over.problem["code"] == "rate_limited"
    assert over.headers["Retry-After"] == "1" and "for this user" in over.problem["detail"]
    assert used(table, "alice", frozen.epoch) == LIMIT - 1
    assert append(api, target, 1, MULTIBYTE).status == 201
    # Then one more, of any kind, is 429 and changes nothing: no message, no counter, no activity
    session_before = api("GET", f"{BASE}/{target}").body
    for refused in (append(api, target, 1, MULTIBYTE + "!"), api("PATCH", f"{BASE}/{target}", body={"title": "t"})):
        assert refused.status == 429 and refused.problem["code"] == "rate_limited", refused.body
        assert refused.headers["Retry-After"] == "1"
    assert used(table, "alice", frozen.epoch) == LIMIT
    messages = [message for session_id in sessions for message in stored_messages(table, session_id)]
    assert len(messages) == LIMIT - 2  # all the writes but the two creates
    assert [message["content"] for message in messages].count(MULTIBYTE) == 1
    assert api("GET", f"{BASE}/{target}").body == session_before
    # And the next second, writes go through again; the counter of the full second expires a minute on
    frozen.advance(1)
    assert append(api, target, 1).status == 201
    counter = table.get_item(Key=keys.rate_key("alice", frozen.epoch - 1))["Item"]
    assert counter["ttl"] == frozen.epoch - 1 + 60


def test_a_burst_on_one_session_past_its_limit_is_429_and_the_users_other_sessions_go_on(
    api: Api, table: Any, frozen: FrozenSecond
) -> None:
    # Given one session written to one short of the per-session limit this second
    busy = api.create_session()["session_id"]
    fill(api, table, frozen.epoch, [busy], SESSION_LIMIT - 1)
    # When a batch of two would pass it by one, it is refused whole, naming the session's limit
    over = append(api, busy, 2, MULTIBYTE)
    assert over.status == 429 and over.headers["Retry-After"] == "1"
    assert "to this session" in over.problem["detail"]
    # Then the user's other sessions still take writes (their own limit is not reached), and this one takes one
    other = api.create_session()["session_id"]
    assert append(api, other, 1).status == 201
    assert append(api, busy, 1, MULTIBYTE).status == 201
    assert append(api, busy, 1, MULTIBYTE).status == 429
    assert len(stored_messages(table, busy)) == SESSION_LIMIT - 1 and len(stored_messages(table, other)) == 1
    assert [message["content"] for message in stored_messages(table, busy)].count(MULTIBYTE) == 1


def test_a_large_message_counts_by_the_kb_it_stores(api: Api, table: Any, frozen: FrozenSecond) -> None:
    # Given a message of 9,000 bytes of three-byte characters: with its item's other attributes, 10 started KB
    session_id = api.create_session()["session_id"]
    large = "日" * 3_000
    assert append(api, session_id, 1, large).status == 201
    assert used(table, "alice", frozen.epoch) == 1 + 10
    # When the user has 9 writes left this second, it is refused and nothing stored; with 10 left it lands
    frozen.advance(1)
    table.put_item(Item={**keys.rate_key("alice", frozen.epoch), "writes": LIMIT - 9})
    refused = append(api, session_id, 1, large + "!")
    assert refused.status == 429 and refused.problem["code"] == "rate_limited"
    assert len(stored_messages(table, session_id)) == 1
    table.put_item(Item={**keys.rate_key("alice", frozen.epoch), "writes": LIMIT - 10})
    assert append(api, session_id, 1, large + "!").status == 201
    assert used(table, "alice", frozen.epoch) == LIMIT
    assert [message["content"] for message in stored_messages(table, session_id)] == [large, large + "!"]


def test_one_users_limit_is_theirs_alone(api: Api, table: Any, frozen: FrozenSecond) -> None:
    # Given alice at her limit this second
    table.put_item(Item={**keys.rate_key("alice", frozen.epoch), "writes": LIMIT})
    assert api("POST", BASE, body={}, user="alice").status == 429
    # Then bob, writing in the same second, is not limited by her
    assert api("POST", BASE, body={}, user="bob").status == 201
    assert used(table, "bob", frozen.epoch) == 1


def test_a_busy_user_within_the_limit_never_sees_a_429(api: Api, table: Any, frozen: FrozenSecond) -> None:
    # Given an integration writing 100 messages a second (the automated user of docs/capacity.md): ten
    # concurrent writers on ten sessions, ten writes each per second, for five seconds
    sessions = [api.create_session()["session_id"] for _ in range(10)]
    statuses: list[int] = []
    lock = threading.Lock()

    def writer(session_id: str) -> None:
        for _ in range(10):
            status = append(api, session_id, 1).status
            with lock:
                statuses.append(status)

    for _ in range(5):
        frozen.advance(1)
        threads = [threading.Thread(target=writer, args=(session_id,)) for session_id in sessions]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert used(table, "alice", frozen.epoch) == 100
    # Then every write landed and was stored
    assert statuses == [201] * 500
    assert [len(stored_messages(table, session_id)) for session_id in sessions] == [50] * 10


# -- every write route, through the one mechanism -----------------------------------------------------------

# Writes that only take away what the user already has (their number is bounded by it), and the jobs one at a
# time per user: no key of the user's can run hot through them.
UNLIMITED = {
    ("POST", f"{BASE}/cleanup"),
    ("DELETE", f"{BASE}/{{session_id}}"),
    ("POST", "/api/v1/me/export"),
    ("DELETE", "/api/v1/me"),
}
WRITE_CASES = [
    row
    for row in matrix.ROUTES
    if row.method != "GET" and row.may(matrix.OWNER) and row.expected(matrix.OWNER)[0] < 300
]


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[matrix.World, Baseline]]:
    with in_process_world() as built:
        yield built


@pytest.mark.parametrize("row", WRITE_CASES, ids=[row.name for row in WRITE_CASES])
def test_every_write_route_counts_toward_the_callers_limit(
    world: tuple[matrix.World, Baseline], row: matrix.Row, monkeypatch: pytest.MonkeyPatch
) -> None:
    the_world, baseline = world
    baseline.restore()
    baseline.dirty = True
    if row.prepare:
        row.prepare(the_world)
    # Given the owner at their limit this second
    clock = FrozenSecond()
    monkeypatch.setattr(timeutil, "now", lambda: clock.moment)
    owner = the_world.users[matrix.OWNER]
    counter = keys.rate_key(owner, clock.epoch)
    the_world.table.put_item(Item={**counter, "writes": LIMIT})
    before = [item for item in all_items(the_world.table) if (item["PK"], item["SK"]) != tuple(counter.values())]
    # When they call the route
    reply = the_world.call(
        matrix.OWNER,
        row.method,
        the_world.path(row.path),
        body=row.body(the_world) if row.body else None,
        query=row.query(the_world) if row.query else None,
    )
    # Then a write route is refused with 429 and the table is as it was; the unlimited ones answer as ever
    if row.route in UNLIMITED:
        assert reply.status == row.expected(matrix.OWNER)[0], reply.text
        return
    assert (reply.status, (reply.body or {}).get("code")) == (429, "rate_limited"), reply.text
    after = [item for item in all_items(the_world.table) if (item["PK"], item["SK"]) != tuple(counter.values())]
    assert after == before
    assert used(the_world.table, owner, clock.epoch) == LIMIT
