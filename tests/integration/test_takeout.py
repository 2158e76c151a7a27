"""Export everything (POST /me/export): one zip of every session the caller owns, made by a stream-triggered worker.

In-process with moto: the requests through the API, the worker as its stream mapping would call it (with the
job's item as the stream's NewImage).
"""

from __future__ import annotations

import io
import json
import os
import random
import string
import zipfile
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import pytest
import requests
from boto3.dynamodb.types import TypeSerializer

from sessions_api import timeutil
from sessions_api.dal import archive, keys
from sessions_api.logic import takeout as takeout_logic
from sessions_api.logic.takeout import Takeout
from sessions_api.settings import get_settings
from tests.conftest import all_items
from tests.support import Api, LambdaContext, load_function

BASE = "/api/v1/sessions"
ME = "/api/v1/me/export"
PLENTY: Callable[[], int] = lambda: 600_000  # noqa: E731
LARGE = "€" * 30_000  # 90 KB in UTF-8: over the item limit, so stored in S3


class Crash(BaseException):
    """The worker's process dies mid-job (not an error it could handle: nothing after it runs)."""


def bucket() -> str:
    return os.environ["BUCKET_NAME"]


def s3() -> Any:
    return boto3.client("s3")


def takeout_objects(user: str = "alice") -> list[str]:
    found = s3().list_object_versions(Bucket=bucket(), Prefix=keys.s3_user_prefix(user))
    return [entry["Key"] for entry in [*found.get("Versions", []), *found.get("DeleteMarkers", [])]]


def open_uploads() -> list[str]:
    return [upload["Key"] for upload in s3().list_multipart_uploads(Bucket=bucket()).get("Uploads", [])]


def job_item(table: Any, user: str, job_id: str) -> dict[str, Any]:
    return table.get_item(Key=keys.takeout_key(user, job_id))["Item"]


def deliver(table: Any, user: str, job_id: str, remaining_ms: Callable[[], int] = PLENTY) -> dict[str, int]:
    """The worker, handed the job's record as the stream's filter would (an INSERT, or a redelivery of it)."""
    serializer = TypeSerializer()
    image = {name: serializer.serialize(value) for name, value in job_item(table, user, job_id).items()}
    context = LambdaContext(function_name="TakeoutWorkerFunction")
    context.get_remaining_time_in_millis = remaining_ms  # type: ignore[method-assign]
    event = {"Records": [{"eventID": "1", "eventName": "INSERT", "dynamodb": {"NewImage": image}}]}
    return load_function("TakeoutWorkerFunction").handler(event, context)


def markdown_with(hook: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], bytes]:
    """The worker's own renderer, with `hook` called before each session's transcript (a moment mid-job)."""
    render = load_function("TakeoutWorkerFunction").markdown

    def markdown(source: dict[str, Any]) -> bytes:
        hook(source)
        return render(source)

    return markdown


def start(api: Api, user: str = "alice") -> dict[str, Any]:
    result = api("POST", ME, user=user)
    assert result.status == 202, result.body
    assert result.headers["Location"] == f"{ME}/{result.body['job_id']}"
    return result.body


def status(api: Api, job_id: str, user: str = "alice") -> dict[str, Any]:
    result = api("GET", f"{ME}/{job_id}", user=user)
    assert result.status == 200, result.body
    return result.body


def download(job: dict[str, Any]) -> zipfile.ZipFile:
    """The archive through its presigned link, as a browser would fetch it (moto answers the plain request)."""
    response = requests.get(job["download_url"], timeout=30)
    assert response.status_code == 200, response.text
    return zipfile.ZipFile(io.BytesIO(response.content))


def lapse_lease(table: Any, user: str, job_id: str, seconds_ago: int) -> None:
    table.update_item(
        Key=keys.takeout_key(user, job_id),
        UpdateExpression="SET lease_until = :t",
        ExpressionAttributeValues={":t": timeutil.epoch_seconds(timeutil.now()) - seconds_ago},
    )


