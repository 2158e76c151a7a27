"""Many writers at once, against a real (HTTP) moto server: nothing lost, counters exact, one chat at a time.

Each thread plays its own Lambda invocation and calls the use cases directly (a Powertools resolver
holds its current event on the instance, so one handler module is not meant to serve two threads).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sessions_api import errors
from sessions_api.identity import Caller
from sessions_api.logic.chat import Chat
from sessions_api.logic.messages import Messages
from sessions_api.logic.sessions import Sessions
from sessions_api.logic.turns import RunRequest
from sessions_api.models.api import CreateSessionIn
from sessions_api.models.messages import MessageIn
from sessions_api.settings import get_settings
from tests.moto_server import moto_server

ALICE = Caller("alice")
WRITERS = 30
MESSAGES_EACH = 4


@pytest.fixture
def server() -> Iterator[str]:
    with moto_server(serialized=True) as endpoint:
        yield endpoint


def all_messages(conversation: Messages, session_id: str) -> list[dict[str, Any]]:
    seen, cursor = [], None
    while True:
        page = conversation.list(ALICE, session_id, limit=500, cursor=cursor, order="asc")
        seen += page["messages"]
        if not page["has_more"]:
            return seen
        cursor = page["next_cursor"]


def at_once(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run `work(i)` in `count` threads released together; each result, or the exception it raised."""
    start = threading.Barrier(count)

    def run(index: int) -> Any:
        start.wait()
        try:
            return work(index)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def test_thirty_concurrent_appenders_lose_nothing_and_counters_are_exact(server: str) -> None:
    # Given a session
    settings = get_settings()
    session_id = Sessions(settings).create(ALICE, CreateSessionIn())["session_id"]

    # When 30 writers append at the same moment, each a few single messages and one batch
    def writer(index: int) -> list[str]:
        conversation = Messages(settings)
        written = []
        for n in range(MESSAGES_EACH):
            role = "user" if n % 2 == 0 else "assistant"
            message = MessageIn(role=role, content=f"w{index}-m{n}", token_count=index + n)
            written += [m["message_id"] for m in conversation.append(ALICE, session_id, [message])]
        batch = [MessageIn(role="system", content=f"w{index}-b{k}", token_count=1) for k in range(3)]
        written += [m["message_id"] for m in conversation.append(ALICE, session_id, batch)]
        return written

    results = at_once(WRITERS, writer)

    # Then every append succeeded and every message is stored exactly once, in id order
    failures = [result for result in results if isinstance(result, Exception)]
    assert failures == []
    written = {message_id for result in results for message_id in result}
    per_writer = MESSAGES_EACH + 3
    assert len(written) == WRITERS * per_writer
    stored = all_messages(Messages(settings), session_id)
    assert [m["message_id"] for m in stored] == sorted(written)

    # And the session's counters match them exactly
    session = Sessions(settings).get(ALICE, session_id, include_messages=False)
    users = sum(1 for m in stored if m["role"] == "user")
    assert session["message_count"] == WRITERS * per_writer
    assert session["turn_count"] == users == WRITERS * MESSAGES_EACH // 2
    assert session["token_usage"]["input_tokens"] == sum(m["token_count"] for m in stored if m["role"] != "assistant")
    assert session["token_usage"]["output_tokens"] == sum(m["token_count"] for m in stored if m["role"] == "assistant")
    assert session["version"] == 1 + WRITERS * (MESSAGES_EACH + 1)
    assert session["last_message_preview"] == stored[-1]["content"]


def test_two_concurrent_chats_on_one_session_one_takes_the_turn(server: str) -> None:
    # Given a session
    settings = get_settings()
    session_id = Sessions(settings).create(ALICE, CreateSessionIn())["session_id"]
    chat = Chat(settings)

    # When two chats arrive together (no worker here: the first keeps the turn)
    results = at_once(2, lambda i: chat.start(ALICE, session_id, RunRequest(f"question {i}", None, None)))

    # Then one takes the session's turn and the other is told the session is busy, having stored nothing
    accepted = [result for result in results if isinstance(result, dict)]
    busy = [result for result in results if isinstance(result, errors.SessionBusy)]
    assert len(accepted) == 1 and len(busy) == 1, results
    stored = all_messages(Messages(settings), session_id)
    assert [(m["role"], m["message_id"], m["request_id"]) for m in stored] == [
        ("user", accepted[0]["user_message_id"], accepted[0]["request_id"])
    ]
    # And while that run holds the turn, the next chat waits in line when asked to
    waiting = chat.start(ALICE, session_id, RunRequest("next", None, None, if_busy="enqueue"))
    assert waiting["user_message_id"] is None, "a waiting run stores its message when its turn comes"
    assert len(all_messages(Messages(settings), session_id)) == 1
