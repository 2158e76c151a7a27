"""Chat, in-process with moto: the local echo model, and Bedrock's Converse API through botocore's Stubber."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY

from tests.conftest import all_items
from tests.support import Api, load_function

BASE = "/api/v1/sessions"
NOVA_LITE = "amazon.nova-lite-v1:0"
CHAT_PROMPT = "You are a helpful, concise assistant. Answer in the language of the user's last message."


def chat(api: Api, session_id: str, message: str, user: str = "alice") -> Any:
    return api("POST", f"{BASE}/{session_id}/chat", body={"message": message}, user=user)


def stored_messages(api: Api, session_id: str, user: str = "alice") -> list[dict[str, Any]]:
    result = api("GET", f"{BASE}/{session_id}/messages", query={"limit": "500"}, user=user)
    assert result.status == 200, result.body
    return result.body["messages"]


def converse_response(text: str, input_tokens: int = 120, output_tokens: int = 40) -> dict[str, Any]:
    """The shape Bedrock's Converse API answers with."""
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {
            "inputTokens": input_tokens,
            "outputTokens": output_tokens,
            "totalTokens": input_tokens + output_tokens,
        },
        "metrics": {"latencyMs": 850},
    }


class FakeBedrock:
    """Bedrock Runtime's ConverseStream, answering from a queue the test fills like botocore's Stubber (which
    cannot build an event stream): each Converse-shaped response is streamed in two deltas."""

    def __init__(self) -> None:
        self.queue: list[tuple[dict[str, Any] | ClientError, dict[str, Any] | None]] = []

    def add_response(self, operation: str, response: dict[str, Any], expected: dict[str, Any] | None = None) -> None:
        assert operation == "converse"
        self.queue.append((response, expected))

    def add_client_error(
        self, operation: str, *, service_error_code: str, service_message: str, http_status_code: int
    ) -> None:
        error = {"Error": {"Code": service_error_code, "Message": service_message}}
        self.queue.append(
            (ClientError({**error, "ResponseMetadata": {"HTTPStatusCode": http_status_code}}, "ConverseStream"), None)
        )

    def converse_stream(self, **params: Any) -> dict[str, Any]:
        response, expected = self.queue.pop(0)
        if expected is not None:
            assert expected == params, params
        if isinstance(response, ClientError):
            raise response
        text = "".join(block["text"] for block in response["output"]["message"]["content"])
        half = len(text) // 2
        events = [{"messageStart": {"role": "assistant"}}]
        events += [
            {"contentBlockDelta": {"delta": {"text": part}, "contentBlockIndex": 0}}
            for part in (text[:half], text[half:])
            if part
        ]
        events += [
            {"contentBlockStop": {"contentBlockIndex": 0}},
            {"messageStop": {"stopReason": response["stopReason"]}},
        ]
        events.append({"metadata": {"usage": response["usage"], "metrics": response["metrics"]}})
        return {"stream": iter(events)}

    def assert_no_pending_responses(self) -> None:
        assert not self.queue, f"{len(self.queue)} responses remaining in queue"


@pytest.fixture
def bedrock(api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBedrock]:
    """The chat worker answering through the Bedrock provider, its client a FakeBedrock."""
    from sessions_api.dal import clients
    from sessions_api.dal.bedrock import BedrockConverseProvider

    fake = FakeBedrock()
    monkeypatch.setattr(load_function("ChatWorkerFunction"), "provider", BedrockConverseProvider)
    monkeypatch.setattr(clients, "bedrock_runtime", lambda: fake)
    yield fake
    fake.assert_no_pending_responses()


# -- the local echo model ---------------------------------------------------------------------------