@pytest.fixture
def owned(api: Api) -> dict[str, Any]:
    """alice: a session with a message stored in S3, one with a deck, a comment and a share to bob, an empty
    one and a deleted one; bob has his own session."""
    plan = api.create_session(title="Plan | Q3")["session_id"]
    for content in ("first question", LARGE, "last word"):
        assert api("POST", f"{BASE}/{plan}/messages", body={"role": "user", "content": content}).status == 201
    notes = api.create_session(title="Notes")["session_id"]
    assert api("POST", f"{BASE}/{notes}/messages", body={"role": "user", "content": "about the deck"}).status == 201
    deck = {"slides": [{"slide_id": "s1", "html": "<h1>Tides</h1><p>High and low</p>"}], "css": ""}
    assert api("PUT", f"{BASE}/{notes}/slides", body=deck).status == 200
    assert api("POST", f"{BASE}/{notes}/comments", body={"content": "nice", "comment_type": "note"}).status == 201
    assert api("POST", f"{BASE}/{notes}/share", body={"recipients": ["bob"], "permissions": "view"}).status == 201
    empty = api.create_session(title="Empty")["session_id"]
    gone = api.create_session(title="Gone")["session_id"]
    assert api("DELETE", f"{BASE}/{gone}").status == 204
    bobs = api.create_session(user="bob", title="Bob's")["session_id"]
    assert api("POST", f"{BASE}/{bobs}/messages", body={"role": "user", "content": "bob's"}, user="bob").status == 201
    return {"plan": plan, "notes": notes, "empty": empty, "gone": gone, "bobs": bobs}


# -- the archive ------------------------------------------------------------------------------------
def test_the_archive_holds_every_session_she_owns_file_by_file(api: Api, table: Any, owned: dict[str, Any]) -> None:
    # Given alice's job, queued
    job = start(api)
    assert job["status"] == "queued" and job["download_url"] is None
    assert status(api, job["job_id"])["status"] == "queued"
    # When the worker runs it
    assert deliver(table, "alice", job["job_id"]) == {"completed": 1}
    # Then the job says where the archive is, how big, and until when
    done = status(api, job["job_id"])
    assert done["status"] == "completed" and done["sessions"] == done["sessions_done"] == 3
    stored = s3().head_object(Bucket=bucket(), Key=keys.takeout_s3_key("alice", job["job_id"]))
    assert done["size_bytes"] == stored["ContentLength"] and stored["ContentType"] == "application/zip"
    retention = timeutil.parse(done["expires_at"]) - timeutil.parse(done["completed_at"])
    assert retention.days == get_settings().export_retention_days
    query = parse_qs(urlsplit(done["download_url"]).query)
    assert query["X-Amz-Expires"] == ["900"] and "X-Amz-Signature" in query
    assert unquote(urlsplit(done["download_url"]).path).endswith(f"users/alice/takeout/{job['job_id']}.zip")
    # And the zip holds an index and two files per session of hers: not the deleted one, not bob's
    archive_file = download(done)
    mine = [owned["plan"], owned["notes"], owned["empty"]]
    expected = {"index.json", "index.md"} | {f"sessions/{sid}.{ext}" for sid in mine for ext in ("json", "md")}
    assert set(archive_file.namelist()) == expected
    assert archive_file.testzip() is None
    index = json.loads(archive_file.read("index.json"))
    assert index["session_count"] == 3 and index["user_id"] == "alice"
    by_id = {entry["session_id"]: entry for entry in index["sessions"]}
    assert by_id[owned["plan"]]["title"] == "Plan | Q3" and by_id[owned["plan"]]["message_count"] == 3
    assert by_id[owned["notes"]]["files"] == {
        "json": f"sessions/{owned['notes']}.json",
        "markdown": f"sessions/{owned['notes']}.md",
    }
    index_md = archive_file.read("index.md").decode()
    assert "Plan \\| Q3" in index_md and f"sessions/{owned['empty']}.md" in index_md
    # The message stored in S3 is there in full, in the JSON as the API shows it and in the transcript
    plan = json.loads(archive_file.read(f"sessions/{owned['plan']}.json"))
    assert plan["session"] == api("GET", f"{BASE}/{owned['plan']}").body
    assert [m["content"] for m in plan["messages"]] == ["first question", LARGE, "last word"]
    assert plan["messages"] == api("GET", f"{BASE}/{owned['plan']}/messages").body["messages"]
    assert plan["deck"] is None and plan["comments"] == [] and plan["shares"] == []
    transcript = archive_file.read(f"sessions/{owned['plan']}.md").decode()
    assert transcript.startswith("# Plan") and LARGE in transcript and "last word" in transcript
    # The deck, the comment and the share, as their own endpoints show them
    notes = json.loads(archive_file.read(f"sessions/{owned['notes']}.json"))
    assert notes["deck"]["slides"][0]["html"] == "<h1>Tides</h1><p>High and low</p>" and notes["deck_version"] == 1
    assert notes["comments"] == api("GET", f"{BASE}/{owned['notes']}/comments").body["comments"]
    assert notes["shares"] == api("GET", f"{BASE}/{owned['notes']}/shares").body["shares"]
    notes_md = archive_file.read(f"sessions/{owned['notes']}.md").decode()
    assert "about the deck" in notes_md and "Tides" in notes_md
    empty = json.loads(archive_file.read(f"sessions/{owned['empty']}.json"))
    assert empty["messages"] == [] and "_No messages._" in archive_file.read(f"sessions/{owned['empty']}.md").decode()
    assert "bob's" not in json.dumps([json.loads(archive_file.read(n)) for n in expected if n.endswith(".json")])


