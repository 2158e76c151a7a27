"""The exact counts `make bench` reports, at sizes cheap enough for the test suite (benchmarks/ for the rest)."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import expiry, harness
from tests.support import Api

BASE = "/api/v1/sessions"
MESSAGE = {"role": "user", "content": "What did we decide about the launch date?"}


def test_appending_message_1000_costs_what_message_1_costs(api: Api, table: Any, ddb_calls: list[str]) -> None:
    # Given an empty session and one that already holds 999 messages
    fresh = api.create_session()["session_id"]
    long = api.create_session()["session_id"]
    harness.seed_messages(table, long, 999)
    ddb_calls.clear()
    # When message 1 and message 1,000 are appended
    assert api("POST", f"{BASE}/{fresh}/messages", body=MESSAGE).status == 201
    first, ddb_calls[:] = list(ddb_calls), []
    assert api("POST", f"{BASE}/{long}/messages", body=MESSAGE).status == 201
    # Then both are the same single transaction, whatever the history length
    assert first == ddb_calls == ["TransactWriteItems"]


def test_listing_50_sessions_with_counts_and_previews_is_one_request(api: Api, ddb_calls: list[str]) -> None:
    for n in range(50):
        api.create_session(title=f"Chat {n}", prompt=f"hello {n}")
    ddb_calls.clear()
    page = api("GET", BASE, query={"limit": "50"}).body
    assert ddb_calls == ["Query"]
    assert page["count"] == 50 and all(s["message_count"] == 1 and s["last_message_preview"] for s in page["sessions"])


def test_an_expiry_run_reads_what_is_due_not_the_table(api: Api, table: Any, ddb_calls: list[str]) -> None:
    # Given 3 due sessions among 20, then 3 more due among 120
    runs = []
    for total in (20, 100):
        session_ids = expiry.seed_sessions(api, table, total)
        expiry.make_due(table, session_ids[:3])
        ddb_calls.clear()
        # When the scheduled run comes
        report = expiry.invoke_expiry(120)
        runs.append(sorted(ddb_calls))
        assert report["expired"] == 3 and report["errors"] == 0
    # Then it made the same requests both times, and no Scan
    assert runs[0] == runs[1]
    assert runs[0].count("TransactWriteItems") == 3 and "Scan" not in runs[0]


def test_langchain_history_rewrites_the_whole_history_on_every_append(aws: None) -> None:
    pytest.importorskip("langchain_community", reason="benchmark-only dependency (benchmarks/requirements.txt)")
    import boto3

    from benchmarks.peers import langchain_history

    langchain_history.create_table(boto3.client("dynamodb"))
    store = boto3.resource("dynamodb").Table(langchain_history.TABLE)
    meter = harness.Meter()
    sent = []
    for n in (1, 100):  # message n of a session that holds n - 1
        chat = langchain_history.history(f"s{n}")
        store.put_item(Item={"SessionId": f"s{n}", "History": langchain_history.seed(n - 1, "x" * 300)})
        meter.watch(chat.table.meta.client)
        with meter.window() as calls:
            langchain_history.append(chat, "user", "x" * 300)
        sent.append(harness.Work.of(calls))
    assert sent[0].requests == sent[1].requests == 2  # GetItem, then UpdateItem of the whole item
    assert sent[1].bytes_written > 50 * sent[0].bytes_written


def test_the_sqlalchemy_peer_lists_50_sessions_in_102_statements() -> None:
    for package in ("fastapi", "mangum", "sqlalchemy"):
        pytest.importorskip(package, reason="benchmark-only dependency (benchmarks/requirements.txt)")
    from benchmarks.listing import SESSIONS, peer

    statements, listed = peer()
    assert (statements, listed) == (1 + 2 * SESSIONS + 1, SESSIONS)
