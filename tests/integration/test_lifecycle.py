"""Status transitions, table-driven from logic/lifecycle.TRANSITIONS itself: Given / When / Then."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from sessions_api.logic import lifecycle
from sessions_api.logic.lifecycle import TRANSITIONS, Action
from sessions_api.models.entities import OPEN_STATUSES, Status
from tests import lifecycle_support
from tests.conftest import all_items
from tests.lifecycle_support import (
    BASE,
    assert_counters_exact,
    force_status,
    partition,
    session_item,
)
from tests.support import Api

CLIENT_ROWS = [row for row in TRANSITIONS if row.action in lifecycle.CLIENT_ACTIONS]
FORBIDDEN = [
    (action, status)
    for action in lifecycle.CLIENT_ACTIONS
    for status in Status
    if not any(row.action is action and row.source is status for row in TRANSITIONS)
    # a worker's retry of PUT /results with `complete` on a completed session only stores the results again
    and (action, status) != (Action.COMPLETE, Status.COMPLETED)
]

# Fixtures of tests/lifecycle_support.py used here.
serialized_aws = lifecycle_support.serialized_aws


def act(api: Api, session_id: str, action: Action, user: str = "alice", **kwargs: Any) -> Any:
    """A client's transition: a route for the owner's actions, PUT /results for a worker's `complete`."""
    if action is Action.COMPLETE:
        return api("PUT", f"{BASE}/{session_id}/results", body={"summary": "done", "complete": True}, user=user)
    return api("POST", f"{BASE}/{session_id}/{action.value}", user=user, **kwargs)


def in_status(api: Api, table: Any, status: Status, *, paused_from: Status | None = None) -> str:
    session_id = api.create_session(prompt="hello")["session_id"]
    if status is not Status.ACTIVE or paused_from is not None:
        force_status(table, session_id, status, paused_from=paused_from)
    return session_id


@pytest.mark.parametrize("row", CLIENT_ROWS, ids=[f"{r.action}:{r.source}->{r.target}" for r in CLIENT_ROWS])
def test_every_allowed_transition(api: Api, table: Any, row: lifecycle.Transition) -> None:
    # Given a session in the row's source status (a paused one remembers what it was paused from)
    paused_from = row.target if row.action is Action.RESUME else None
    session_id = in_status(api, table, row.source, paused_from=paused_from)
    # When its owner does the row's action
    result = act(api, session_id, row.action, **({} if row.action is Action.COMPLETE else {"body": {"reason": "r"}}))
    # Then the session is in the target status, indexed as that status demands, counted exactly
    assert result.status == 200, result.body
    stored = session_item(table, session_id)
    assert stored is not None and stored["status"] == row.target
    assert ("GSI2PK" in stored) == (row.target is Status.ACTIVE)
    assert ("GSI3PK" in stored) == (row.target in OPEN_STATUSES)
    assert ("ended_at" in stored) == (row.target not in OPEN_STATUSES)
    assert_counters_exact(table, "alice")
    # And the history tells it
    history = api("GET", f"{BASE}/{session_id}/history", query={"order": "desc"}).body["timeline"]
    changed = next(event for event in history if event["type"] == "status_changed")
    assert changed["details"]["from"] == row.source and changed["details"]["to"] == row.target
    assert changed["actor"] == "alice"


@pytest.mark.parametrize(("action", "status"), FORBIDDEN, ids=[f"{a}:{s}" for a, s in FORBIDDEN])
def test_every_forbidden_transition_is_409_and_changes_nothing(
    api: Api, table: Any, action: Action, status: Status
) -> None:
    # Given a session in a status the table has no row for with this action
    session_id = in_status(api, table, status)
    before = all_items(table)
    # When its owner tries the action
    result = act(api, session_id, action)
    # Then 409 invalid_state_transition says the current status and what is possible, and nothing changed
    assert result.status == 409
    problem = result.problem
    assert problem["code"] == "invalid_state_transition"
    assert problem["current_status"] == status
    assert problem["allowed_actions"] == lifecycle.allowed_actions(status)
    assert all_items(table) == before


def test_terminal_statuses_have_no_way_out() -> None:
    terminal = set(Status) - OPEN_STATUSES
    assert not [row for row in TRANSITIONS if row.source in terminal]
    assert all(lifecycle.allowed_actions(status) == [] for status in terminal)