def test_chat_stores_both_messages_and_answers_with_usage(api: Api) -> None:
    # Given a session with some history
    sid = api.create_session(prompt="I plan a trip to Lisbon")["session_id"]
    api("POST", f"{BASE}/{sid}/messages", body={"role": "assistant", "content": "Lovely city!"})
    # When the user chats
    result = chat(api, sid, "What should I see first?")
    # Then the answer comes back with where it was stored and what it used
    assert result.status == 200, result.body
    body = result.body
    assert body["response"].startswith("Echo: What should I see first?")
    assert "(2 earlier turns in context)" in body["response"]
    assert body["session_id"] == sid and body["model_id"] == "local-echo"
    assert body["request_id"] and body["execution_time"] >= 0
    usage = body["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0 and usage["cost_usd"] == 0
    # And the conversation holds the user's message and the reply, with the reply's details
    messages = stored_messages(api, sid)
    assert [(m["role"], m["content"]) for m in messages[2:]] == [
        ("user", "What should I see first?"),
        ("assistant", body["response"]),
    ]
    assert messages[2]["message_id"] == body["user_message_id"]
    reply = messages[3]
    assert reply["message_id"] == body["message_id"] and reply["is_error"] is False
    assert reply["model_id"] == "local-echo" and reply["agent_name"] == "chat"
    assert reply["token_count"] == usage["output_tokens"] and reply["response_time_ms"] >= 0
    # And the session's counters follow
    session = api("GET", f"{BASE}/{sid}").body
    assert session["message_count"] == 4 and session["turn_count"] == 2
    assert session["token_usage"]["input_tokens"] == usage["input_tokens"]
    assert session["token_usage"]["output_tokens"] == usage["output_tokens"]
    assert session["last_message_preview"] == body["response"]


def test_chat_without_a_session_starts_a_temporary_one(api: Api, table: Any) -> None:
    result = api(
        "POST",
        "/api/v1/chat",
        body={"message": "  Quick question:\nhow far is the Moon? ", "metadata": {"client": "cli"}},
    )
    assert result.status == 200, result.body
    sid = result.body["session_id"]
    session = api("GET", f"{BASE}/{sid}").body
    assert session["title"] == "Quick question: how far is the Moon?"
    assert session["metadata"] == {"client": "cli"}
    assert session["message_count"] == 2
    # It expires after the short temporary idle timeout (60 minutes by default)
    from sessions_api import timeutil

    idle = timeutil.parse(session["expires_at"]) - timeutil.parse(session["last_activity_at"])
    assert idle.total_seconds() == 60 * 60
    assert table.get_item(Key={"PK": f"SESSION#{sid}", "SK": "#SESSION"})["Item"]["temporary"] is True
    # And the message's own metadata is kept with it
    assert stored_messages(api, sid)[0]["metadata"] == {"client": "cli"}
    # A chat naming the session goes on in it
    again = api("POST", "/api/v1/chat", body={"message": "And the Sun?", "session_id": sid})
    assert again.status == 200 and again.body["session_id"] == sid
    assert len(stored_messages(api, sid)) == 4


def test_the_conversation_is_the_models_context(api: Api) -> None:
    sid = api.create_session()["session_id"]
    for n in range(3):
        assert chat(api, sid, f"turn {n}").status == 200
    # Three earlier user/assistant exchanges are six earlier turns
    assert "(6 earlier turns in context)" in chat(api, sid, "and now?").body["response"]


def test_a_large_message_is_chatted_through_s3(api: Api, table: Any) -> None:
    sid = api.create_session(agent_name="research")["session_id"]  # an agent with room for long material
    content = "€" * 30_000  # 90 KB
    result = chat(api, sid, content)
    assert result.status == 200
    user = stored_messages(api, sid)[0]
    assert user["content"] == content
    item = table.get_item(Key={"PK": f"SESSION#{sid}", "SK": f"MSG#{user['message_id']}"})["Item"]
    assert item["payload_key"].startswith(f"sessions/alice/{sid}/payloads/")
    # It is part of the next chat's context, read back from S3
    assert "(2 earlier turns in context)" in chat(api, sid, "short").body["response"]


def test_a_chat_while_another_runs_is_busy_until_its_lease_ends(api: Api, table: Any) -> None:
    # Given a session whose turn a run holds (running, or crashed holding it)
    sid = api.create_session()["session_id"]
    key = {"PK": f"SESSION#{sid}", "SK": "#SESSION"}
    table.update_item(
        Key=key,
        UpdateExpression="SET active_run = :r, active_run_until = :t",
        ExpressionAttributeValues={":t": int(time.time()) + 60, ":r": "other"},
    )
    before = all_items(table)
    # When another chat arrives, then it is 409 session_busy and stores nothing
    busy = chat(api, sid, "hello?")
    assert busy.status == 409 and busy.problem["code"] == "session_busy"
    assert busy.headers["Retry-After"]
    assert all_items(table) == before
    # When the lease has run out (its worker crashed), the next chat takes the turn and gives it back
    table.update_item(
        Key=key, UpdateExpression="SET active_run_until = :t", ExpressionAttributeValues={":t": int(time.time()) - 1}
    )
    assert chat(api, sid, "hello?").status == 200
    assert "active_run" not in table.get_item(Key=key)["Item"]


@pytest.mark.parametrize(
    ("status", "code"), [("expired", "session_expired"), ("completed", "conflict"), ("cancelled", "conflict")]
)
def test_a_closed_session_takes_no_chat(api: Api, table: Any, status: str, code: str) -> None:
    sid = api.create_session()["session_id"]
    table.update_item(
        Key={"PK": f"SESSION#{sid}", "SK": "#SESSION"},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": status},
    )
    before = all_items(table)
    result = chat(api, sid, "anyone?")
    assert result.status == 409 and result.problem["code"] == code
    assert all_items(table) == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"message": ""},
        {"message": "x" * 100_001},
        {"message": "hi", "role": "user"},
        {"message": "hi", "session_id": "nope"},
    ],
    ids=["missing", "empty", "too long", "unknown field", "bad session id"],
)
def test_bad_chats_are_refused_with_nothing_written(api: Api, table: Any, body: dict[str, Any]) -> None:
    before = all_items(table)
    result = api("POST", "/api/v1/chat", body=body)
    assert result.status == 422 and result.problem["code"] == "validation_error"
    assert all_items(table) == before


