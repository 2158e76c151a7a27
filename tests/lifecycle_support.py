"""Helpers for the lifecycle and expiry tests: a movable clock, serialized moto, sessions put in a status."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from moto.core.botocore_stubber import BotocoreStubber

from sessions_api import timeutil
from sessions_api.dal import keys
from sessions_api.dal.sessions_repo import status_counter, status_deltas
from sessions_api.models.entities import OPEN_STATUSES, Status, plain
from sessions_api.settings import get_settings
from tests.conftest import all_items

BASE = "/api/v1/sessions"


@dataclass
class Clock:
    """`timeutil.now()` as the code sees it: the real time plus an offset the test moves forward."""

    offset: timedelta = timedelta()

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moving = Clock()
    monkeypatch.setattr(timeutil, "now", lambda: datetime.now(UTC) + moving.offset)
    return moving


@pytest.fixture
def serialized_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """DynamoDB applies each request atomically; moto does not lock, so threads could interleave inside one
    of its transactions. One lock around each mocked request restores DynamoDB's atomicity (coarser than
    DynamoDB's per-item isolation, which only makes the races the tests look at between requests)."""
    lock = threading.Lock()
    original: Callable[..., Any] = BotocoreStubber.__call__

    def locked(self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, event_name, request, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", locked)
    yield


def session_item(table: Any, session_id: str) -> dict[str, Any] | None:
    item = table.get_item(Key=keys.session_key(session_id), ConsistentRead=True).get("Item")
    return plain(item) if item else None


def counters(table: Any, user: str) -> dict[str, int]:
    item = table.get_item(Key=keys.counters_key(user), ConsistentRead=True).get("Item") or {}
    return {name: int(value) for name, value in plain(item).items() if isinstance(value, int | float)}


def expected_counters(table: Any, user: str) -> dict[str, int]:
    """The counters as they must be: every visible session of `user`, counted by status."""
    sessions = [
        plain(item)
        for item in all_items(table)
        if item["SK"] == keys.SESSION_SK and item["created_by"] == user and not item.get("deleted_at")
    ]
    expected = {"total": len(sessions), "open_count": sum(1 for s in sessions if s["status"] in OPEN_STATUSES)}
    for status in Status:
        expected[status_counter(status)] = sum(1 for s in sessions if s["status"] == status)
    return expected


def assert_counters_exact(table: Any, user: str) -> None:
    stored = counters(table, user)
    for name, value in expected_counters(table, user).items():
        assert stored.get(name, 0) == value, (name, stored, expected_counters(table, user))


def force_status(table: Any, session_id: str, status: Status, *, paused_from: Status | None = None) -> None:
    """Put a session in `status` as the system would have (index keys and counters included): the API
    has no way into `queued`, `initializing` or `running`, which workers set."""
    item = session_item(table, session_id)
    assert item is not None
    owner = item["created_by"]
    names = {"#s": "status"}
    values: dict[str, Any] = {":s": str(status)}
    sets, removes = ["#s = :s"], ["paused_from"]
    if status is Status.ACTIVE:
        sets.append("GSI2PK = :g2")
        values[":g2"] = keys.active_gsi2pk(owner)
        sets.append("GSI2SK = :g2sk")
        values[":g2sk"] = keys.activity_sk(item["last_activity_at"], session_id)
    else:
        removes += ["GSI2PK", "GSI2SK"]
    if status in OPEN_STATUSES:
        sets.append("GSI3PK = :g3")
        values[":g3"] = keys.due_gsi3pk(keys.due_shard(session_id, get_settings().due_shards))
    else:
        removes += ["GSI3PK", "GSI3SK"]
    if paused_from is not None:
        removes.remove("paused_from")
        sets.append("paused_from = :pf")
        values[":pf"] = str(paused_from)
    table.update_item(
        Key=keys.session_key(session_id),
        UpdateExpression=f"SET {', '.join(sets)} REMOVE {', '.join(removes)}",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )
    deltas = status_deltas(item["status"], status)
    if deltas:
        table.update_item(
            Key=keys.counters_key(owner),
            UpdateExpression="ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(deltas))),
            ExpressionAttributeNames={f"#c{i}": name for i, name in enumerate(deltas)},
            ExpressionAttributeValues={f":c{i}": delta for i, delta in enumerate(deltas.values())},
        )


def partition(table: Any, session_id: str) -> list[dict[str, Any]]:
    items, request = [], {"KeyConditionExpression": "PK = :pk", "ConsistentRead": True}
    request["ExpressionAttributeValues"] = {":pk": keys.session_pk(session_id)}
    while True:
        page = table.query(**request)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
