"""Messages: one item each in the session's partition, sorted by their time-ordered ids."""

from __future__ import annotations

from typing import Any

from sessions_api.dal import keys, table
from sessions_api.dal.sessions_repo import Page


class MessagesRepo:
    def page(self, session_id: str, *, limit: int, ascending: bool, start_key: dict[str, Any] | None) -> Page:
        request: dict[str, Any] = {
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": {":pk": keys.session_pk(session_id), ":prefix": keys.MESSAGE_PREFIX},
            "ScanIndexForward": ascending,
            "Limit": limit + 1,
            "ConsistentRead": True,
        }
        if start_key:
            request["ExclusiveStartKey"] = start_key
        items = table.query(**request)["Items"]
        if len(items) > limit:
            items = items[:limit]
            return Page(items=items, next_key={"PK": items[-1]["PK"], "SK": items[-1]["SK"]})
        return Page(items=items, next_key=None)
