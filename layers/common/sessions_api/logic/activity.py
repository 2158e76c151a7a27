"""What every write to a session does to it: activity time, listing order, expiry due time, version."""

from __future__ import annotations

from datetime import datetime

from sessions_api import timeutil
from sessions_api.dal import keys
from sessions_api.dal.expressions import Expr
from sessions_api.models.entities import WRITABLE_STATUSES, Status


def touch(expr: Expr, session_id: str, moment: datetime, *, active_listing: bool = True, due: bool = True) -> Expr:
    """Record activity without reading the session first: the due time is computed by DynamoDB from
    the session's own idle timeout, so any write stays a single request.

    An expired session takes no write: its due time is its purge time, which activity must not move.
    A status change that drops the session from the active listing or the due index passes
    `active_listing=False` / `due=False` and removes those keys itself.
    """
    at = timeutil.iso(moment)
    expr.set("last_activity_at", at).set("updated_at", at)
    expr.set("GSI1SK", keys.activity_sk(at, session_id))
    if active_listing:
        expr.set("GSI2SK", keys.activity_sk(at, session_id))
    if due:
        expr.set_raw(
            f"{expr.name('GSI3SK')} = {expr.name('idle_seconds')} + {expr.value(timeutil.epoch_seconds(moment))}"
        )
    expr.when(f"{expr.name('status')} <> {expr.value(str(Status.EXPIRED))}")
    return expr.add("version", 1)


def require_writable(expr: Expr) -> Expr:
    """Only sessions open for messages take them; the failure is told apart from the old item."""
    status = expr.name("status")
    allowed = ", ".join(expr.value(str(value)) for value in sorted(WRITABLE_STATUSES))
    return expr.when(f"{status} IN ({allowed})")


def require_version(expr: Expr, if_match: int | None) -> Expr:
    """`If-Match`: the write applies only to the version the client last read."""
    if if_match is not None:
        expr.when(f"{expr.name('version')} = {expr.value(if_match)}")
    return expr
