"""Live streaming over the WebSocket API, in-process with moto: the live function as API Gateway invokes it
($connect with what its authorizer verified, messages, $disconnect), and the chat worker pushing a run's
events to its subscribers. The @connections endpoint is played by `Connections` (what each connection was
sent, and which ones are gone).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import all_items
from tests.integration.test_chat_runs import finished
from tests.support import Api, load_function

BASE = "/api/v1/sessions"


class Connections:
    """API Gateway's side of the connections: the messages posted to each, and closed ones (GoneException)."""

    def __init__(self) -> None:
        self.sent: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.closed: set[str] = set()

    def post(self, connection_id: str, data: bytes) -> None:
        from sessions_api.dal.live_repo import Gone

        if connection_id in self.closed:
            raise Gone(connection_id)
        self.sent[connection_id].append(json.loads(data))

    def events(self, connection_id: str, request_id: str) -> list[dict[str, Any]]:
        return [m for m in self.sent[connection_id] if m.get("request_id") == request_id and "id" in m]

    def problems(self, connection_id: str) -> list[dict[str, Any]]:
        return [m for m in self.sent[connection_id] if m.get("type") == "problem"]


@pytest.fixture
def connections(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Connections]:
    """The live API deployed: its @connections URL set for the functions and the worker."""
    from sessions_api.dal.live_repo import LiveRepo
    from sessions_api.settings import get_settings

    played = Connections()
    monkeypatch.setenv("LIVE_CONNECTIONS_URL", "https://live.invalid/live")
    get_settings.cache_clear()
    monkeypatch.setattr(LiveRepo, "post", played.post)
    yield played
    monkeypatch.delenv("LIVE_CONNECTIONS_URL")
    get_settings.cache_clear()


@pytest.fixture
def live(connections: Connections) -> Any:
    module = load_function("LiveFunction")
    module.live.cache_clear()
    return module