# -- budget -----------------------------------------------------------------------------------------


def test_a_chat_past_the_token_budget_is_402_and_stores_nothing(api: Api, table: Any) -> None:
    sid = api.create_session(budget={"max_tokens": 120})["session_id"]
    first = chat(api, sid, "hi")
    assert first.status == 200, first.body
    used = first.body["usage"]["total_tokens"]
    before = all_items(table)
    over = chat(api, sid, "tell me everything " * 20)
    assert over.status == 402 and over.problem["code"] == "insufficient_balance"
    assert all_items(table) == before
    assert api("GET", f"{BASE}/{sid}").body["token_usage"]["total_tokens"] == used


def test_the_cost_budget_caps_the_answer_and_then_refuses(api: Api, bedrock: FakeBedrock, table: Any) -> None:
    # Given a session on Nova Lite ($0.06 / $0.24 per million tokens) with a tiny cost budget
    sid = api.create_session(model_id=NOVA_LITE, budget={"max_cost_usd": 0.0001})["session_id"]
    # When the user chats, the model may answer only what the budget can still pay for
    bedrock.add_response(
        "converse",
        converse_response("Short answer.", input_tokens=50, output_tokens=300),
        {
            "modelId": NOVA_LITE,
            "messages": ANY,
            "system": ANY,
            "inferenceConfig": {"maxTokens": 408, "temperature": 0.5},
        },
    )
    result = chat(api, sid, "hello")
    assert result.status == 200, result.body
    cost = 50 * 0.06 / 1e6 + 300 * 0.24 / 1e6
    assert result.body["usage"]["cost_usd"] == pytest.approx(cost)
    assert api("GET", f"{BASE}/{sid}").body["token_usage"]["cost_usd"] == pytest.approx(cost)
    # Then, with the budget nearly spent, the next chat is refused before anything is stored or asked
    before = all_items(table)
    over = chat(api, sid, "more please " * 200)
    assert over.status == 402 and over.problem["code"] == "insufficient_balance"
    assert all_items(table) == before


# -- Bedrock --------------------------------------------------------------------------------------


def test_bedrock_gets_the_agents_prompt_and_alternating_turns(api: Api, bedrock: FakeBedrock, table: Any) -> None:
    # Given a conversation with a system note, an error reply and two user messages in a row
    sid = api.create_session()["session_id"]
    api(
        "POST",
        f"{BASE}/{sid}/messages",
        body={
            "messages": [
                {"role": "assistant", "content": "Welcome!"},
                {"role": "user", "content": "Hi"},
                {"role": "system", "content": "The user is a beginner."},
                {"role": "assistant", "content": "Hello, how can I help?"},
                {"role": "user", "content": "Explain DynamoDB"},
                {"role": "assistant", "content": "The model could not answer", "is_error": True},
            ]
        },
    )
    # When the user chats, Bedrock is asked with the agent's prompt (plus the system note) and proper turns
    bedrock.add_response(
        "converse",
        converse_response("DynamoDB is a key-value and document database."),
        {
            "modelId": NOVA_LITE,
            "system": [{"text": CHAT_PROMPT + "\n\nThe user is a beginner."}],
            "messages": [
                {"role": "user", "content": [{"text": "Hi"}]},
                {"role": "assistant", "content": [{"text": "Hello, how can I help?"}]},
                {"role": "user", "content": [{"text": "Explain DynamoDB\n\nPlease, in one sentence"}]},
            ],
            "inferenceConfig": {"maxTokens": 1024, "temperature": 0.5},
        },
    )
    result = chat(api, sid, "Please, in one sentence")
    # Then its answer, usage and price come back and are stored
    assert result.status == 200, result.body
    assert result.body["response"] == "DynamoDB is a key-value and document database."
    assert result.body["model_id"] == NOVA_LITE
    assert result.body["usage"] == {
        "input_tokens": 120,
        "output_tokens": 40,
        "total_tokens": 160,
        "cost_usd": pytest.approx((120 * 0.06 + 40 * 0.24) / 1e6),
    }
    reply = stored_messages(api, sid)[-1]
    assert (reply["role"], reply["model_id"], reply["token_count"]) == ("assistant", NOVA_LITE, 40)
    session = api("GET", f"{BASE}/{sid}").body
    assert session["token_usage"]["input_tokens"] == 120 and session["token_usage"]["output_tokens"] == 40


