"""Paging through one kind of item in a session's partition (messages, comments, shares, events, exports)."""

from __future__ import annotations

from typing import Any

from sessions_api import errors
from sessions_api.cursor import CursorCodec
from sessions_api.dal import keys, table
from sessions_api.dal.sessions_repo import Page


def page(session_id: str, prefix: str, *, limit: int, start_key: dict[str, Any] | None, ascending: bool = True) -> Page:
    """One strongly consistent page of a session's items whose sort key starts with `prefix`."""
    request: dict[str, Any] = {
        "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
        "ExpressionAttributeValues": {":pk": keys.session_pk(session_id), ":prefix": prefix},
        "ScanIndexForward": ascending,
        "Limit": limit + 1,
        "ConsistentRead": True,
    }
    if start_key:
        request["ExclusiveStartKey"] = start_key
    response = table.query(**request)
    items = response["Items"]
    if len(items) > limit:
        items = items[:limit]
        return Page(items=items, next_key={"PK": items[-1]["PK"], "SK": items[-1]["SK"]})
    # A query stops at 1 MB read: its LastEvaluatedKey is where the next page starts, never the end.
    return Page(items=items, next_key=response.get("LastEvaluatedKey"))


def resume_key(
    cursors: CursorCodec, cursor: str | None, *, user: str, scope: str, session_id: str, prefix: str
) -> dict[str, Any] | None:
    """The key a signed cursor resumes from, refused unless it points into this session's `prefix` items."""
    if cursor is None:
        return None
    start = cursors.decode(cursor, user=user, scope=scope)
    if start.get("PK") != keys.session_pk(session_id) or not str(start.get("SK", "")).startswith(prefix):
        raise errors.BadRequest("The cursor does not belong to this listing")
    return {"PK": start["PK"], "SK": start["SK"]}
