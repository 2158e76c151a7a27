"""Export-everything jobs (`TAKEOUT#<job_id>`) and their lock (`TAKEOUT`) in the user's partition; what the
worker reads (the user's sessions and counters) and the presigned download of the archive.

The job item is the truth; the lock only names the user's latest unfinished job, so a second POST fails its
condition without reading anything. A lock naming a finished (or dead) job is stale and may be replaced, in
the same transaction that ends the job it names if that job never said it ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from sessions_api.dal import clients, keys, objects, table
from sessions_api.dal.expressions import Expr
from sessions_api.dal.sessions_repo import erased, visible


class TakeoutLocked(Exception):
    """The user's lock names a job (`job_id`); nothing was stored."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id


@dataclass(frozen=True)
class Replacing:
    """A stale lock to take over: the job it names and, when that job still says it is unfinished, the status
    and lease it had when it was judged dead (so a worker that came back meanwhile keeps it) and what it ends as."""

    lock_job_id: str
    job_key: dict[str, str] | None = None
    status: str | None = None
    lease_until: int | None = None
    ended_as: str | None = None
    error: str | None = None
    at: str | None = None


class TakeoutRepo:
    # -- the request side ---------------------------------------------------------------------------
    def start(self, job: dict[str, Any], lock: dict[str, Any], replacing: Replacing | None = None) -> None:
        """The job and its lock, atomically; `TakeoutLocked` when the lock names another job (or, replacing,
        when it changed since it was read)."""
        lock_put: dict[str, Any] = {"Item": lock}
        if replacing is None:
            lock_put["ConditionExpression"] = "attribute_not_exists(PK)"
        else:
            lock_put["ConditionExpression"] = "job_id = :held"
            lock_put["ExpressionAttributeValues"] = {":held": replacing.lock_job_id}
        operations: list[dict[str, Any]] = [
            {"Put": {"Item": job, "ConditionExpression": "attribute_not_exists(PK)"}},
            {"Put": lock_put},
        ]
        if replacing is not None and replacing.job_key is not None:
            operations.append({"Update": {"Key": replacing.job_key, **_ended_by_takeover(replacing).params()}})
        try:
            table.transact(operations)
        except table.TransactionCancelled as cancelled:
            held = cancelled.reasons[1].item if cancelled.failed(1) else None
            raise TakeoutLocked(str((held or {}).get("job_id", ""))) from cancelled

    def get(self, user_id: str, job_id: str) -> dict[str, Any] | None:
        return table.get(keys.takeout_key(user_id, job_id))

    def counters(self, user_id: str) -> dict[str, Any] | None:
        """The user's counters: an erasure's mark (`erased_before`) ends every job asked before it."""
        return table.get(keys.counters_key(user_id))

    def download_url(self, key: str, *, expires_in: int, content_disposition: str) -> str:
        return objects.presigned_get(
            key, expires_in=expires_in, content_disposition=content_disposition, content_type="application/zip"
        )

    # -- the worker ---------------------------------------------------------------------------------
    def claim(
        self, user_id: str, job_id: str, *, worker: str, at: str, now_epoch: int, lease_until: int, dead_before: int
    ) -> dict[str, Any] | None:
        """Take the job for this worker, from scratch: waiting for one, or its last worker's lease lapsed (but
        not so long ago that reads call it failed). The job as claimed (with the last attempt's `upload_id`,
        if any, to abort), or None."""
        expr = Expr().set("status", "running").set("phase", "running").set("worker", worker)
        expr.set("lease_until", lease_until).set("started_at", at).set("sessions_done", 0).add("attempt", 1)
        expr.remove("sessions", "size_bytes")
        status = expr.name("status")
        expr.when(f"{status} IN ({expr.value('queued')}, {expr.value('running')})")
        expr.when(f"{expr.name('lease_until')} >= {expr.value(dead_before)}")
        expr.when(
            f"{expr.name('phase')} = {expr.value('ready')} OR {expr.name('lease_until')} < {expr.value(now_epoch)}"
        )
        return self._update(user_id, job_id, expr)

    def progress(self, user_id: str, job_id: str, *, worker: str, lease_until: int, **fields: Any) -> bool:
        """Renew the lease and record progress; False when the job is no longer this worker's to run (it was
        cancelled, taken over, or deleted)."""
        expr = _held(Expr(), worker).set("lease_until", lease_until)
        for name, value in fields.items():
            expr.set(name, value)
        return self._update(user_id, job_id, expr) is not None

    def let_go(self, user_id: str, job_id: str, *, worker: str, now_epoch: int) -> None:
        """A worker failing unexpectedly ends its lease now, so Lambda's retry of the record starts over at once."""
        self._update(user_id, job_id, _held(Expr(), worker).set("lease_until", now_epoch - 1))

    def end(self, user_id: str, job_id: str, *, worker: str, ttl: int, **fields: Any) -> bool:
        """The job's last state (`status` among `fields`), if it is still this worker's; False otherwise."""
        expr = _held(Expr(), worker).set("phase", "done").set("ttl", ttl).remove("worker", "upload_id")
        for name, value in fields.items():
            expr.set(name, value)
        return self._update(user_id, job_id, expr) is not None

    def release(self, user_id: str, job_id: str) -> None:
        """Remove the lock if it still names this job (a new job may have replaced a stale one)."""
        try:
            clients.dynamodb().delete_item(
                TableName=table.table_name(),
                Key=keys.user_item_key(user_id, keys.TAKEOUT_LOCK_SK),
                ConditionExpression="job_id = :job",
                ExpressionAttributeValues={":job": job_id},
            )
        except ClientError as exc:
            if clients.error_code(exc) != "ConditionalCheckFailedException":
                raise

    def owned_sessions(self, user_id: str, counters: dict[str, Any] | None, now_epoch: int) -> list[dict[str, Any]]:
        """Every session in the user's listing, newest activity first: deleted and erased ones left out."""
        found = table.query_all(
            IndexName="GSI1",
            KeyConditionExpression="GSI1PK = :pk",
            ExpressionAttributeValues={":pk": keys.owner_gsi1pk(user_id)},
            ScanIndexForward=False,
        )
        return [
            item
            for item in found
            if item["SK"] == keys.SESSION_SK
            and item.get("created_by") == user_id
            and visible(item, now_epoch) is not None
            and not erased(item, counters)
        ]

    def _update(self, user_id: str, job_id: str, expr: Expr) -> dict[str, Any] | None:
        try:
            return table.update(keys.takeout_key(user_id, job_id), expr, return_new=True)
        except table.ConditionFailed:
            return None


def _held(expr: Expr, worker: str) -> Expr:
    """Only while the job runs under this worker: a cancel, a takeover or a delete makes every later write fail."""
    expr.when(f"{expr.name('worker')} = {expr.value(worker)}")
    return expr.when(f"{expr.name('status')} = {expr.value('running')}")


def _ended_by_takeover(replacing: Replacing) -> Expr:
    expr = Expr().set("status", replacing.ended_as).set("phase", "done").set("completed_at", replacing.at)
    expr.set("error", replacing.error).remove("worker")
    expr.when(f"{expr.name('status')} = {expr.value(replacing.status)}")
    return expr.when(f"{expr.name('lease_until')} = {expr.value(replacing.lease_until)}")
