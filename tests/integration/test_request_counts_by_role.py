"""DynamoDB requests of every route on a session, for its owner and for a sharee alike.

A sharee's access is resolved once per request: a route that reads the session first hands that access
to its write, which then commits once with the share's ConditionCheck inside. Only a write that reads
nothing first (an append, an edit, a comment) tries as the owner, and on refusal reads the caller's
shares and writes again. Each access read of a sharee also reads the owner's counters (one GetItem), for an
erasure of the owner's (DELETE /me) hides their sessions from their sharees at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support import Api

BASE = "/api/v1/sessions"
TWI, BATCH, QUERY, GET = "TransactWriteItems", "BatchGetItem", "Query", "GetItem"
DECK = {"slides": [{"slide_id": "s1", "html": "<h1>One</h1>"}], "css": ""}


def _route(method: str, path: str, body: Any = None) -> Callable[[Api, str, str, dict[str, str]], Any]:
    def call(api: Api, session_id: str, user: str, ids: dict[str, str]) -> Any:
        return api(method, path.format(sid=session_id, **ids), body=body, user=user)

    return call


# route → (the owner's requests, a collaborator's requests)
ROUTES: dict[str, tuple[Callable[..., Any], list[str], list[str]]] = {
    "append": (
        _route("POST", BASE + "/{sid}/messages", {"role": "user", "content": "x"}),
        [TWI],
        [TWI, BATCH, GET, TWI],
    ),
    "append large": (
        _route("POST", BASE + "/{sid}/messages", {"role": "user", "content": "é" * 40_000}),
        [BATCH, TWI],
        [BATCH, GET, TWI],
    ),
    # access, then the user message, the run and the session's turn in one transaction (the worker runs it)
    "chat": (_route("POST", BASE + "/{sid}/chat/async", {"message": "hi"}), [BATCH, TWI], [BATCH, GET, TWI]),
    "delete message": (_route("DELETE", BASE + "/{sid}/messages/{first}"), [BATCH, TWI], [BATCH, GET, TWI]),
    "delete newest": (
        _route("DELETE", BASE + "/{sid}/messages/{newest}"),
        [BATCH, QUERY, TWI],
        [BATCH, GET, QUERY, TWI],
    ),
    "edit": (_route("PATCH", BASE + "/{sid}", {"title": "t"}), [TWI, BATCH], [TWI, BATCH, GET, TWI, BATCH, GET]),
    "results": (_route("PUT", BASE + "/{sid}/results", {"summary": "s"}), [TWI], [TWI, BATCH, GET, TWI]),
    "deck": (_route("PUT", BASE + "/{sid}/slides", DECK), [BATCH, TWI], [BATCH, GET, TWI]),
    "slide": (
        _route("PUT", BASE + "/{sid}/slides/s2", {"html": "<p>2</p>"}),
        [BATCH, GET, TWI],
        [BATCH, GET, GET, TWI],
    ),
    "comment": (
        _route("POST", BASE + "/{sid}/comments", {"content": "c", "comment_type": "note"}),
        [TWI],
        [TWI, BATCH, GET, TWI],
    ),
    "export": (
        _route("POST", BASE + "/{sid}/export", {"format": "markdown"}),
        [BATCH, GET, QUERY, TWI],  # access, deck, messages, then the record with the session's pointer
        [BATCH, GET, GET, QUERY, TWI],
    ),
    "get session": (_route("GET", BASE + "/{sid}"), [BATCH], [BATCH, GET]),
    "list messages": (_route("GET", BASE + "/{sid}/messages"), [BATCH, QUERY], [BATCH, GET, QUERY]),
    "get message": (_route("GET", BASE + "/{sid}/messages/{first}"), [BATCH], [BATCH, GET]),
    "history": (_route("GET", BASE + "/{sid}/history"), [BATCH, QUERY], [BATCH, GET, QUERY]),
    "metrics": (_route("GET", BASE + "/{sid}/metrics"), [BATCH], [BATCH, GET]),
    "comments": (_route("GET", BASE + "/{sid}/comments"), [BATCH, QUERY], [BATCH, GET, QUERY]),
}


@pytest.mark.parametrize("user", ["alice", "bob"], ids=["owner", "sharee"])
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_requests_per_route(api: Api, ddb_calls: list[str], route: str, user: str) -> None:
    session_id = api.create_session()["session_id"]
    body = {"messages": [{"role": "user", "content": "first"}, {"role": "assistant", "content": "newest"}]}
    stored = api("POST", f"{BASE}/{session_id}/messages", body=body).body["messages"]
    share = {"recipients": ["bob"], "permissions": "collaborate"}
    assert api("POST", f"{BASE}/{session_id}/share", body=share).status == 201
    assert api("PUT", f"{BASE}/{session_id}/slides", body=DECK).status == 200
    ids = {"first": stored[0]["message_id"], "newest": stored[1]["message_id"]}
    call, owner, sharee = ROUTES[route]
    ddb_calls.clear()
    result = call(api, session_id, user, ids)
    assert result.status < 300, result.body
    assert ddb_calls == (owner if user == "alice" else sharee)
