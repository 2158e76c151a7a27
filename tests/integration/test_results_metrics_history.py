"""Results, metrics and history of a session, and what each costs in DynamoDB requests: Given / When / Then."""

from __future__ import annotations

import json
import os
from typing import Any

import boto3

from sessions_api.dal.results_repo import INLINE_LIMIT_BYTES
from tests.conftest import all_items
from tests.lifecycle_support import BASE, assert_counters_exact, session_item
from tests.support import Api

RESULTS = {
    "results": {"findings": [{"claim": "Lisbon is sunny", "score": 0.91}], "tables": []},
    "summary": "Three findings, one strong.",
    "citations": ["https://example.com/a", {"title": "Weather | report", "url": "https://example.com/w"}],
    "confidence_score": 0.82,
    "execution_metadata": {"model": "m-1", "steps": 4, "tools": ["search"]},
}


def test_results_round_trip_as_json(api: Api) -> None:
    session_id = api.create_session()["session_id"]
    stored = api("PUT", f"{BASE}/{session_id}/results", body=RESULTS)
    assert stored.status == 200
    result = api("GET", f"{BASE}/{session_id}/results")
    assert result.status == 200
    body = result.body
    assert {name: body[name] for name in RESULTS} == RESULTS
    assert body["session_id"] == session_id and body["status"] == "active" and body["stored_by"] == "alice"


def test_results_before_any_are_stored_are_empty(api: Api) -> None:
    session_id = api.create_session()["session_id"]
    body = api("GET", f"{BASE}/{session_id}/results").body
    assert body["results"] is None and body["citations"] == [] and body["stored_at"] is None


def test_results_as_markdown(api: Api) -> None:
    session_id = api.create_session(title="Trip research")["session_id"]
    api("PUT", f"{BASE}/{session_id}/results", body=RESULTS)
    result = api("GET", f"{BASE}/{session_id}/results", query={"format": "markdown"})
    assert result.status == 200
    assert result.headers["Content-Type"] == "text/markdown; charset=utf-8"
    text = result.body
    assert text.startswith("# Trip research\n")
    assert "## Summary\n\nThree findings, one strong." in text
    assert '"claim": "Lisbon is sunny"' in text and "```json" in text
    assert "2. [Weather | report](https://example.com/w)" in text
    assert "## Confidence\n\n82%" in text
    assert "| steps | 4 |" in text
    by_accept = api("GET", f"{BASE}/{session_id}/results", headers={"Accept": "text/markdown"})
    assert by_accept.body == text
    assert api("GET", f"{BASE}/{session_id}/results", query={"format": "pdf"}).status == 422


def test_results_too_large_for_an_item_go_to_s3(api: Api, table: Any) -> None:
    session_id = api.create_session()["session_id"]
    big = {"results": {"text": "x" * (INLINE_LIMIT_BYTES + 10)}, "summary": "big"}
    assert api("PUT", f"{BASE}/{session_id}/results", body=big).status == 200
    item = next(i for i in all_items(table) if i["SK"] == "RESULTS")
    assert "document" not in item and item["payload_key"].startswith(f"sessions/alice/{session_id}/")
    objects = boto3.client("s3").list_objects_v2(
        Bucket=os.environ["BUCKET_NAME"], Prefix=f"sessions/alice/{session_id}/"
    )
    assert objects["KeyCount"] == 1
    assert api("GET", f"{BASE}/{session_id}/results").body["results"] == big["results"]


def test_bad_results_change_nothing(api: Api, table: Any) -> None:
    session_id = api.create_session()["session_id"]
    before = all_items(table)
    for bad in ({"confidence_score": 1.5}, {"status": "completed"}, {"citations": "x"}, {"summary": 3}):
        result = api("PUT", f"{BASE}/{session_id}/results", body=bad)
        assert result.status == 422, (bad, result.body)
    assert all_items(table) == before


def test_an_editor_stores_results_but_only_the_owner_completes(api: Api, table: Any) -> None:
    session_id = api.create_session()["session_id"]
    shared = api("POST", f"{BASE}/{session_id}/share", body={"recipients": ["bob"], "permissions": "edit"})
    assert shared.status == 201, shared.body
    assert api("PUT", f"{BASE}/{session_id}/results", body={"summary": "s"}, user="bob").status == 200
    completing = api("PUT", f"{BASE}/{session_id}/results", body={"summary": "s", "complete": True}, user="bob")
    assert completing.problem["code"] == "session_not_accessible"
    assert session_item(table, session_id)["status"] == "active"


def test_results_on_an_expired_session_are_refused(api: Api, table: Any) -> None:
    session_id = api.create_session()["session_id"]
    table.update_item(
        Key={"PK": f"SESSION#{session_id}", "SK": "#SESSION"},
        UpdateExpression="SET #s = :e",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":e": "expired"},
    )
    result = api("PUT", f"{BASE}/{session_id}/results", body={"summary": "late"})
    assert result.problem["code"] == "session_expired"


