"""The scheduled run: expire idle sessions, then purge the expired (after the retention) and deleted ones.

Due sessions come from the sparse GSI3 (`DUE#<shard>` / due epoch seconds), so a run reads about as
many items as there is work, never the table. Every step is a conditional write, so runs are
idempotent: two overlapping runs, or a rerun after a crash, change nothing twice.

- open and idle → one transaction: status `expired` (only if `active_until` <= now, i.e. no write since its
  idle deadline), counters, GSI2 removed, GSI3SK set to the purge time, `ttl` as a backstop, `expired` event.
- open but written to since it was armed (writes move only `active_until`, never the due index) → re-armed:
  due again at `active_until`, one UpdateItem. So a run reads what is due, not what was written.
- expired past its retention → one transaction hides it (tombstone) and removes it from the counters,
  then it is purged like a deleted session: counters always match what reads can see.
- a chat run past its lease (its worker crashed or timed out, and the retry did not end it) or never
  started (its stream record was lost) → ended `error` with an error reply, the session's turn passed on;
  one whose worker still renews its lease → re-armed at the lease.
- an erasure (DELETE /me) whose worker's lease lapsed → handed to a fresh worker (`logic/erasure.py`).
- deleted (tombstoned) → purged: S3 objects and child items first, the session item last. A crash or a
  spent time budget anywhere leaves the session item in place, still due in GSI3 and invisible to every
  read (the tombstone), so the next run simply continues; nothing is half-visible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sessions_api import timeutil
from sessions_api.dal import items, keys, session_writes
from sessions_api.dal.erasure_repo import ErasureRepo
from sessions_api.dal.purge_repo import BATCH_WRITE_MAX, PurgeRepo
from sessions_api.logic import lifecycle, runner
from sessions_api.models.entities import Status
from sessions_api.observability import logger
from sessions_api.settings import Settings

SYSTEM_ACTOR = "system"
PAGE_SIZE = 100
# Time kept back for the step in progress (the largest is one S3 delete of 1000 versions).
MARGIN_MS = 10_000
# DynamoDB TTL removes a session item this long after its purge time, should the purge never come.
TTL_BACKSTOP_DAYS = 1
CHILD_PAGE = 500


class OutOfTime(Exception):
    """The run's time budget is spent; the work left is the next run's."""


@dataclass
class Budget:
    remaining_ms: Callable[[], int]
    margin_ms: int

    def spent(self) -> bool:
        return self.remaining_ms() <= self.margin_ms

    def check(self) -> None:
        if self.spent():
            raise OutOfTime


@dataclass
class Purged:
    items: int = 0
    objects: int = 0
    done: bool = False  # the session item itself is gone (False: another run got there first)


def purge_session(session_id: str, owner: str, budget: Budget, repo: PurgeRepo) -> Purged:
    """Delete everything of a tombstoned session; raises OutOfTime with the session still due."""
    purged = Purged()
    prefix = keys.s3_session_prefix(owner, session_id)
    while versions := repo.object_versions(prefix):
        budget.check()
        repo.delete_objects(versions)
        purged.objects += len(versions)
    while children := repo.child_keys(session_id, limit=CHILD_PAGE):
        for start in range(0, len(children), BATCH_WRITE_MAX):
            budget.check()
            chunk = children[start : start + BATCH_WRITE_MAX]
            repo.delete_items(chunk)
            purged.items += len(chunk)
    purged.done = repo.delete_session_item(session_id)
    return purged


@dataclass
class RunReport:
    expired: int = 0
    rearmed: int = 0  # due sessions and runs written to (renewed) since they were armed
    purged: int = 0
    items_deleted: int = 0
    objects_deleted: int = 0
    runs_recovered: int = 0
    erasures_rearmed: int = 0
    errors: int = 0
    backlog: int = 0  # due sessions this run saw but left for the next one
    oldest_due_age_seconds: int = 0
    finished: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Expiry:
    settings: Settings
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
        if item["SK"].startswith(keys.ERASURE_PREFIX):  # an erasure whose worker is gone: hand it to a new one
            erasure_id = item["SK"].removeprefix(keys.ERASURE_PREFIX)
            if ErasureRepo().rearm(owner, erasure_id, timeutil.epoch_seconds(moment)):
                logger.warning("Re-armed an erasure its worker left", extra={"erasure_id": erasure_id})
                report.erasures_rearmed += 1
            return
        if item["SK"].startswith(keys.RUN_PREFIX):  # a run whose worker is gone (or never came): end it
            request_id = item["SK"].removeprefix(keys.RUN_PREFIX)
            outcome = runner.recover(
                self.settings, session_id, request_id, rearm=True, remaining_ms=budget.remaining_ms
            )
            report.runs_recovered += int(outcome is runner.Recovery.ENDED)
            report.rearmed += int(outcome is runner.Recovery.REARMED)
            return
        if not item.get("deleted_at"):
            if item["status"] == Status.EXPIRED:
                if not session_writes.hide_expired(session_id, owner, moment):
                    return
            else:
                row = lifecycle.find(lifecycle.Action.EXPIRE, item)
                if row is None:  # a status that never expires has no business in the due index
                    logger.warning(
                        "Due key on a session that cannot expire",
                        extra={"session_id": session_id, "status": item["status"]},
                    )
                    session_writes.drop_due(session_id, item["status"])
                elif self._expire(item, row, moment):
                    report.expired += 1
                elif session_writes.rearm(session_id, item["status"], timeutil.epoch_seconds(moment)):
                    report.rearmed += 1
                return
        purged = purge_session(session_id, owner, budget, self.purge_repo)
        report.items_deleted += purged.items
        report.objects_deleted += purged.objects
        report.purged += int(purged.done)

    def _expire(self, item: dict[str, Any], row: lifecycle.Transition, moment: datetime) -> bool:
        """False when the session was written to since (no longer idle), or changed status: nothing to do now."""
        session_id = item["session_id"]
        purge_at = timeutil.plus(moment, days=self.settings.expired_retention_days)
        event = items.event(
            session_id,
            "expired",
            SYSTEM_ACTOR,
            timeutil.iso(moment),
            **{
                "from": str(row.source),
                "purge_after": timeutil.iso(purge_at),
            },
        )
        return session_writes.expire(
            session_id,
            item["created_by"],
            source=row.source,
            moment=moment,
            purge_epoch=timeutil.epoch_seconds(purge_at),
            ttl=timeutil.epoch_seconds(timeutil.plus(purge_at, days=TTL_BACKSTOP_DAYS)),
            event=event,
        )