def test_the_archive_is_tagged_for_the_exports_lifecycle_rule(api: Api, table: Any, owned: dict[str, Any]) -> None:
    job = start(api)
    deliver(table, "alice", job["job_id"])
    key = keys.takeout_s3_key("alice", job["job_id"])
    assert s3().get_object_tagging(Bucket=bucket(), Key=key)["TagSet"] == [{"Key": "kind", "Value": "export"}]
    assert s3().head_object(Bucket=bucket(), Key=key)["ContentDisposition"].startswith("attachment; filename=")
    # And the job item goes when the archive does
    item = job_item(table, "alice", job["job_id"])
    completed = timeutil.epoch_seconds(timeutil.parse(item["completed_at"]))
    assert int(item["ttl"]) - completed == get_settings().export_retention_days * 86_400
    assert item["phase"] == "done" and "worker" not in item and "upload_id" not in item


def test_a_user_with_nothing_gets_an_archive_with_just_the_index(api: Api, table: Any) -> None:
    job = start(api, "dora")
    assert deliver(table, "dora", job["job_id"]) == {"completed": 1}
    done = status(api, job["job_id"], "dora")
    assert done["sessions"] == 0
    archive_file = download(done)
    assert sorted(archive_file.namelist()) == ["index.json", "index.md"]
    assert json.loads(archive_file.read("index.json"))["sessions"] == []


