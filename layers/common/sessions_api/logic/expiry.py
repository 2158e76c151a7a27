"""The scheduled run: expire idle sessions, then purge the expired (after the retention) and deleted ones.

Due sessions come from the sparse GSI3 (`DUE#<shard>` / due epoch seconds), so a run reads about as
many items as there is work, never the table. Every step is a conditional write, so runs are
idempotent: two overlapping runs, or a rerun after a crash, change nothing twice.

- open and idle → one transaction: status `expired` (only if GSI3SK <= now still holds, i.e. no write
  since), counters, GSI2 removed, GSI3SK set to the purge time, `ttl` as a backstop, `expired` event.
- expired past its retention → one transaction hides it (tombstone) and removes it from the counters,
  then it is purged like a deleted session: counters always match what reads can see.
- deleted (tombstoned) → purged: S3 objects and child items first, the session item last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sessions_api import timeutil
from sessions_api.dal.expressions import Expr
from sessions_api.dal.purge_repo import PurgeRepo
from sessions_api.dal.sessions_repo import SessionsRepo, WriteRefused, counters_update, status_deltas
from sessions_api.logic import history, lifecycle
from sessions_api.logic.purge import Budget, OutOfTime, purge_session
from sessions_api.models.entities import Status
from sessions_api.observability import logger
from sessions_api.settings import Settings

SYSTEM_ACTOR = "system"
PAGE_SIZE = 100
# Time kept back for the step in progress (the largest is one S3 delete of 1000 versions).
MARGIN_MS = 10_000
# DynamoDB TTL removes a session item this long after its purge time, should the purge never come.
TTL_BACKSTOP_DAYS = 1


@dataclass
class RunReport:
    expired: int = 0
    purged: int = 0
    items_deleted: int = 0
    objects_deleted: int = 0
    errors: int = 0
    backlog: int = 0  # due sessions this run saw but left for the next one
    oldest_due_age_seconds: int = 0
    finished: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Expiry:
    settings: Settings
    repo: SessionsRepo = field(default_factory=SessionsRepo)
    purge_repo: PurgeRepo = field(default_factory=PurgeRepo)
    page_size: int = PAGE_SIZE

    def run(self, remaining_ms: Callable[[], int], *, margin_ms: int = MARGIN_MS) -> RunReport:
        """One run, stopping cleanly when less than `margin_ms` of the invocation is left."""
        moment = timeutil.now()
        now_epoch = timeutil.epoch_seconds(moment)
        budget = Budget(remaining_ms, margin_ms)
        report = RunReport()
        shards = self.settings.due_shards
        first = (now_epoch // 60) % shards  # rotate the starting shard so a busy one starves no other
        for shard in [(first + offset) % shards for offset in range(shards)]:
            start: dict[str, Any] | None = None
            while report.finished:
                if budget.spent():
                    report.finished = False
                    break
                page = self.purge_repo.due(shard, now_epoch, limit=self.page_size, start_key=start)
                if page.items and start is None:
                    age = now_epoch - int(page.items[0]["GSI3SK"])
                    report.oldest_due_age_seconds = max(report.oldest_due_age_seconds, age)
                for index, item in enumerate(page.items):
                    try:
                        budget.check()
                        self._handle(item, moment, budget, report)
                    except OutOfTime:
                        report.backlog += len(page.items) - index
                        report.finished = False
                        break
                    except Exception:
                        logger.exception("Expiry step failed", extra={"session_id": item["session_id"]})
                        report.errors += 1
                start = page.next_key
                if start is None:
                    break
        return report

    def _handle(self, item: dict[str, Any], moment: datetime, budget: Budget, report: RunReport) -> None:
        session_id, owner = item["session_id"], item["created_by"]
        if not item.get("deleted_at"):
            if item["status"] == Status.EXPIRED:
                if not self._hide(session_id, owner, moment):
                    return
            else:
                row = lifecycle.find(lifecycle.Action.EXPIRE, item)
                if row is None:
                    self._drop_due(session_id, item["status"])
                elif self._expire(item, row, moment):
                    report.expired += 1
                return
        purged = purge_session(session_id, owner, budget, self.purge_repo)
        report.items_deleted += purged.items
        report.objects_deleted += purged.objects
        report.purged += int(purged.done)

    def _expire(self, item: dict[str, Any], row: lifecycle.Transition, moment: datetime) -> bool:
        session_id = item["session_id"]
        purge_at = timeutil.plus(moment, days=self.settings.expired_retention_days)
        purge_epoch = timeutil.epoch_seconds(purge_at)
        ttl = timeutil.epoch_seconds(timeutil.plus(purge_at, days=TTL_BACKSTOP_DAYS))
        expr = lifecycle.apply_expiry(Expr(), row, moment, purge_epoch=purge_epoch, ttl=ttl)
        event = history.event_item(
            session_id,
            "expired",
            SYSTEM_ACTOR,
            timeutil.iso(moment),
            **{
                "from": str(row.source),
                "idle_since": item.get("last_activity_at"),
                "purge_after": timeutil.iso(purge_at),
            },
        )
        counters = counters_update(item["created_by"], status_deltas(row.source, row.target))
        try:
            self.repo.update(session_id, expr, extra_items=[event], extra_operations=[counters])
        except WriteRefused:
            return False  # written to since (no longer idle), or changed status: nothing to do now
        return True

    def _hide(self, session_id: str, owner: str, moment: datetime) -> bool:
        """An expired session past its retention leaves every read and the counters in one transaction;
        True when it is (now, or already) a tombstone ready for the purge."""
        at = timeutil.iso(moment)
        expr = Expr()
        expr.when(f"attribute_exists(PK) AND attribute_not_exists({expr.name('deleted_at')})")
        expr.when(f"{expr.name('status')} = {expr.value(str(Status.EXPIRED))}")
        expr.when(f"{expr.name('GSI3SK')} <= {expr.value(timeutil.epoch_seconds(moment))}")
        expr.set("deleted_at", at).set("updated_at", at).remove("GSI1PK", "GSI1SK").add("version", 1)
        counters = counters_update(owner, status_deltas(Status.EXPIRED, None))
        try:
            self.repo.update(session_id, expr, extra_operations=[counters])
        except WriteRefused as refused:
            return bool(refused.current and refused.current.get("deleted_at"))
        return True

    def _drop_due(self, session_id: str, status: str) -> None:
        """A session in a status that never expires has no business in the due index (repair, not a path)."""
        expr = Expr()
        expr.when(f"attribute_exists(PK) AND attribute_not_exists({expr.name('deleted_at')})")
        expr.when(f"{expr.name('status')} = {expr.value(status)}")
        expr.remove("GSI3PK", "GSI3SK")
        logger.warning("Due key on a session that cannot expire", extra={"session_id": session_id, "status": status})
        try:
            self.repo.update(session_id, expr)
        except WriteRefused:
            return