def test_resume_returns_to_the_status_it_was_paused_from(api: Api, table: Any) -> None:
    running = in_status(api, table, Status.RUNNING)
    assert act(api, running, Action.PAUSE).body["status"] == "paused"
    assert act(api, running, Action.RESUME).body["status"] == "running"
    active = api.create_session()["session_id"]
    assert act(api, active, Action.PAUSE).body["status"] == "paused"
    resumed = act(api, active, Action.RESUME).body
    assert resumed["status"] == "active"
    # the active listing (continue) finds it again
    assert api("GET", f"{BASE}/continue").body["session_id"] == active


def test_completing_twice_is_a_harmless_retry(api: Api, table: Any) -> None:
    session_id = api.create_session()["session_id"]
    assert act(api, session_id, Action.COMPLETE).status == 200
    again = act(api, session_id, Action.COMPLETE)
    assert again.status == 200 and again.body["status"] == "completed"
    changes = [item for item in partition(table, session_id) if item.get("event_type") == "status_changed"]
    assert len(changes) == 1
    assert_counters_exact(table, "alice")


def test_reason_is_kept_and_limited(api: Api, table: Any) -> None:
    session_id = api.create_session()["session_id"]
    too_long = act(api, session_id, Action.CANCEL, body={"reason": "x" * 501})
    assert too_long.status == 422 and session_item(table, session_id)["status"] == "active"
    assert act(api, session_id, Action.CANCEL, body={"reason": "not needed"}).status == 200
    assert session_item(table, session_id)["status_reason"] == "not needed"


def test_only_the_owner_changes_status(api: Api, table: Any) -> None:
    session_id = api.create_session()["session_id"]
    assert act(api, session_id, Action.END, user="mallory").problem["code"] == "session_not_found"
    assert session_item(table, session_id)["status"] == "active"


def test_if_match_guards_a_transition(api: Api) -> None:
    session = api.create_session()
    stale = act(api, session["session_id"], Action.PAUSE, headers={"If-Match": '"7"'})
    assert stale.status == 412
    fresh = act(api, session["session_id"], Action.PAUSE, headers={"If-Match": '"1"'})
    assert fresh.status == 200 and fresh.headers["ETag"] == '"2"'


def test_a_paused_session_takes_no_message_but_keeps_its_expiry(api: Api, table: Any) -> None:
    session_id = api.create_session()["session_id"]
    act(api, session_id, Action.PAUSE)
    refused = api("POST", f"{BASE}/{session_id}/messages", body={"role": "user", "content": "hi"})
    assert refused.status == 409
    assert "GSI3PK" in session_item(table, session_id)  # an idle paused session still expires


@pytest.mark.usefixtures("serialized_aws")
def test_racing_transitions_exactly_one_wins(api: Api, table: Any) -> None:
    # Given active sessions, and for each, three owners' requests racing to end, cancel and pause it
    outcomes: list[list[int]] = []
    for _ in range(15):
        session_id = api.create_session()["session_id"]
        results: list[int] = []
        barrier = threading.Barrier(3)

        def race(
            action: Action, sid: str = session_id, wait: threading.Barrier = barrier, out: list[int] = results
        ) -> None:
            wait.wait()
            out.append(act(api, sid, action).status)

        threads = [threading.Thread(target=race, args=(a,)) for a in (Action.END, Action.CANCEL, Action.PAUSE)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        outcomes.append(sorted(results))
        # Then the history has exactly as many status changes as there were winners, one of them out of active
        changes = [item for item in partition(table, session_id) if item.get("event_type") == "status_changed"]
        assert len(changes) == results.count(200)
        assert [change["data"]["from"] for change in changes].count("active") == 1
    # Then exactly one of each race won (a pause that won first may still be followed by end or cancel,
    # which the table allows from paused: then two win, one after the other, never both from active)
    for result in outcomes:
        assert result.count(200) in (1, 2) and all(status in (200, 409) for status in result), result
    assert_counters_exact(table, "alice")


@pytest.mark.usefixtures("serialized_aws")
def test_racing_identical_transitions_exactly_one_wins(api: Api, table: Any) -> None:
    for _ in range(15):
        session_id = api.create_session()["session_id"]
        results: list[int] = []
        barrier = threading.Barrier(4)

        def race(sid: str = session_id, wait: threading.Barrier = barrier, out: list[int] = results) -> None:
            wait.wait()
            out.append(act(api, sid, Action.CANCEL).status)

        threads = [threading.Thread(target=race) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == [200, 409, 409, 409]
    assert_counters_exact(table, "alice")