def send(live: Any, route: str, connection_id: str, user: str | None = "alice", body: Any = None) -> dict[str, Any]:
    """The event API Gateway sends the live function for `route` on a connection its authorizer let `user` open."""
    context: dict[str, Any] = {
        "routeKey": route,
        "eventType": {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE"),
        "connectionId": connection_id,
        "stage": "live",
        "requestId": f"req-{time.monotonic_ns()}",
    }
    if user is not None:
        context["authorizer"] = {"principalId": user, "sub": user}
    event: dict[str, Any] = {"requestContext": context, "isBase64Encoded": False}
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    return dict(live.handler(event, None))


def connect(live: Any, connection_id: str, user: str = "alice") -> None:
    assert send(live, "$connect", connection_id, user) == {"statusCode": 200}


def subscribe(live: Any, connection_id: str, request_id: str, after: int = 0, user: str = "alice") -> None:
    send(live, "$default", connection_id, user, {"action": "subscribe", "request_id": request_id, "after": after})


def start(api: Api, sid: str, message: str, user: str = "alice") -> str:
    accepted = api("POST", f"{BASE}/{sid}/chat/async", body={"message": message}, user=user)
    assert accepted.status == 202, accepted.body
    return str(accepted.body["request_id"])


def wait_for(condition: Any, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def live_items(table: Any) -> list[dict[str, Any]]:
    return [item for item in all_items(table) if item["SK"].startswith("LIVE#") or item["PK"].startswith("CONN#")]


@pytest.fixture
def sid(api: Api) -> str:
    return str(api.create_session(title="live")["session_id"])


def test_a_subscriber_gets_every_event_of_a_run_once_in_order_as_it_is_written(
    api: Api, live: Any, connections: Connections, sid: str
) -> None:
    connect(live, "c1")
    request_id = start(api, sid, "Tell me a lot [stream 300]")
    subscribe(live, "c1", request_id)
    run = finished(api, request_id)
    wait_for(
        lambda: (
            connections.events("c1", request_id)[-1:] and connections.events("c1", request_id)[-1]["type"] == "complete"
        )
    )
    pushed = connections.events("c1", request_id)
    assert (
        [event["id"] for event in pushed] == [event["id"] for event in run["events"]] == list(range(1, len(pushed) + 1))
    )
    assert [{k: v for k, v in e.items() if k != "request_id"} for e in pushed] == run["events"]
    assert connections.sent["c1"][0] == {"type": "subscribed", "request_id": request_id, "after": 0}


def test_a_finished_run_is_replayed_after_the_last_event_the_client_has(
    api: Api, live: Any, connections: Connections, sid: str
) -> None:
    request_id = start(api, sid, "Short [stream 20]")
    run = finished(api, request_id)
    connect(live, "c1")
    subscribe(live, "c1", request_id, after=2)
    assert [event["id"] for event in connections.events("c1", request_id)] == [e["id"] for e in run["events"][2:]]


def test_a_reconnect_with_the_last_id_seen_misses_nothing_and_repeats_nothing(
    api: Api, live: Any, connections: Connections, sid: str, table: Any
) -> None:
    # Given a client following a long run, whose connection drops after a few events
    connect(live, "first")
    request_id = start(api, sid, "Long [stream 600]")
    subscribe(live, "first", request_id)
    wait_for(lambda: len(connections.events("first", request_id)) >= 3)
    connections.closed.add("first")
    send(live, "$disconnect", "first")
    seen = connections.events("first", request_id)
    # When it reconnects and subscribes again with the last id it saw
    connect(live, "second")
    subscribe(live, "second", request_id, after=seen[-1]["id"])
    run = finished(api, request_id)
    wait_for(lambda: any(e["type"] == "complete" for e in connections.events("second", request_id)))
    # Then the two connections together saw every event once
    together = [event["id"] for event in seen + connections.events("second", request_id)]
    assert together == [event["id"] for event in run["events"]]
    # And the dropped connection left nothing behind
    assert not [item for item in live_items(table) if "first" in item["PK"] + item["SK"]]


def test_a_stranger_cannot_subscribe(api: Api, live: Any, connections: Connections, sid: str, table: Any) -> None:
    request_id = start(api, sid, "Mine [stream 20]")
    connect(live, "m1", "mallory")
    subscribe(live, "m1", request_id, user="mallory")
    finished(api, request_id)
    time.sleep(0.5)
    assert connections.events("m1", request_id) == []
    (problem,) = connections.problems("m1")
    assert problem["request_id"] == request_id and problem["problem"]["status"] == 404
    assert problem["problem"]["code"] == "run_not_found"
    assert not [item for item in live_items(table) if item["SK"].startswith("LIVE#")]


def test_a_sharee_whose_share_is_revoked_stops_receiving(
    api: Api, live: Any, connections: Connections, sid: str
) -> None:
    # Given bob, who may view alice's session, following her long run
    shared = api("POST", f"{BASE}/{sid}/share", body={"recipients": ["bob"], "permissions": "view"})
    assert shared.status == 201, shared.body
    connect(live, "alice-conn")
    connect(live, "bob-conn", "bob")
    request_id = start(api, sid, "Long [stream 1500]")
    subscribe(live, "alice-conn", request_id)
    subscribe(live, "bob-conn", request_id, user="bob")
    wait_for(lambda: len(connections.events("bob-conn", request_id)) >= 2)
    # When alice revokes the share
    shares = api("GET", f"{BASE}/{sid}/shares").body["shares"]
    assert api("DELETE", f"{BASE}/{sid}/shares/{shares[0]['share_id']}").status == 204
    # Then within a refresh bob is told and gets nothing more, while alice follows the run to its end
    wait_for(lambda: connections.problems("bob-conn"))
    received = len(connections.events("bob-conn", request_id))
    finished(api, request_id)
    wait_for(lambda: connections.events("alice-conn", request_id)[-1]["type"] == "complete")
    assert len(connections.events("bob-conn", request_id)) == received
    assert connections.problems("bob-conn")[0]["problem"]["status"] == 404
    assert len(connections.events("alice-conn", request_id)) > received


def test_a_gone_connection_is_cleaned_up(api: Api, live: Any, connections: Connections, sid: str, table: Any) -> None:
    connect(live, "c1")
    connect(live, "c2")
    request_id = start(api, sid, "Long [stream 400]")
    subscribe(live, "c1", request_id)
    subscribe(live, "c2", request_id)
    wait_for(lambda: connections.events("c1", request_id))
    connections.closed.add("c1")  # closed without its $disconnect reaching us
    finished(api, request_id)
    wait_for(lambda: connections.events("c2", request_id)[-1]["type"] == "complete")
    assert not [item for item in live_items(table) if item["SK"].endswith("#c1")]
    assert [item for item in live_items(table) if item["SK"].endswith("#c2")]


def test_a_chat_over_the_socket_is_accepted_then_followed(
    api: Api, live: Any, connections: Connections, sid: str
) -> None:
    connect(live, "c1")
    send(live, "$default", "c1", body={"action": "chat", "session_id": sid, "message": "Hi there [stream 30]"})
    accepted = connections.sent["c1"][0]
    assert accepted["type"] == "accepted" and accepted["session_id"] == sid
    request_id = accepted["request_id"]
    run = finished(api, request_id)
    wait_for(
        lambda: (
            connections.events("c1", request_id)[-1:] and connections.events("c1", request_id)[-1]["type"] == "complete"
        )
    )
    assert [e["id"] for e in connections.events("c1", request_id)] == [e["id"] for e in run["events"]]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("not json", 400),
        ("[" * 100_000, 400),
        ("[1, 2]", 400),
        ({"action": "dance"}, 400),
        ({"action": "subscribe", "request_id": "run_nope", "after": 0}, 404),
        ({"action": "subscribe", "request_id": "x", "after": -1}, 422),
        ({"action": "subscribe", "request_id": "x", "after": "3"}, 422),
        ({"action": "chat", "message": ""}, 422),
        ({"action": "chat", "message": "hi", "session_id": "../etc"}, 422),
    ],
)
def test_a_bad_message_gets_a_problem_and_changes_nothing(
    api: Api, live: Any, connections: Connections, table: Any, body: Any, status: int
) -> None:
    connect(live, "c1")
    before = [item for item in all_items(table) if not item["PK"].startswith("CONN#")]
    send(live, "$default", "c1", body=body)
    (problem,) = connections.problems("c1")
    assert problem["problem"]["status"] == status
    assert [item for item in all_items(table) if not item["PK"].startswith("CONN#")] == before


