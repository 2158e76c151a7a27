"""Messages: one item each in the session's partition, sorted by their time-ordered ids.

Contents too large for an item live in S3 (`dal/payloads`); every read here returns them in place,
so callers never see the difference.
"""

from __future__ import annotations

from typing import Any

from sessions_api.dal import keys, payloads, table
from sessions_api.dal.items import preview
from sessions_api.dal.sessions_repo import Page, with_access
from sessions_api.identity import Caller

# A page stops early rather than outgrow Lambda's 6 MB response (JSON escaping can double some text).
PAGE_CONTENT_BYTES = 2_500_000


def content_bytes(item: dict[str, Any]) -> int:
    if "content_bytes" in item:
        return int(item["content_bytes"])
    return len(str(item.get("content", "")).encode("utf-8"))


def _key(item: dict[str, Any]) -> dict[str, Any]:
    return {"PK": item["PK"], "SK": item["SK"]}


class MessagesRepo:
    def page(self, session_id: str, *, limit: int, ascending: bool, start_key: dict[str, Any] | None) -> Page:
        """Up to `limit` messages from `start_key` on, contents resolved, in one Query (plus S3 for large ones).

        A page may be shorter than `limit` (DynamoDB's 1 MB per query, or the page's content budget);
        `next_key` then still says where to go on, so nothing is ever skipped.
        """
        request: dict[str, Any] = {
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": {":pk": keys.session_pk(session_id), ":prefix": keys.MESSAGE_PREFIX},
            "ScanIndexForward": ascending,
            "Limit": limit + 1,
            "ConsistentRead": True,
        }
        if start_key:
            request["ExclusiveStartKey"] = start_key
        response = table.query(**request)
        items, last_key = response["Items"], response.get("LastEvaluatedKey")
        kept: list[dict[str, Any]] = []
        total = 0
        for item in items[:limit]:
            size = content_bytes(item)
            if kept and total + size > PAGE_CONTENT_BYTES:
                break
            kept.append(item)
            total += size
        more = len(kept) < len(items) or last_key is not None
        next_key = (_key(kept[-1]) if kept else last_key) if more else None
        return Page(items=payloads.resolve(kept), next_key=next_key)

    def newest(self, session_id: str, *, limit: int) -> list[dict[str, Any]]:
        """The newest messages, newest first, contents NOT resolved (callers pick what they need)."""
        response = table.query(
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            ExpressionAttributeValues={":pk": keys.session_pk(session_id), ":prefix": keys.MESSAGE_PREFIX},
            ScanIndexForward=False,
            Limit=limit,
            ConsistentRead=True,
        )
        items: list[dict[str, Any]] = response["Items"]
        return items

    def get_with_access(
        self, session_id: str, message_id: str, caller: Caller
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]], dict[str, Any] | None]:
        """The session, the caller's shares of it and the message, in one strongly consistent request."""
        return with_access(session_id, caller, keys.message_key(session_id, message_id))

    @staticmethod
    def offload(messages: list[dict[str, Any]], owner: str | None) -> list[dict[str, Any]]:
        """The messages as stored: each content's size, and a content too large for its item written to S3
        under the owner's prefix first (an object whose transaction then fails is purged with the session;
        a message pointing at nothing would be data loss)."""
        stored = []
        for item in messages:
            content = item["content"]
            result = {**item, "content_bytes": len(content.encode("utf-8"))}
            if payloads.needs_s3(content):
                assert owner is not None, "the owner's prefix is needed for a large content"
                result.pop("content")
                result["payload_key"] = payloads.store(owner, item["session_id"], item["message_id"], content)
                result["content_preview"] = preview(content)
            stored.append(result)
        return stored
