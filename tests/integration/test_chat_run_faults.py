"""Chat runs under faults: a worker killed at every step, a duplicate delivery, a lost answer to the write
that takes the turn. Each ends with a complete turn, a stopped turn or an error reply, the session free, and
no event twice. The stream's poller is stopped here; the test hands the run to the worker itself."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest

from tests.integration.test_chat_runs import all_items_of, finished, messages_of, session_item
from tests.support import Api

BASE = "/api/v1/sessions"


class Killed(BaseException):
    """The worker's process dying: not an error the code could catch and handle."""


def accept(api: Api, sid: str, message: str = "hello [stream 40]") -> str:
    result = api("POST", f"{BASE}/{sid}/chat/async", body={"message": message})
    assert result.status == 202, result.body
    return str(result.body["request_id"])


def run_once(sid: str, request_id: str, provider: Any = None) -> None:
    from sessions_api.logic import runner
    from sessions_api.providers import provider_for
    from sessions_api.settings import get_settings

    settings = get_settings()
    runner.run(settings, provider or provider_for(settings), sid, request_id, remaining_ms=lambda: 300_000)


def after_the_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    """The clock moved past every lease taken so far: a crashed worker's run is now due for recovery."""
    from sessions_api import timeutil
    from sessions_api.settings import get_settings

    real_now = timeutil.now
    later = timedelta(seconds=get_settings().run_lease_seconds + 1)
    monkeypatch.setattr(timeutil, "now", lambda: real_now() + later)


class DyingProvider:
    """The local model, and the worker's process dies `after` chunks of its reply (0: before the call)."""

    def __init__(self, after: int) -> None:
        from sessions_api.providers.local_echo import LocalEchoProvider

        self.inner = LocalEchoProvider(chunk_delay_seconds=0.3)
        self.after = after

    def model_for(self, requested: str) -> str:
        return self.inner.model_for(requested)

    def converse_stream(self, request: Any) -> Any:
        if self.after == 0:
            raise Killed
        stream = self.inner.converse_stream(request)

        def chunks() -> Any:
            for number, chunk in enumerate(stream, 1):
                yield chunk
                if number == self.after:
                    raise Killed

        class Dying:
            reply = None

            def __iter__(self) -> Any:
                return chunks()

            def close(self) -> None:
                stream.close()

        return Dying()


def assert_one_whole_turn(api: Api, sid: str, request_id: str, status: str) -> dict[str, Any]:
    run = finished(api, request_id)
    assert run["status"] == status, run
    assert [event["id"] for event in run["events"]] == list(range(1, len(run["events"]) + 1)), "no gap, no twice"
    messages = messages_of(api, sid)
    assert [(m["role"], m["request_id"]) for m in messages] == [("user", request_id), ("assistant", request_id)]
    assert "active_run" not in session_item(sid), "the session is free"
    return {"run": run, "reply": messages[1]}


@pytest.mark.parametrize("after", [0, 2], ids=["before the model call", "during the reply"])
def test_a_worker_killed_leaves_a_run_the_retry_ends_with_an_error_reply(
    api: Api, no_chat_worker: None, monkeypatch: pytest.MonkeyPatch, after: int
) -> None:
    sid = api.create_session()["session_id"]
    request_id = accept(api, sid)
    # When the worker dies mid-run
    with pytest.raises(Killed):
        run_once(sid, request_id, DyingProvider(after))
    # Then the session stays held while the lease runs (another chat is told it is busy)
    busy = api("POST", f"{BASE}/{sid}/chat/async", body={"message": "me?"})
    assert busy.status == 409 and busy.body["code"] == "session_busy"
    # And Lambda's retry of the record, once the lease has lapsed, ends the run with an error reply
    after_the_lease(monkeypatch)
    run_once(sid, request_id)
    ended = assert_one_whole_turn(api, sid, request_id, "error")
    assert ended["reply"]["is_error"] and ended["run"]["error"]["code"] == "worker_lost"
    assert ended["run"]["events"][-1]["type"] == "error"
    # And the session takes the next chat at once
    assert api("POST", f"{BASE}/{sid}/chat/async", body={"message": "again"}).status == 202


