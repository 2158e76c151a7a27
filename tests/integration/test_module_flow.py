"""A request flows down: routes → `sessions_api.logic` → `sessions_api.dal`, passing each logic module once.

The profiler records, at every call into a logic module, the route, logic and DAL modules on the stack
below it. Control "returns" to a module when the module is already on the stack below another one, or when
a DAL frame calls up into logic. Neither may happen on any route, for the owner or a sharee, with or without
an `Idempotency-Key` (with one, Powertools calls the route's own work back from inside the idempotency
layer, and the route then calls down as it does without one).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from tests.support import Api

BASE = "/api/v1/sessions"
LOGIC, DAL = "sessions_api.logic.", "sessions_api.dal."


def _layer(frame: FrameType) -> str | None:
    name = str(frame.f_globals.get("__name__", ""))
    if name.startswith((LOGIC, DAL)):
        return name
    if f"{os.sep}functions{os.sep}" in frame.f_code.co_filename:
        return f"route {Path(frame.f_code.co_filename).parent.name}"
    return None


def _layered(frame: FrameType | None) -> list[str]:
    """The route, logic and DAL modules on the stack from `frame` down, consecutive repeats collapsed."""
    chain: list[str] = []
    while frame is not None:
        layer = _layer(frame)
        if layer is not None and (not chain or chain[-1] != layer):
            chain.append(layer)
        frame = frame.f_back
    return chain


@contextmanager
def returns() -> Iterator[tuple[list[str], set[str]]]:
    """(every way control came back into a module, the logic modules the request passed)."""
    found: list[str] = []
    passed: set[str] = set()

    def profile(frame: FrameType, event: str, _: Any) -> None:
        if event != "call" or not frame.f_globals.get("__name__", "").startswith(LOGIC):
            return
        chain = _layered(frame)
        module = chain[0]
        passed.add(module)
        below = chain[1:]
        if below and below[0].startswith(DAL):
            found.append(f"{below[0]} calls up into {module}")
        elif module in below:
            found.append(" → ".join(reversed(chain)))

    threading.setprofile_all_threads(profile)  # the request may run on the test's thread or another one
    try:
        yield found, passed
    finally:
        threading.setprofile_all_threads(None)


DECK = {"slides": [{"slide_id": "s1", "html": "<h1>One</h1>"}], "css": ""}
REQUESTS: dict[str, tuple[str, str, Any]] = {
    "append": ("POST", "/{sid}/messages", {"role": "user", "content": "x"}),
    "append batch": ("POST", "/{sid}/messages", {"messages": [{"role": "user", "content": "x"}] * 3}),
    "append large": ("POST", "/{sid}/messages", {"role": "user", "content": "x" * 70_000}),
    "chat": ("POST", "/{sid}/chat", {"message": "hi"}),
    "slides chat": ("POST", "/{sid}/chat", {"message": "Make 2 slides about tides", "agent_name": "slides"}),
    "slides revision": (
        "POST",
        "/{sid}/chat",
        {"message": "Now about tides", "agent_name": "slides", "slide_context": {"indices": [0], "slide_htmls": ["x"]}},
    ),
    "list messages": ("GET", "/{sid}/messages", None),
    "delete message": ("DELETE", "/{sid}/messages/{newest}", None),
    "edit": ("PATCH", "/{sid}", {"title": "t"}),
    "results": ("PUT", "/{sid}/results", {"summary": "s"}),
    "deck": ("PUT", "/{sid}/slides", DECK),
    "slide": ("PUT", "/{sid}/slides/s2", {"html": "<p>2</p>"}),
    "comment": ("POST", "/{sid}/comments", {"content": "c", "comment_type": "note"}),
    "export": ("POST", "/{sid}/export", {"format": "markdown"}),
    "history": ("GET", "/{sid}/history", None),
    "metrics": ("GET", "/{sid}/metrics", None),
    "fork": ("POST", "/{sid}/fork", {"title": "forked"}),
}


@pytest.mark.parametrize("key", [None, "flow-key"], ids=["plain", "idempotency-key"])
@pytest.mark.parametrize("user", ["alice", "bob"], ids=["owner", "sharee"])
@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_a_request_passes_each_logic_module_once(api: Api, name: str, user: str, key: str | None) -> None:
    session_id = api.create_session()["session_id"]
    assert api("PUT", f"{BASE}/{session_id}/slides", body=DECK).status == 200
    newest = api("POST", f"{BASE}/{session_id}/messages", body={"role": "user", "content": "hi"}).body["message_id"]
    assert (
        api("POST", f"{BASE}/{session_id}/share", body={"recipients": ["bob"], "permissions": "collaborate"}).status
        == 201
    )
    method, path, body = REQUESTS[name]
    headers = {"Idempotency-Key": key} if key and method == "POST" else None
    with returns() as (found, passed):
        result = api(method, BASE + path.format(sid=session_id, newest=newest), body=body, user=user, headers=headers)
    assert result.status < 300, result.body
    assert passed, "the profiler saw the request"
    assert found == []


@pytest.mark.parametrize("owner_only", ["cancel", "pause", "end"])
def test_transitions_and_the_schedule_flow_down_too(api: Api, owner_only: str) -> None:
    from sessions_api.logic.expiry import Expiry
    from sessions_api.settings import get_settings

    session_id = api.create_session()["session_id"]
    with returns() as (found, _):
        assert api("POST", f"{BASE}/{session_id}/{owner_only}").status == 200
        Expiry(get_settings()).run(lambda: 60_000)
        assert api("POST", BASE, body={"title": "new"}).status == 201
        assert api("POST", "/api/v1/chat", body={"message": "hello"}).status == 200
    assert found == []