def test_the_archive_streams_in_several_parts(
    api: Api, table: Any, monkeypatch: pytest.MonkeyPatch, owned: dict[str, Any]
) -> None:
    # Given parts of 64 KiB (S3, and moto here, refuse parts under 5 MiB but the last: lowered for the test)
    import moto.s3.models

    assert archive.PART_SIZE >= archive.MIN_PART_SIZE == 5 * 1024 * 1024
    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", 64 * 1024)
    noise = random.Random(7)
    text = "".join(noise.choices(string.ascii_letters + string.digits, k=60_000))  # compresses to ~45 KB
    for n in range(4):
        body = {"role": "assistant", "content": f"{n}{text}"}
        assert api("POST", f"{BASE}/{owned['empty']}/messages", body=body).status == 201
    job = start(api)
    # When the worker writes it
    outcome = Takeout(get_settings()).run(
        "alice",
        job["job_id"],
        markdown=load_function("TakeoutWorkerFunction").markdown,
        remaining_ms=PLENTY,
        part_size=64 * 1024,
    )
    assert outcome == "completed"
    # Then the object is a multipart upload of several parts, whole when read back
    key = keys.takeout_s3_key("alice", job["job_id"])
    parts = s3().head_object(Bucket=bucket(), Key=key, PartNumber=1)["PartsCount"]
    assert parts >= 4
    done = status(api, job["job_id"])
    archive_file = download(done)
    assert archive_file.testzip() is None
    messages = json.loads(archive_file.read(f"sessions/{owned['empty']}.json"))["messages"]
    assert [m["content"] for m in messages] == [f"{n}{text}" for n in range(4)]


# -- one at a time ----------------------------------------------------------------------------------
def test_one_job_at_a_time_a_second_is_409_and_stores_nothing(api: Api, table: Any, owned: dict[str, Any]) -> None:
    job = start(api)
    before = all_items(table)
    second = api("POST", ME)
    assert second.status == 409
    problem = second.problem
    assert problem["job_id"] == job["job_id"] and f"{ME}/{job['job_id']}" in problem["detail"]
    assert all_items(table) == before
    # Another user is not held back
    start(api, "bob")
    # And once the job is done, a new one starts
    deliver(table, "alice", job["job_id"])
    assert start(api)["job_id"] != job["job_id"]


def test_a_job_whose_worker_is_gone_for_good_is_failed_and_blocks_nothing(
    api: Api, table: Any, owned: dict[str, Any]
) -> None:
    # Given a job whose worker died mid-way, long ago (every retry spent)
    job = start(api)

    def crash(_: dict[str, Any]) -> None:
        raise Crash

    with pytest.raises(Crash):
        Takeout(get_settings()).run("alice", job["job_id"], markdown=markdown_with(crash), remaining_ms=PLENTY)
    assert status(api, job["job_id"])["status"] == "running"
    assert api("POST", ME).status == 409
    lapse_lease(table, "alice", job["job_id"], takeout_logic.DEAD_AFTER_SECONDS + 60)
    # Then reads call it failed, and a new job starts, ending the old one for good
    failed = status(api, job["job_id"])
    assert failed["status"] == "failed" and failed["error"] == takeout_logic.DEAD_ERROR
    new = start(api)
    assert job_item(table, "alice", job["job_id"])["status"] == "failed"
    assert table.get_item(Key=keys.user_item_key("alice", keys.TAKEOUT_LOCK_SK))["Item"]["job_id"] == new["job_id"]
    # And a late redelivery of the old one does nothing
    assert deliver(table, "alice", job["job_id"]) == {"skipped": 1}
    assert status(api, job["job_id"])["status"] == "failed"
    assert deliver(table, "alice", new["job_id"]) == {"completed": 1}


def test_a_job_never_delivered_stops_blocking_once_the_stream_dropped_it(api: Api, table: Any) -> None:
    job = start(api)
    lapse_lease(table, "alice", job["job_id"], takeout_logic.DEAD_AFTER_SECONDS + 1)
    assert status(api, job["job_id"])["status"] == "failed"
    start(api)