def test_a_worker_killed_after_the_model_answered_leaves_no_half_turn(
    api: Api, no_chat_worker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sessions_api.logic import turns

    sid = api.create_session()["session_id"]
    request_id = accept(api, sid)
    # When the worker dies after the model answered, before it stored the reply
    monkeypatch.setattr(turns, "end", lambda *args, **kwargs: (_ for _ in ()).throw(Killed()))
    with pytest.raises(Killed):
        run_once(sid, request_id)
    monkeypatch.undo()
    # Then the retry ends it as an error (the reply was never stored), once
    after_the_lease(monkeypatch)
    run_once(sid, request_id)
    assert_one_whole_turn(api, sid, request_id, "error")


def test_the_reply_and_the_runs_end_are_one_write(api: Api, no_chat_worker: None, table: Any) -> None:
    # A crash "between the reply and the run's completion" cannot leave one without the other: the reply,
    # the run's end, its last event and the turn's release are one transaction. A worker that dies right after
    # it leaves a complete turn, and a duplicate delivery of the record changes nothing.
    sid = api.create_session()["session_id"]
    request_id = accept(api, sid)
    run_once(sid, request_id)
    before = all_items_of(sid)
    run_once(sid, request_id)  # the stream delivers the record again
    assert all_items_of(sid) == before
    assert_one_whole_turn(api, sid, request_id, "completed")


def test_a_duplicate_delivery_while_the_run_is_going_does_nothing(
    api: Api, no_chat_worker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    sid = api.create_session()["session_id"]
    request_id = accept(api, sid, "long [stream 2000]")  # runs for seconds: the second delivery meets it running
    first = threading.Thread(target=run_once, args=(sid, request_id))
    first.start()
    from sessions_api.dal.runs_repo import RunsRepo

    while (RunsRepo().get(sid, request_id) or {}).get("phase") != "running":  # the first delivery has claimed it
        time.sleep(0.01)
    from sessions_api.logic import runner

    # A second delivery finds the run started and its lease live: it does not end it (it has no time to wait)
    assert runner.recover(_settings(), sid, request_id, remaining_ms=lambda: 1_000) is runner.Recovery.LEFT
    first.join()
    assert_one_whole_turn(api, sid, request_id, "completed")


def _settings() -> Any:
    from sessions_api.settings import get_settings

    return get_settings()


def test_the_schedule_ends_a_run_whose_retries_all_failed(
    api: Api, no_chat_worker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sessions_api.logic.expiry import Expiry

    sid = api.create_session()["session_id"]
    request_id = accept(api, sid)
    with pytest.raises(Killed):
        run_once(sid, request_id, DyingProvider(0))
    # When the schedule runs after the lease (Lambda gave the record up: dead-letter queue) and the due time the
    # run was made ready with, two leases on (a claim does not move it)
    after_the_lease(monkeypatch)
    assert Expiry(_settings()).run(lambda: 60_000).runs_recovered == 0
    after_the_lease(monkeypatch)
    report = Expiry(_settings()).run(lambda: 60_000)
    assert report.runs_recovered == 1
    assert_one_whole_turn(api, sid, request_id, "error")
    # And a run nobody ever started (its record lost) is ended the same way
    never = accept(api, sid, "lost")
    after_the_lease(monkeypatch)
    after_the_lease(monkeypatch)  # a ready run is due twice the lease after it was accepted
    assert Expiry(_settings()).run(lambda: 60_000).runs_recovered == 1
    assert finished(api, never)["status"] == "error"


def test_the_schedule_rearms_a_run_whose_worker_still_renews_its_lease(
    api: Api, no_chat_worker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sessions_api import timeutil
    from sessions_api.dal import table
    from sessions_api.dal.runs_repo import RunsRepo
    from sessions_api.logic import turns
    from sessions_api.logic.expiry import Expiry

    # Given a run made ready (due two leases on), claimed, and renewed by its worker as it wrote (5 minutes on)
    sid = api.create_session()["session_id"]
    request_id = accept(api, sid)
    repo, now = RunsRepo(), timeutil.epoch_seconds(timeutil.now())
    due = int((repo.get(sid, request_id) or {})["GSI3SK"])
    assert due == turns.ready_until(_settings(), now)
    assert repo.claim(sid, request_id, worker="w", lease_until=now + 60, at=timeutil.now_iso())
    table.transact([repo.progress(sid, request_id, worker="w", last_event=0, added=0, lease_until=now + 300)])
    # Then neither the claim nor the renewal moved its due time on the index, only its lease
    stored = repo.get(sid, request_id) or {}
    assert (stored["GSI3SK"], stored["lease_until"]) == (due, now + 300)
    # When the schedule finds it due while its lease holds
    for _ in range(2):
        after_the_lease(monkeypatch)
    report = Expiry(_settings()).run(lambda: 60_000)
    # Then the run goes on, due again when its renewed lease lapses
    assert (report.rearmed, report.runs_recovered) == (1, 0)
    stored = repo.get(sid, request_id) or {}
    assert (stored["phase"], stored["GSI3SK"]) == ("running", now + 300)
    # And once its worker is gone past that lease, the schedule ends it
    for _ in range(3):
        after_the_lease(monkeypatch)
    assert Expiry(_settings()).run(lambda: 60_000).runs_recovered == 1
    assert_one_whole_turn(api, sid, request_id, "error")


def test_a_lost_answer_to_the_turn_taking_write_is_not_reported_busy(
    api: Api, no_chat_worker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ReadTimeoutError
    from moto.core.botocore_stubber import BotocoreStubber

    sid = api.create_session()["session_id"]
    processed = BotocoreStubber.process_request
    lost: list[bool] = []

    def answer_lost_once(self: Any, request: Any) -> Any:
        response = processed(self, request)
        target = request.headers.get("X-Amz-Target") or ""
        if "TransactWriteItems" in (target.decode() if isinstance(target, bytes) else target) and not lost:
            lost.append(True)
            raise ReadTimeoutError(endpoint_url=request.url)  # applied, but the answer never came
        return response

    monkeypatch.setattr(BotocoreStubber, "process_request", answer_lost_once)
    # When the chat's transaction lands but its answer is lost (botocore retries it)
    result = api("POST", f"{BASE}/{sid}/chat/async", body={"message": "did it land?"})
    # Then the client is told it was accepted, not that the session is busy with its own run
    assert lost and result.status == 202, result.body
    assert session_item(sid)["active_run"] == result.body["request_id"]
    assert [m["content"] for m in messages_of(api, sid)] == ["did it land?"]


def test_a_chat_after_a_dead_workers_lease_ends_that_run_first(
    api: Api, no_chat_worker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = api.create_session()["session_id"]
    dead = accept(api, sid)
    with pytest.raises(Killed):
        run_once(sid, dead, DyingProvider(0))
    # When, long after, the user chats again (no retry and no schedule came yet)
    after_the_lease(monkeypatch)
    after_the_lease(monkeypatch)
    result = api("POST", f"{BASE}/{sid}/chat/async", body={"message": "still there?"})
    assert result.status == 202, result.body
    # Then the dead run got its error reply before the new message: the conversation still alternates
    messages = messages_of(api, sid)
    assert [(m["role"], m["request_id"], m["is_error"]) for m in messages] == [
        ("user", dead, False),
        ("assistant", dead, True),
        ("user", result.body["request_id"], False),
    ]
    assert session_item(sid)["active_run"] == result.body["request_id"]
