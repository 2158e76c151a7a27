"""A user's write rate, limited so that no key of theirs runs hot (docs/capacity.md).

Every write transaction on a user's behalf also adds its weight (its messages, by the KB) to a counter item
of that user and the current second, conditioned on staying within the limit: one more item in a
transaction the write makes anyway, so the limit costs no request and a refused write stores nothing. The
counter lives in the user's own partition and expires a minute later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Charge:
    """`weight` more writes this second by `user_id`, in all and to `session_id`, each within its limit: one
    counter item (the user's total and a count per session of theirs) updated in the write's own transaction."""

    user_id: str
    session_id: str
    weight: int

    def operation(self) -> dict[str, Any]:
        second = timeutil.epoch_seconds(timeutil.now())
        settings = get_settings()
        expr = Expr().set("ttl", second + COUNTER_TTL_SECONDS)
        limits = (("writes", settings.user_writes_per_second), (self._in_session, settings.session_writes_per_second))
        for attribute, limit in limits:
            expr.add(attribute, self.weight)
            name = expr.name(attribute)
            expr.when(f"attribute_not_exists({name}) OR {name} <= {expr.value(limit - self.weight)}")
        return {"Update": {"Key": keys.rate_key(self.user_id, second), **expr.params()}}

    def refuse_if_over(self, cancelled: table.TransactionCancelled, index: int) -> None:
        """Raise the caller's 429 when the transaction was cancelled by this charge (operation `index`)."""
        if not cancelled.failed(index):
            return
        settings = get_settings()
        counted = cancelled.reasons[index].item or {}
        if int(counted.get(self._in_session, 0)) + self.weight > settings.session_writes_per_second:
            detail = f"More than {settings.session_writes_per_second} writes per second to this session"
        else:
            detail = f"More than {settings.user_writes_per_second} writes per second for this user"
        raise errors.RateLimited(f"{detail}; retry after the time in Retry-After", retry_after=1) from cancelled

    @property
    def _in_session(self) -> str:
        return f"s_{self.session_id}"