# -- the worker's lease -----------------------------------------------------------------------------
def test_a_crashed_worker_is_restarted_from_scratch_by_the_redelivered_record(
    api: Api, table: Any, owned: dict[str, Any]
) -> None:
    # Given a worker that died after writing part of the archive (its upload open, its lease still running)
    job = start(api)
    calls: list[str] = []

    def crash_on_second(source: dict[str, Any]) -> None:
        calls.append(source["session"]["session_id"])
        if len(calls) == 2:
            raise Crash

    with pytest.raises(Crash):
        Takeout(get_settings()).run(
            "alice", job["job_id"], markdown=markdown_with(crash_on_second), remaining_ms=PLENTY
        )
    crashed = job_item(table, "alice", job["job_id"])
    assert crashed["status"] == "running" and crashed["upload_id"] and open_uploads()
    # When Lambda redelivers the record: it waits for the lease to lapse, then takes the job over
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        lapse_lease(table, "alice", job["job_id"], 1)  # the time passes

    retry = Takeout(get_settings(), sleep=sleep)
    markdown = load_function("TakeoutWorkerFunction").markdown
    assert retry.run("alice", job["job_id"], markdown=markdown, remaining_ms=PLENTY) == "completed"
    assert slept and 0 < slept[0] <= takeout_logic.LEASE_SECONDS + 1
    # Then the archive is whole, made once from the start; the crashed attempt's upload is gone
    item = job_item(table, "alice", job["job_id"])
    assert item["attempt"] == 2 and item["status"] == "completed"
    assert open_uploads() == []
    assert len(download(status(api, job["job_id"])).namelist()) == 2 + 2 * 3


def test_a_duplicate_delivery_leaves_a_live_worker_alone(api: Api, table: Any, owned: dict[str, Any]) -> None:
    job = start(api)
    outcomes: list[str] = []

    def duplicate(_: dict[str, Any]) -> None:
        if not outcomes:  # while the first worker runs, the same record again: it waits, sees the lease renewed
            renewed = lambda seconds: table.update_item(  # noqa: E731
                Key=keys.takeout_key("alice", job["job_id"]),
                UpdateExpression="SET lease_until = lease_until + :s",
                ExpressionAttributeValues={":s": 5},
            )
            second = Takeout(get_settings(), sleep=renewed)
            outcomes.append(second.run("alice", job["job_id"], markdown=lambda _: b"", remaining_ms=PLENTY))

    first = Takeout(get_settings()).run("alice", job["job_id"], markdown=markdown_with(duplicate), remaining_ms=PLENTY)
    assert outcomes == ["skipped"] and first == "completed"
    assert job_item(table, "alice", job["job_id"])["attempt"] == 1


