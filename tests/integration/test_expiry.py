"""The scheduled expiry and purge (functions/expiry): Given / When / Then, in-process with moto."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from sessions_api import timeutil
from sessions_api.dal import clients, keys
from sessions_api.dal.purge_repo import PurgeRepo
from sessions_api.dal.sessions_repo import status_deltas
from sessions_api.logic.expiry import Expiry, RunReport
from sessions_api.settings import get_settings
from tests import lifecycle_support, support
from tests.lifecycle_support import (
    BASE,
    Clock,
    assert_counters_exact,
    counters,
    partition,
    session_item,
)
from tests.support import Api

PLENTY: Callable[[], int] = lambda: 60_000  # noqa: E731 - a LambdaContext's clock with time to spare

# Fixtures of tests/lifecycle_support.py used here.
clock = lifecycle_support.clock
serialized_aws = lifecycle_support.serialized_aws


class ScheduledContext(support.LambdaContext):
    """An invocation of the expiry function with a minute left (its timeout is two)."""

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def run(remaining_ms: Callable[[], int] = PLENTY) -> RunReport:
    return Expiry(get_settings()).run(remaining_ms)


def bucket() -> str:
    return os.environ["BUCKET_NAME"]


def object_versions(prefix: str) -> list[dict[str, Any]]:
    found = boto3.client("s3").list_object_versions(Bucket=bucket(), Prefix=prefix)
    return [*found.get("Versions", []), *found.get("DeleteMarkers", [])]


def idle_session(api: Api, user: str = "alice", **body: Any) -> str:
    return api.create_session(user=user, idle_timeout_minutes=1, **body)["session_id"]


# -- expiry ---------------------------------------------------------------------------------------------


def test_an_idle_session_expires_and_stays_readable(api: Api, table: Any, clock: Clock) -> None:
    # Given a session idle for longer than its timeout, and one that is not
    idle = idle_session(api, prompt="hello")
    busy = api.create_session()["session_id"]
    clock.advance(minutes=2)
    # When the scheduled run comes
    report = run()
    # Then only the idle one is expired, in one transaction with its counters, index keys and history
    assert report.expired == 1 and report.errors == 0
    session = api("GET", f"{BASE}/{idle}").body
    assert session["status"] == "expired" and session["is_active"] is False
    assert api("GET", f"{BASE}/{busy}").body["status"] == "active"
    stored = session_item(table, idle)
    assert "GSI2PK" not in stored
    purge_at = timeutil.epoch_seconds(timeutil.plus(timeutil.now(), days=get_settings().expired_retention_days))
    assert abs(stored["GSI3SK"] - purge_at) <= 5
    assert stored["ttl"] - stored["GSI3SK"] == 24 * 3600
    assert api("GET", f"{BASE}/continue").body["session_id"] == busy
    history = api("GET", f"{BASE}/{idle}/history", query={"order": "desc"}).body["timeline"]
    assert history[0]["type"] == "expired" and history[0]["actor"] == "system"
    assert history[0]["details"]["from"] == "active"
    assert_counters_exact(table, "alice")
    # And it takes no more writes: 409 session_expired
    assert api("PATCH", f"{BASE}/{idle}", body={"title": "x"}).problem["code"] == "session_expired"
    message = api("POST", f"{BASE}/{idle}/messages", body={"role": "user", "content": "late"})
    assert message.problem["code"] == "session_expired"
    # And a second run changes nothing
    assert run().expired == 0


@pytest.mark.parametrize("minutes", [90, None], ids=["90 minutes", "the default"])
def test_a_session_expires_its_idle_timeout_after_its_last_write_not_before(
    api: Api, table: Any, clock: Clock, minutes: int | None
) -> None:
    # Given a session with a timeout other than the tests' usual minute (and one with the default)
    timeout = minutes or get_settings().idle_timeout_minutes
    session = api.create_session(**({"idle_timeout_minutes": minutes} if minutes else {}))
    session_id = session["session_id"]
    due = timeutil.epoch_seconds(timeutil.parse(session["created_at"])) + timeout * 60
    assert (session_item(table, session_id)["GSI3SK"], session_item(table, session_id)["active_until"]) == (due, due)
    assert session["expires_at"] == timeutil.iso(timeutil.plus(timeutil.parse(session["created_at"]), minutes=timeout))
    # When it is written to halfway through, its idle deadline moves a full timeout past that write, and its
    # due time on the index stays where creation armed it (a message never writes the due index)
    clock.advance(minutes=timeout / 2)
    appended = api("POST", f"{BASE}/{session_id}/messages", body={"role": "user", "content": "still here"})
    assert appended.status == 201
    deadline = timeutil.epoch_seconds(timeutil.parse(appended.body["created_at"])) + timeout * 60
    stored = session_item(table, session_id)
    assert (stored["GSI3SK"], stored["active_until"]) == (due, deadline)
    expires_at = api("GET", f"{BASE}/{session_id}").body["expires_at"]
    assert timeutil.epoch_seconds(timeutil.parse(expires_at)) == deadline
    # Then the run at the armed time finds it written to since: not expired, re-armed at the deadline
    clock.advance(minutes=timeout / 2, seconds=1)
    report = run()
    assert (report.expired, report.rearmed) == (0, 1)
    assert session_item(table, session_id)["GSI3SK"] == deadline
    # And a second before the deadline it is still active, and a second after it the run expires it
    clock.advance(minutes=timeout / 2, seconds=-3)
    assert (run().expired, run().rearmed) == (0, 0)
    assert api("GET", f"{BASE}/{session_id}").body["status"] == "active"
    clock.advance(seconds=3)
    assert run().expired == 1
    assert api("GET", f"{BASE}/{session_id}").body["status"] == "expired"


@pytest.mark.parametrize(
    ("last_write_before_due", "expired"), [(1, False), (0, True)], ids=["a second before", "at its due time"]
)
def test_a_session_touched_just_before_it_would_expire_is_not_expired(
    api: Api, table: Any, clock: Clock, last_write_before_due: int, expired: bool
) -> None:
    # Given a one-minute session written to a second before its due time (or at it: idle already)
    session_id = idle_session(api)
    clock.advance(seconds=60 - last_write_before_due - 1)
    if last_write_before_due:
        assert api("PATCH", f"{BASE}/{session_id}", body={"title": "still here"}).status == 200
    # When the schedule runs a second past the due time creation armed
    clock.advance(seconds=last_write_before_due + 2)
    report = run()
    # Then only the idle one is expired; the touched one is due again a minute after its write
    assert report.expired == int(expired) and report.rearmed == int(not expired)
    stored = session_item(table, session_id)
    assert stored["status"] == ("expired" if expired else "active")
    if not expired:
        assert stored["GSI3SK"] == stored["active_until"]
        assert stored["active_until"] == timeutil.epoch_seconds(timeutil.parse(stored["last_activity_at"])) + 60


def test_an_idle_session_expires_within_one_schedule_period_past_its_timeout(
    api: Api, table: Any, clock: Clock
) -> None:
    # Given a one-minute session written to at uneven times, never a minute apart, across a run of the
    # schedule (every 5 minutes), then left idle
    session_id = idle_session(api)
    period = 300
    writes_at = [40, 95, 150, 205, 260, 290, 340]
    elapsed, expired_at = 0, None
    # When the schedule runs every period for an hour, the writes landing between its runs
    while elapsed < 3600 and expired_at is None:
        for moment in [at for at in writes_at if elapsed < at <= elapsed + period]:
            clock.advance(seconds=moment - elapsed)
            assert api("PATCH", f"{BASE}/{session_id}", body={"title": f"t{moment}"}).status == 200
            elapsed = moment
        step = period - elapsed % period
        clock.advance(seconds=step)
        elapsed += step
        if run().expired:
            expired_at = elapsed
    # Then it expired at the first run past its last write plus its timeout: never before, at most a period late
    assert expired_at is not None
    assert writes_at[-1] + 60 <= expired_at <= writes_at[-1] + 60 + period
    assert session_item(table, session_id)["status"] == "expired"


def test_a_paused_session_expires_a_completed_one_never(api: Api, table: Any, clock: Clock) -> None:
    paused, completed = idle_session(api), idle_session(api)
    api("POST", f"{BASE}/{paused}/pause")
    api("POST", f"{BASE}/{completed}/end")
    clock.advance(minutes=2)
    assert run().expired == 1
    assert session_item(table, paused)["status"] == "expired"
    assert session_item(table, completed)["status"] == "completed"
    assert_counters_exact(table, "alice")


def test_an_expired_session_is_purged_after_its_retention(api: Api, table: Any, clock: Clock) -> None:
    session_id = idle_session(api, prompt="hello")
    clock.advance(minutes=2)
    run()
    # Given the retention has not passed, the session stays
    clock.advance(days=get_settings().expired_retention_days - 1)
    assert run().purged == 0 and session_item(table, session_id) is not None
    # When it has passed, the next run purges the session and everything in it
    clock.advance(days=1, minutes=1)
    report = run()
    assert report.purged == 1
    assert partition(table, session_id) == []
    assert api("GET", f"{BASE}/{session_id}").status == 404
    assert_counters_exact(table, "alice")
    assert api("GET", BASE).body["total"] == 0


def test_reads_treat_a_session_past_its_ttl_as_gone(api: Api, clock: Clock) -> None:
    # Given an expired session whose purge never came (the function was down), past its TTL backstop
    session_id = idle_session(api, prompt="hello")
    clock.advance(minutes=2)
    run()
    clock.advance(days=get_settings().expired_retention_days + 1, minutes=1)
    # Then no read returns it or its messages, though DynamoDB has not removed it yet
    assert api("GET", f"{BASE}/{session_id}").status == 404
    assert api("GET", f"{BASE}/{session_id}/messages").status == 404
    assert api("GET", f"{BASE}/{session_id}/history").status == 404
    assert session_id not in [s["session_id"] for s in api("GET", BASE).body["sessions"]]


# -- purge ----------------------------------------------------------------------------------------------


def put_objects(owner: str, session_id: str, count: int) -> None:
    s3 = boto3.client("s3")
    for number in range(count):
        key = keys.export_s3_key(owner, session_id, f"exp_{number:04d}", "pdf")
        s3.put_object(Bucket=bucket(), Key=key, Body=b"v1")
        s3.put_object(Bucket=bucket(), Key=key, Body=b"v2")  # versioned bucket: both versions go


def seed_messages(table: Any, session_id: str, count: int) -> None:
    with table.batch_writer() as batch:
        for number in range(count):
            batch.put_item(
                Item={
                    **keys.message_key(session_id, f"msg_{number:06d}"),
                    "type": "message",
                    "session_id": session_id,
                    "role": "user",
                    "content": f"message {number}",
                }
            )


def test_a_deleted_session_of_10000_messages_is_purged_and_nothing_else(
    api: Api, table: Any, reads: dict[str, int]
) -> None:
    # Given a session with 10,000 messages and exported files, and another user's and another own session
    doomed = api.create_session(prompt="hello")["session_id"]
    seed_messages(table, doomed, 10_000)
    put_objects("alice", doomed, 30)
    kept = api.create_session(prompt="keep me")["session_id"]
    bobs = api.create_session(user="bob", prompt="bob's")["session_id"]
    put_objects("alice", kept, 2)
    others_before = sorted(partition(table, kept) + partition(table, bobs), key=lambda item: item["SK"])
    # When it is deleted: one request, gone from every read at once
    assert api("DELETE", f"{BASE}/{doomed}").status == 204
    assert api("GET", f"{BASE}/{doomed}/messages").status == 404
    # And the scheduled run purges it
    reads.clear()
    report = run()
    print("\npurge of a 10,000-message session:", json.dumps(reads, sort_keys=True))
    assert reads["BatchWriteItem requests"] == -(-report.items_deleted // 25), "25 deletes a request"
    # Then its partition and its S3 prefix are empty, and nothing of any other session changed
    assert report.purged == 1 and report.errors == 0
    assert report.items_deleted >= 10_000 and report.objects_deleted == 60
    assert partition(table, doomed) == []
    assert object_versions(keys.s3_session_prefix("alice", doomed)) == []
    assert sorted(partition(table, kept) + partition(table, bobs), key=lambda item: item["SK"]) == others_before
    assert len(object_versions(keys.s3_session_prefix("alice", kept))) == 4
    assert_counters_exact(table, "alice")
    assert_counters_exact(table, "bob")


@pytest.mark.parametrize("how", ["deleted", "expired"])
def test_a_crash_mid_purge_leaves_nothing_half_visible_and_the_rerun_finishes(
    api: Api, table: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    # Given a session with 300 messages and files, due for its purge
    session_id = idle_session(api, prompt="hello")
    seed_messages(table, session_id, 300)
    put_objects("alice", session_id, 3)
    if how == "deleted":
        api("DELETE", f"{BASE}/{session_id}")
    else:
        clock.advance(minutes=2)
        assert run().expired == 1
        clock.advance(days=get_settings().expired_retention_days, minutes=1)
    # When the run crashes after a few batches of deletes
    calls = {"n": 0}
    original = PurgeRepo.delete_items

    def crashing(self: PurgeRepo, item_keys: list[dict[str, str]]) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("the invocation died here")
        original(self, item_keys)

    monkeypatch.setattr(PurgeRepo, "delete_items", crashing)
    report = run()
    assert report.errors == 1 and report.purged == 0
    # Then the session is still due, invisible to every read, and no longer counted
    left = partition(table, session_id)
    assert 0 < len(left) < 300 and any(item["SK"] == keys.SESSION_SK for item in left)
    assert api("GET", f"{BASE}/{session_id}").status == 404
    assert api("GET", f"{BASE}/{session_id}/messages").status == 404
    assert session_id not in [s["session_id"] for s in api("GET", BASE).body["sessions"]]
    assert_counters_exact(table, "alice")
    # When the next run comes, everything is gone and the counters are exact
    monkeypatch.setattr(PurgeRepo, "delete_items", original)
    assert run().purged == 1
    assert partition(table, session_id) == []
    assert object_versions(keys.s3_session_prefix("alice", session_id)) == []
    assert_counters_exact(table, "alice")
    assert api("GET", BASE).body["total"] == 0


def test_a_run_stops_at_its_time_budget_and_the_next_continues(api: Api, table: Any, clock: Clock) -> None:
    # Given 30 idle sessions
    for _ in range(30):
        idle_session(api)
    clock.advance(minutes=2)

    # When a run's time runs out once it has expired 10 (counted in the table, not in checks: where the
    # sessions fall among the shards is random)
    def running_out() -> int:
        with support.as_the_test():
            expired = table.scan(
                FilterExpression="SK = :s AND #st = :e",
                ExpressionAttributeNames={"#st": "status"},
                ExpressionAttributeValues={":s": "#SESSION", ":e": "expired"},
                Select="COUNT",
            )["Count"]
        return 60_000 if expired < 10 else 9_000

    first = run(running_out)
    # Then it stops cleanly, says what it left, and the next run finishes the work
    # (its backlog counts the due sessions it had read but left: none when it stopped between two pages)
    assert not first.finished and first.expired == 10 and first.backlog <= 30 - first.expired
    assert_counters_exact(table, "alice")
    second = run()
    assert second.finished and first.expired + second.expired == 30
    assert_counters_exact(table, "alice")


# -- races ----------------------------------------------------------------------------------------------


def race(first: Callable[[], Any], second: Callable[[], Any], *, head_start: float) -> tuple[Any, Any]:
    """Run both at once; `first` starts `head_start` seconds early (negative: late)."""
    results: list[Any] = [None, None]
    barrier = threading.Barrier(2)

    def runner(index: int, work: Callable[[], Any], delay: float) -> None:
        barrier.wait()
        time.sleep(max(delay, 0))
        results[index] = work()

    threads = [
        threading.Thread(target=runner, args=(0, first, -head_start)),
        threading.Thread(target=runner, args=(1, second, head_start)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results[0], results[1]


@pytest.mark.usefixtures("serialized_aws")
@pytest.mark.parametrize("write", ["message", "patch"])
def test_a_write_racing_expiry_lands_before_it_or_gets_409_never_lost(
    api: Api, table: Any, clock: Clock, write: str
) -> None:
    outcomes = {"landed": 0, "refused": 0}
    # A run reads every due shard before it writes: the write starts about when the run reaches its own write
    reaching = []
    for _ in range(3):
        started = time.perf_counter()
        run()
        reaching.append(time.perf_counter() - started)
    reach = sorted(reaching)[1]
    for iteration in range(40):
        # Given a session idle just past its timeout
        session_id = idle_session(api)
        clock.advance(minutes=2)

        def writing(sid: str = session_id, n: int = iteration) -> Any:
            if write == "message":
                return api("POST", f"{BASE}/{sid}/messages", body={"role": "user", "content": f"m{n}"})
            return api("PATCH", f"{BASE}/{sid}", body={"title": f"t{n}"})

        # When a write and the expiry run race (each gets a head start half of the time, jitter otherwise)
        head_start = reach + (0.02, -0.02, 0.0, 0.001)[iteration % 4]
        expiry, result = race(run, writing, head_start=head_start)
        stored = session_item(table, session_id)
        # Then either the write landed (201/200) and the session lives on, or it was refused with 409
        # session_expired and the session expired without it; never both, never neither
        if result.status in (200, 201):
            outcomes["landed"] += 1
            assert stored["status"] == "active", (result.status, stored["status"])
            if write == "message":
                assert stored["message_count"] == 1
                assert [m["content"] for m in api("GET", f"{BASE}/{session_id}/messages").body["messages"]] == [
                    f"m{iteration}"
                ]
            else:
                assert stored["title"] == f"t{iteration}"
        else:
            outcomes["refused"] += 1
            assert result.status == 409 and result.body["code"] == "session_expired", result.body
            assert stored["status"] == "expired"
            assert stored.get("message_count", 0) == 0 and stored["title"] == "New Chat"
        assert expiry.errors == 0
    # And both outcomes happened, and the counters are exact
    assert outcomes["landed"] > 0 and outcomes["refused"] > 0, outcomes
    assert_counters_exact(table, "alice")


# -- cost: proportional to the work, not the table ------------------------------------------------------


@pytest.fixture
def fast_moto_transactions(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """moto deep-copies the whole table for every operation of a transaction (to roll back), which makes
    100 transactions over a 10,000-item table take minutes. Skip the copy of tables (other values are
    still copied), and record cancelled transactions: without the copy their rollback would be wrong, so a
    test using this asserts there were none."""
    import copy as real_copy

    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table

    class NoTableCopies:
        def __getattr__(self, name: str) -> Any:
            return getattr(real_copy, name)

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, Table) else real_copy.deepcopy(value, memo)

    cancelled: list[str] = []
    original = models.DynamoDBBackend.transact_write_items

    def recording(self: Any, transact_items: list[dict[str, Any]]) -> None:
        try:
            original(self, transact_items)
        except Exception as exc:
            cancelled.append(type(exc).__name__)
            raise

    monkeypatch.setattr(models, "copy", NoTableCopies())
    monkeypatch.setattr(models.DynamoDBBackend, "transact_write_items", recording)
    yield cancelled


@pytest.fixture
def reads(aws: None) -> Iterator[dict[str, int]]:
    """DynamoDB requests and the items they read (Count, ScannedCount), by operation, via botocore hooks."""
    totals: dict[str, int] = {}

    def record(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        totals[f"{model.name} requests"] = totals.get(f"{model.name} requests", 0) + 1
        for field in ("Count", "ScannedCount"):
            if field in parsed:
                totals[f"{model.name} {field}"] = totals.get(f"{model.name} {field}", 0) + int(parsed[field])

    clients.dynamodb().meta.events.register("after-call.dynamodb", record)
    yield totals
    clients.dynamodb().meta.events.unregister("after-call.dynamodb", record)


def seed_sessions(table: Any, count: int, *, due: set[int], now_epoch: int) -> None:
    """`count` active sessions of 100 users, written directly (as the API would have), `due` ones idle."""
    shards = get_settings().due_shards
    per_user: dict[str, int] = {}
    with table.batch_writer() as batch:
        for number in range(count):
            session_id = f"session_{number:016x}"
            owner = f"user-{number % 100}"
            per_user[owner] = per_user.get(owner, 0) + 1
            at = "2026-01-01T00:00:00.000Z"
            batch.put_item(
                Item={
                    **keys.session_key(session_id),
                    "type": "session",
                    "session_id": session_id,
                    "title": "seeded",
                    "session_type": "chat",
                    "status": "active",
                    "agent_name": "chat",
                    "created_by": owner,
                    "created_at": at,
                    "updated_at": at,
                    "last_activity_at": at,
                    "idle_seconds": 60,
                    "version": 1,
                    "GSI1PK": keys.owner_gsi1pk(owner),
                    "GSI1SK": keys.activity_sk(at, session_id),
                    "GSI2PK": keys.active_gsi2pk(owner),
                    "GSI2SK": keys.activity_sk(at, session_id),
                    "GSI3PK": keys.due_gsi3pk(keys.due_shard(session_id, shards)),
                    "GSI3SK": now_epoch - 10 if number in due else now_epoch + 3600,
                }
            )
        for owner, sessions in per_user.items():
            deltas = {name: delta * sessions for name, delta in status_deltas(None, "active").items()}
            batch.put_item(Item={**keys.counters_key(owner), "type": "counters", **deltas})


def test_one_run_over_10000_sessions_with_100_due_reads_about_100_items(
    table: Any, reads: dict[str, int], fast_moto_transactions: list[str]
) -> None:
    # Given 10,000 active sessions of 100 users, of which 100 (of many users) are idle past their timeout
    now_epoch = int(time.time())
    due = set(range(0, 10_000, 101))
    seed_sessions(table, 10_000, due=due, now_epoch=now_epoch)
    reads.clear()
    # When one run comes
    report = run()
    # Then it expired exactly those 100, reading ~100 index items (one query per shard), not 10,000
    assert len(due) == 100 and report.expired == 100 and report.finished
    print("\nexpiry run over 10,000 sessions, 100 due:", json.dumps(reads, sort_keys=True))
    assert reads["Query ScannedCount"] == 100 and reads["Query Count"] == 100
    assert reads["Query requests"] == get_settings().due_shards  # one query per shard: no shard has a full page
    assert reads["TransactWriteItems requests"] == 100 and fast_moto_transactions == []
    assert "Scan requests" not in reads
    for number in (*sorted(due)[:10], 1, 2, 5_000):
        expected = "expired" if number in due else "active"
        assert session_item(table, f"session_{number:016x}")["status"] == expected
    for user in range(100):
        idle = sum(1 for number in due if number % 100 == user)
        stored = counters(table, f"user-{user}")
        assert (stored["s_active"], stored.get("s_expired", 0), stored["total"]) == (100 - idle, idle, 100)
        assert stored["open_count"] == 100 - idle


# -- the function ---------------------------------------------------------------------------------------


def test_the_function_parses_the_schedule_event_and_reports(api: Api, clock: Clock, capsys: Any) -> None:
    idle_session(api)
    clock.advance(minutes=2)
    event = json.loads((support.EVENTS / "schedule.json").read_text())
    handler = support.load_function("ExpiryFunction").lambda_handler
    result = handler(event, ScheduledContext(function_name="ExpiryFunction"))
    assert result["expired"] == 1 and result["errors"] == 0 and result["finished"] is True
    emitted = capsys.readouterr().out
    assert '"SessionsExpired":[1.0]' in emitted and '"ExpiryBacklog":[0.0]' in emitted
    with pytest.raises(Exception, match="validation error"):
        handler({"not": "a scheduled event"}, ScheduledContext(function_name="ExpiryFunction"))


def test_a_failed_run_raises_so_lambda_retries_it(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    session_id = api.create_session()["session_id"]
    api("DELETE", f"{BASE}/{session_id}")

    def broken(self: PurgeRepo, prefix: str) -> list[dict[str, str]]:
        raise RuntimeError("S3 is down")

    monkeypatch.setattr(PurgeRepo, "object_versions", broken)
    event = json.loads((support.EVENTS / "schedule.json").read_text())
    handler = support.load_function("ExpiryFunction").lambda_handler
    with pytest.raises(Exception, match="stay due"):
        handler(event, ScheduledContext(function_name="ExpiryFunction"))