def test_a_connection_without_an_authorized_caller_is_refused(live: Any, table: Any) -> None:
    assert send(live, "$connect", "c1", user=None) == {"statusCode": 401}
    assert live_items(table) == []


def test_the_worker_reads_its_subscribers_per_refresh_not_per_event(
    api: Api, live: Any, connections: Connections, sid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sessions_api.dal.live_repo import LiveRepo

    reads: list[float] = []
    subscribers = LiveRepo.subscribers

    def counted(self: LiveRepo, *args: Any) -> Any:
        reads.append(time.monotonic())
        return subscribers(self, *args)

    monkeypatch.setattr(LiveRepo, "subscribers", counted)
    for number in range(3):
        connect(live, f"c{number}")
    request_id = start(api, sid, "Long [stream 4000]")
    for number in range(3):
        subscribe(live, f"c{number}", request_id)
    began = time.monotonic()
    run = finished(api, request_id)
    took = time.monotonic() - began
    wait_for(
        lambda: all(
            connections.events(f"c{n}", request_id)[-1:]
            and connections.events(f"c{n}", request_id)[-1]["type"] == "complete"
            for n in range(3)
        )
    )
    # Each subscriber got each event once: 3 posts per event
    assert all(len(connections.events(f"c{n}", request_id)) == len(run["events"]) for n in range(3))
    # And the subscriber list was read on refresh, not per event
    assert len(reads) < len(run["events"]) and len(reads) <= took / 2 + 3


def test_a_subscription_is_delivered_by_one_party_only(api: Api, live: Any, connections: Connections, sid: str) -> None:
    from sessions_api.dal.runs_repo import RunsRepo
    from sessions_api.logic.subscribers import RunSubscribers
    from sessions_api.settings import get_settings

    # Given a finished run, replayed to a subscriber by the subscribing function
    request_id = start(api, sid, "Short [stream 20]")
    run = finished(api, request_id)
    connect(live, "c1")
    subscribe(live, "c1", request_id)
    assert len(connections.events("c1", request_id)) == len(run["events"])
    # When a worker of that run looks at its subscribers as it ends (it saw the subscription late)
    worker = RunSubscribers(get_settings(), RunsRepo().get(sid, request_id) or {}, "worker-1")
    worker.close()
    # Then the subscriber still has each event once
    assert [e["id"] for e in connections.events("c1", request_id)] == [e["id"] for e in run["events"]]


def test_a_sharee_following_in_two_tabs_gets_both_and_the_run_goes_on(
    api: Api, live: Any, connections: Connections, sid: str
) -> None:
    assert api("POST", f"{BASE}/{sid}/share", body={"recipients": ["bob"], "permissions": "view"}).status == 201
    request_id = start(api, sid, "Long [stream 600]")
    for tab in ("tab1", "tab2"):
        connect(live, tab, "bob")
        subscribe(live, tab, request_id, user="bob")
    run = finished(api, request_id)
    assert run["status"] == "completed"
    for tab in ("tab1", "tab2"):
        wait_for(
            lambda tab=tab: (
                connections.events(tab, request_id)[-1:]
                and connections.events(tab, request_id)[-1]["type"] == "complete"
            )
        )
        assert [e["id"] for e in connections.events(tab, request_id)] == [e["id"] for e in run["events"]]


def test_subscribing_twice_on_one_connection_is_refused_and_delivery_stays_as_it_was(
    api: Api, live: Any, connections: Connections, sid: str
) -> None:
    request_id = start(api, sid, "Short [stream 20]")
    run = finished(api, request_id)
    connect(live, "c1")
    subscribe(live, "c1", request_id)
    subscribe(live, "c1", request_id, after=0)
    (problem,) = connections.problems("c1")
    assert problem["problem"]["status"] == 409
    assert [e["id"] for e in connections.events("c1", request_id)] == [e["id"] for e in run["events"]]


def test_a_subscriber_side_failure_never_fails_the_run(
    api: Api, live: Any, connections: Connections, sid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sessions_api.dal.live_repo import LiveRepo

    def broken(self: LiveRepo, *args: Any) -> Any:
        raise RuntimeError("DynamoDB said no")

    monkeypatch.setattr(LiveRepo, "subscribers", broken)
    run = finished(api, start(api, sid, "Still answered [stream 40]"))
    assert run["status"] == "completed" and run["result"]["content"].startswith("Echo: Still answered")
