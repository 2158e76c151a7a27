"""A user's write rate, limited so that no key of theirs runs hot (docs/capacity.md).

Every write transaction on a user's behalf also adds its weight (its messages, by the KB) to a counter item
of that user and the current second, conditioned on staying within the limit: one more item in a
transaction the write makes anyway, so the limit costs no request and a refused write stores nothing. The
counter lives in the user's own partition and expires a minute later.
"""

from __future__ import annotations

import json
from typing import Any

from sessions_api import errors, timeutil
from sessions_api.dal import keys, table
from sessions_api.dal.expressions import Expr
from sessions_api.settings import get_settings

COUNTER_TTL_SECONDS = 60


def weight(puts: list[dict[str, Any]]) -> int:
    """What a write counts for: each started KB of every message it stores (a batch counts them all; a large
    message, what it costs its session's partition), at least one."""
    return max(1, sum(-(-_stored_bytes(item) // 1024) for item in puts if item.get("type") == "message"))


def _stored_bytes(item: dict[str, Any]) -> int:
    """About the item's size as DynamoDB bills it (names and values; JSON's quotes stand for its overhead)."""
    return len(json.dumps(item, default=str, ensure_ascii=False).encode())


def charge(user_id: str, write_weight: int) -> dict[str, Any]:
    """A transaction operation: `user_id`'s writes this second grow by `write_weight`, within the limit."""
    second = timeutil.epoch_seconds(timeutil.now())
    limit = get_settings().user_writes_per_second
    expr = Expr().add("writes", write_weight).set("ttl", second + COUNTER_TTL_SECONDS)
    writes = expr.name("writes")
    expr.when(f"attribute_not_exists({writes}) OR {writes} <= {expr.value(limit - write_weight)}")
    return {"Update": {"Key": keys.rate_key(user_id, second), **expr.params()}}


def refuse_if_over(cancelled: table.TransactionCancelled, index: int) -> None:
    """Raise the caller's 429 when the transaction was cancelled by its rate counter at `index`."""
    if cancelled.failed(index):
        limit = get_settings().user_writes_per_second
        raise errors.RateLimited(
            f"More than {limit} writes per second for this user; retry after the time in Retry-After",
            retry_after=1,
        ) from cancelled