def test_an_error_lets_the_retry_start_over_at_once(
    api: Api, table: Any, owned: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    job = start(api)

    def fail(_: dict[str, Any]) -> None:
        raise RuntimeError("renderer broke")

    with pytest.raises(RuntimeError):
        Takeout(get_settings()).run("alice", job["job_id"], markdown=markdown_with(fail), remaining_ms=PLENTY)
    assert open_uploads() == []
    never = Takeout(get_settings(), sleep=lambda _: pytest.fail("the retry should not wait"))
    assert never.run("alice", job["job_id"], markdown=lambda _: b"", remaining_ms=PLENTY) == "completed"


def test_a_job_that_does_not_fit_in_one_invocation_fails_and_leaves_nothing(
    api: Api, table: Any, owned: dict[str, Any]
) -> None:
    job = start(api)
    left = iter([600_000, 600_000, 10_000])
    assert deliver(table, "alice", job["job_id"], lambda: next(left, 10_000)) == {"failed": 1}
    failed = status(api, job["job_id"])
    assert failed["status"] == "failed" and failed["error"] == takeout_logic.TOO_LONG_ERROR
    assert failed["download_url"] is None
    assert takeout_objects() == [] and open_uploads() == []
    start(api)  # the lock is released


# -- cancelled ------------------------------------------------------------------------------------
def test_erasing_everything_cancels_a_running_job_and_leaves_no_object(
    api: Api, table: Any, owned: dict[str, Any]
) -> None:
    job = start(api)
    erased: list[int] = []

    def erase_midway(_: dict[str, Any]) -> None:
        if not erased:
            erased.append(api("DELETE", "/api/v1/me").status)
            assert status(api, job["job_id"])["status"] == "cancelled"  # at once, for every read

    outcome = Takeout(get_settings()).run(
        "alice", job["job_id"], markdown=markdown_with(erase_midway), remaining_ms=PLENTY
    )
    assert erased == [202] and outcome == "cancelled"
    cancelled = status(api, job["job_id"])
    assert cancelled["status"] == "cancelled" and cancelled["download_url"] is None
    assert takeout_objects() == [] and open_uploads() == []
    lock = table.get_item(Key=keys.user_item_key("alice", keys.TAKEOUT_LOCK_SK)).get("Item")
    assert lock is None


def test_a_job_cancelled_from_outside_stops_writes_nothing_more_and_leaves_no_object(
    api: Api, table: Any, owned: dict[str, Any]
) -> None:
    # Given the erasure's writes while the worker runs: the job `cancelled`, the lock deleted
    job = start(api)
    seen: list[str] = []

    def cancel_midway(_: dict[str, Any]) -> None:
        if not seen:
            seen.append("cancelled")
            table.update_item(
                Key=keys.takeout_key("alice", job["job_id"]),
                UpdateExpression="SET #s = :c",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":c": "cancelled"},
            )
            table.delete_item(Key=keys.user_item_key("alice", keys.TAKEOUT_LOCK_SK))

    outcome = Takeout(get_settings()).run(
        "alice", job["job_id"], markdown=markdown_with(cancel_midway), remaining_ms=PLENTY
    )
    # Then the worker stops: no archive, no upload, and the job stays cancelled
    assert outcome == "stopped"
    assert takeout_objects() == [] and open_uploads() == []
    item = job_item(table, "alice", job["job_id"])
    assert item["status"] == "cancelled" and "completed_at" not in item
    # Deleting the job instead works the same
    other = start(api)
    table.delete_item(Key=keys.takeout_key("alice", other["job_id"]))
    gone = Takeout(get_settings()).run("alice", other["job_id"], markdown=lambda _: b"", remaining_ms=PLENTY)
    assert gone == "skipped" and takeout_objects() == []


def test_a_finished_archive_is_no_longer_handed_out_once_she_erases_everything(
    api: Api, table: Any, owned: dict[str, Any]
) -> None:
    job = start(api)
    deliver(table, "alice", job["job_id"])
    assert status(api, job["job_id"])["download_url"]
    assert api("DELETE", "/api/v1/me").status == 202
    after = status(api, job["job_id"])
    assert after["status"] == "cancelled" and after["download_url"] is None
    # And a job asked after the erasure exports only what she made since
    fresh = api.create_session(title="After")["session_id"]
    new = start(api)
    assert deliver(table, "alice", new["job_id"]) == {"completed": 1}
    names = download(status(api, new["job_id"])).namelist()
    assert sorted(names) == ["index.json", "index.md", f"sessions/{fresh}.json", f"sessions/{fresh}.md"]


# -- progress and access --------------------------------------------------------------------------
def test_progress_shows_while_it_runs(
    api: Api, table: Any, owned: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(takeout_logic, "PROGRESS_SECONDS", 0)
    job = start(api)
    seen: list[dict[str, Any]] = []
    Takeout(get_settings()).run(
        "alice",
        job["job_id"],
        markdown=markdown_with(lambda _: seen.append(status(api, job["job_id"]))),
        remaining_ms=PLENTY,
    )
    assert [(s["status"], s["sessions"], s["sessions_done"]) for s in seen] == [
        ("running", 3, 0),
        ("running", 3, 1),
        ("running", 3, 2),
    ]
    assert all(s["download_url"] is None and s["started_at"] for s in seen)


def test_a_job_is_its_makers_alone(api: Api, table: Any) -> None:
    job = start(api)
    for job_id in (job["job_id"], "takeout_01ZZZZZZZZZZZZZZZZZZZZZZZZ", "nope", "takeout_../../x", "TAKEOUT"):
        result = api("GET", f"{ME}/{job_id}", user="bob" if job_id == job["job_id"] else "alice")
        assert result.status == 404, job_id
        assert result.problem["status"] == 404