def test_metrics_and_history_match_what_happened(api: Api, table: Any) -> None:
    # Given a session with a prompt, a user and an assistant message (tokens, one error), renamed,
    # paused, resumed and completed with results
    session_id = api.create_session(title="Plan", prompt="Plan a trip")["session_id"]
    appended = api(
        "POST",
        f"{BASE}/{session_id}/messages",
        body={
            "messages": [
                {"role": "user", "content": "More detail", "token_count": 7},
                {"role": "assistant", "content": "Sure", "token_count": 11, "is_error": True},
                {"role": "system", "content": "note"},
            ]
        },
    )
    assert appended.status == 201, appended.body
    assert api("PATCH", f"{BASE}/{session_id}", body={"title": "Plan v2"}).status == 200
    assert api("POST", f"{BASE}/{session_id}/pause", body={"reason": "lunch"}).status == 200
    assert api("POST", f"{BASE}/{session_id}/resume").status == 200
    assert api("PUT", f"{BASE}/{session_id}/results", body={**RESULTS, "complete": True}).status == 200
    # When the owner reads the metrics
    metrics = api("GET", f"{BASE}/{session_id}/metrics").body
    # Then they count what was written
    assert metrics["status"] == "completed"
    assert metrics["message_counts"] == {"user": 2, "assistant": 1, "system": 1, "total": 4}
    assert metrics["token_usage"] == {"input_tokens": 7, "output_tokens": 11, "total_tokens": 18}
    assert metrics["error_count"] == 1 and metrics["turn_count"] == 2
    assert metrics["execution_time"]["ended_at"] is not None and metrics["execution_time"]["seconds"] >= 0
    assert metrics["cost_breakdown"]["currency"] == "USD"
    # And the history, oldest first, tells the story in order, page by page
    timeline, cursor = [], None
    while True:
        page = api(
            "GET", f"{BASE}/{session_id}/history", query={"limit": "2", **({"cursor": cursor} if cursor else {})}
        )
        assert page.status == 200
        timeline += page.body["timeline"]
        cursor = page.body["next_cursor"]
        assert page.body["has_more"] == (cursor is not None)
        if cursor is None:
            break
    kinds = [event["type"] for event in timeline]
    assert kinds[0] == "created" and "renamed" in kinds and "messages_added" in kinds
    changes = [(e["details"]["action"], e["details"]["to"]) for e in timeline if e["type"] == "status_changed"]
    assert changes == [("pause", "paused"), ("resume", "active"), ("complete", "completed")]
    assert all(event["actor"] == "alice" and event["at"] for event in timeline)
    assert [event["at"] for event in timeline] == sorted(event["at"] for event in timeline)
    newest_first = api("GET", f"{BASE}/{session_id}/history", query={"order": "desc", "limit": "100"}).body
    assert [event["event_id"] for event in newest_first["timeline"]] == [e["event_id"] for e in reversed(timeline)]
    assert_counters_exact(table, "alice")


def test_history_cursor_is_tamper_proof_and_bound_to_its_listing(api: Api) -> None:
    session_id = api.create_session()["session_id"]
    other = api.create_session()["session_id"]
    for _ in range(3):
        api("PATCH", f"{BASE}/{session_id}", body={"title": "again"})
    cursor = api("GET", f"{BASE}/{session_id}/history", query={"limit": "1"}).body["next_cursor"]
    assert api("GET", f"{BASE}/{session_id}/history", query={"cursor": cursor[:-2] + "AA"}).status == 400
    assert api("GET", f"{BASE}/{other}/history", query={"cursor": cursor}).status == 400
    desc = api("GET", f"{BASE}/{session_id}/history", query={"cursor": cursor, "order": "desc"})
    assert desc.status == 400
    assert api("GET", f"{BASE}/{session_id}/history", query={"cursor": cursor}, user="bob").status == 404


def test_request_counts(api: Api, ddb_calls: list[str]) -> None:
    session_id = api.create_session(prompt="hi")["session_id"]
    ddb_calls.clear()
    api("POST", f"{BASE}/{session_id}/pause")
    assert ddb_calls == ["TransactWriteItems", "BatchGetItem"], "the transition, then the session read back"
    ddb_calls.clear()
    api("POST", f"{BASE}/{session_id}/end")
    assert ddb_calls == ["TransactWriteItems", "TransactWriteItems", "BatchGetItem"], (
        "assumed active, learned paused from the refusal, one more transaction"
    )
    ddb_calls.clear()
    api("POST", f"{BASE}/{session_id}/end")
    assert ddb_calls == ["TransactWriteItems"], "an illegal transition costs the refused transaction only"
    other = api.create_session()["session_id"]
    ddb_calls.clear()
    api("PUT", f"{BASE}/{other}/results", body={"summary": "s"})
    assert ddb_calls == ["TransactWriteItems"]
    ddb_calls.clear()
    api("PUT", f"{BASE}/{other}/results", body={"summary": "s", "complete": True})
    assert ddb_calls == ["TransactWriteItems"], "results, completion, counters and history in one transaction"
    ddb_calls.clear()
    api("GET", f"{BASE}/{other}/results")
    assert ddb_calls == ["BatchGetItem", "GetItem"]
    ddb_calls.clear()
    api("GET", f"{BASE}/{other}/metrics")
    assert ddb_calls == ["BatchGetItem"], "every metric is a counter on the session item"
    ddb_calls.clear()
    api("GET", f"{BASE}/{other}/history")
    assert ddb_calls == ["BatchGetItem", "Query"]
    assert "Scan" not in ddb_calls


def test_results_json_is_stored_verbatim(api: Api, table: Any) -> None:
    # DynamoDB maps refuse empty keys and floats; the document is kept as JSON text instead.
    session_id = api.create_session()["session_id"]
    odd = {"results": {"": 1, "nested": [[[1.25]]], "big": 12345678901234567890}}
    assert api("PUT", f"{BASE}/{session_id}/results", body=odd).status == 200
    item = next(i for i in all_items(table) if i["SK"] == "RESULTS")
    assert json.loads(item["document"])["results"] == odd["results"]
    assert api("GET", f"{BASE}/{session_id}/results").body["results"] == odd["results"]
