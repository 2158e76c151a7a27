"""Messages and chat through the local gateway, as a client sees them (the model is the local echo)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.e2e.conftest import ApiClient


def test_a_conversation_end_to_end(api: ApiClient) -> None:
    # Given a new session
    created = api.post("/api/v1/sessions", json={"title": "E2E chat"})
    assert created.status_code == 201, created.text
    sid = created.json()["session_id"]

    # When the user chats twice
    first = api.post(f"/api/v1/sessions/{sid}/chat", json={"message": "Hello, model"})
    assert first.status_code == 200, first.text
    second = api.post(f"/api/v1/sessions/{sid}/chat", json={"message": "Tell me more"})
    assert second.status_code == 200, second.text
    assert second.json()["response"].startswith("Echo: Tell me more")
    assert "(2 earlier turns in context)" in second.json()["response"]

    # Then the messages read back in order, each pair as the chat answered it
    listing = api.get(f"/api/v1/sessions/{sid}/messages")
    assert listing.status_code == 200
    messages = listing.json()["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "Hello, model"),
        ("assistant", first.json()["response"]),
        ("user", "Tell me more"),
        ("assistant", second.json()["response"]),
    ]
    assert [m["message_id"] for m in messages[1::2]] == [first.json()["message_id"], second.json()["message_id"]]
    newest_first = api.get(f"/api/v1/sessions/{sid}/messages", params={"order": "desc", "limit": 1}).json()
    assert newest_first["messages"][0]["message_id"] == second.json()["message_id"] and newest_first["has_more"]

    # And the session's counters say the same
    session = api.get(f"/api/v1/sessions/{sid}").json()
    assert session["message_count"] == 4 and session["turn_count"] == 2
    usage = [first.json()["usage"], second.json()["usage"]]
    assert session["token_usage"]["input_tokens"] == sum(u["input_tokens"] for u in usage)
    assert session["token_usage"]["output_tokens"] == sum(u["output_tokens"] for u in usage)
    assert session["last_message_preview"] == second.json()["response"]  # short enough to be its own preview


def test_chat_without_a_session_and_a_large_message(api: ApiClient) -> None:
    started = api.post("/api/v1/chat", json={"message": "Start something new"})
    assert started.status_code == 200, started.text
    sid = started.json()["session_id"]
    content = "€" * 100_000  # 300 KB: stored through S3
    stored = api.post(f"/api/v1/sessions/{sid}/messages", json={"role": "user", "content": content})
    assert stored.status_code == 201, stored.text
    again = api.get(f"/api/v1/sessions/{sid}/messages/{stored.json()['message_id']}")
    assert again.status_code == 200 and again.json()["content"] == content
    assert api.get(f"/api/v1/sessions/{sid}").json()["message_count"] == 3


def test_someone_elses_session_is_not_found(api: ApiClient, gateway: object) -> None:
    sid = api.post("/api/v1/sessions", json={}).json()["session_id"]
    with gateway.as_user("mallory") as mallory:  # type: ignore[attr-defined]
        assert mallory.get(f"/api/v1/sessions/{sid}/messages").status_code == 404
        refused = mallory.post(f"/api/v1/sessions/{sid}/chat", json={"message": "hi"})
        assert refused.status_code == 404 and refused.json()["code"] == "session_not_found"
