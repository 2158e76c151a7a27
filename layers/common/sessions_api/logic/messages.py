"""Message items and what appending them does to the session's counters."""

from __future__ import annotations

from typing import Any

from sessions_api import ids
from sessions_api.dal import keys, payloads
from sessions_api.dal.expressions import Expr
from sessions_api.models.entities import PREVIEW_CHARS, plain


def preview(content: str) -> str:
    return content if len(content) <= PREVIEW_CHARS else content[: PREVIEW_CHARS - 1] + "…"


def message_item(session_id: str, *, role: str, content: str, at: str, **fields: Any) -> dict[str, Any]:
    message_id = ids.new_id("msg")
    return {
        **keys.message_key(session_id, message_id),
        "type": "message",
        "message_id": message_id,
        "session_id": session_id,
        "role": role,
        "content": content,
        "created_at": at,
        "is_error": False,
        **{name: value for name, value in fields.items() if value is not None},
    }


def stored(item: dict[str, Any], owner: str | None) -> dict[str, Any]:
    """The item as stored: its content's size, and a large content moved to S3 (written first)."""
    content = item["content"]
    result = {**item, "content_bytes": len(content.encode("utf-8"))}
    if payloads.needs_s3(content):
        assert owner is not None, "the owner's prefix is needed for a large content"
        result.pop("content")
        result["payload_key"] = payloads.store(owner, item["session_id"], item["message_id"], content)
        result["content_preview"] = preview(content)
    return result


def initial_counters(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The session attributes for a session created with these messages already in it."""
    counters: dict[str, Any] = {"message_count": len(messages), "turn_count": 0, "error_count": 0}
    for role in ("user", "assistant", "system"):
        counters[f"{role}_messages"] = sum(1 for message in messages if message["role"] == role)
    counters["turn_count"] = counters["user_messages"]
    if messages:
        counters["last_message_preview"] = preview(messages[-1]["content"])
        counters["last_message_id"] = messages[-1]["message_id"]
    return counters


def count_appended(expr: Expr, messages: list[dict[str, Any]]) -> Expr:
    """ADD the appended messages to the session's counters (atomic with the message puts)."""
    expr.add("message_count", len(messages))
    for role in ("user", "assistant", "system"):
        count = sum(1 for message in messages if message["role"] == role)
        if count:
            expr.add(f"{role}_messages", count)
            if role == "user":
                expr.add("turn_count", count)
    errors = sum(1 for message in messages if message.get("is_error"))
    if errors:
        expr.add("error_count", errors)
    input_tokens = sum(message.get("token_count", 0) for message in messages if message["role"] != "assistant")
    output_tokens = sum(message.get("token_count", 0) for message in messages if message["role"] == "assistant")
    if input_tokens:
        expr.add("input_tokens", input_tokens)
    if output_tokens:
        expr.add("output_tokens", output_tokens)
    # The id tells a later delete whether it removes the newest message (whose preview must change).
    if messages[-1].get("message_id"):
        expr.set("last_message_id", messages[-1]["message_id"])
    return expr.set("last_message_preview", preview(messages[-1]["content"]))


def count_removed(expr: Expr, message: dict[str, Any]) -> Expr:
    """ADD what `count_appended` added for this one message, negated (atomic with its delete)."""
    role = message["role"]
    expr.add("message_count", -1).add(f"{role}_messages", -1)
    if role == "user":
        expr.add("turn_count", -1)
    if message.get("is_error"):
        expr.add("error_count", -1)
    tokens = int(message.get("token_count", 0))
    if tokens:
        expr.add("output_tokens" if role == "assistant" else "input_tokens", -tokens)
    return expr


def message_out(item: dict[str, Any]) -> dict[str, Any]:
    data = plain(item)
    return {
        "message_id": data["message_id"],
        "session_id": data["session_id"],
        "role": data["role"],
        "content": data["content"],
        "created_at": data["created_at"],
        "token_count": data.get("token_count"),
        "model_id": data.get("model_id"),
        "agent_name": data.get("agent_name"),
        "response_time_ms": data.get("response_time_ms"),
        "is_error": bool(data.get("is_error", False)),
        **({"metadata": data["metadata"]} if data.get("metadata") else {}),
    }