def test_the_sessions_model_and_agent_are_used(api: Api, bedrock: FakeBedrock) -> None:
    haiku = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
    sid = api.create_session(model_id=haiku, agent_name="analysis")["session_id"]
    bedrock.add_response(
        "converse",
        converse_response("Findings: ..."),
        {
            "modelId": haiku,
            "system": [{"text": ANY}],
            "messages": ANY,
            "inferenceConfig": {"maxTokens": 2048, "temperature": 0.2},
        },
    )
    result = chat(api, sid, "Analyse this")
    assert result.status == 200
    # Priced as the model behind the cross-region profile: $0.80 / $4.00 per million
    assert result.body["usage"]["cost_usd"] == pytest.approx((120 * 0.8 + 40 * 4.0) / 1e6)


@pytest.mark.parametrize(
    ("error", "http_status", "status", "code"),
    [
        ("ThrottlingException", 429, 503, "service_unavailable"),
        ("ModelTimeoutException", 408, 503, "service_unavailable"),
        ("ServiceUnavailableException", 503, 503, "service_unavailable"),
        ("ValidationException", 400, 502, "model_error"),
        ("AccessDeniedException", 403, 502, "model_error"),
    ],
)
def test_a_failing_model_keeps_the_users_message_and_stores_an_error_reply(
    api: Api, bedrock: FakeBedrock, error: str, http_status: int, status: int, code: str
) -> None:
    sid = api.create_session()["session_id"]
    bedrock.add_client_error(
        "converse", service_error_code=error, service_message="the model said no", http_status_code=http_status
    )
    # When the model fails
    result = chat(api, sid, "Are you there?")
    # Then the client gets a problem naming what was stored
    assert result.status == status and result.problem["code"] == code
    assert (status == 503) == ("Retry-After" in result.headers)
    problem = result.problem
    assert problem["session_id"] == sid
    # And the user's message and an error reply are stored
    messages = stored_messages(api, sid)
    assert [(m["role"], m["is_error"]) for m in messages] == [("user", False), ("assistant", True)]
    assert messages[0]["message_id"] == problem["user_message_id"] and messages[0]["content"] == "Are you there?"
    assert messages[1]["message_id"] == problem["message_id"] and error in messages[1]["content"]
    assert "the model said no" not in messages[1]["content"], "the provider's message stays in the log"
    assert messages[1]["model_id"] == NOVA_LITE
    if (metrics := api("GET", f"{BASE}/{sid}/metrics")).status == 200:
        assert metrics.body["error_count"] == 1
    session = api("GET", f"{BASE}/{sid}").body
    assert session["message_count"] == 2 and session["token_usage"]["total_tokens"] == 0
    # And the lock is free: a retry goes through, without the error reply as context
    bedrock.add_response(
        "converse",
        converse_response("Yes."),
        {
            "modelId": NOVA_LITE,
            "system": ANY,
            "messages": [{"role": "user", "content": [{"text": "Are you there?\n\nAre you there?"}]}],
            "inferenceConfig": ANY,
        },
    )
    assert chat(api, sid, "Are you there?").status == 200


def test_an_empty_model_answer_is_a_model_error(api: Api, bedrock: FakeBedrock) -> None:
    sid = api.create_session()["session_id"]
    response = converse_response("")
    response["stopReason"] = "content_filtered"
    bedrock.add_response("converse", response)
    result = chat(api, sid, "something")
    assert result.status == 502 and result.problem["code"] == "model_error"
    assert [m["is_error"] for m in stored_messages(api, sid)] == [False, True]
