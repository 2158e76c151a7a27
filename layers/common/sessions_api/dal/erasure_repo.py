"""What an erasure (DELETE /me) reads and writes: its record in the user's partition, the mark on the user's
counters that hides their sessions at once, and the worker's batches.

The mark (`erased_before`, and `erasing_*`: the counts it hides) sits on the counters item because every
change to a user's session count already writes it; the worker then moves each hidden session out of the
owner listing (to `ERASING#<user>` on the same index) and purges it, so its place is the data left, never
a cursor to lose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sessions_api.dal import keys, table
from sessions_api.dal.expressions import Expr
from sessions_api.dal.sessions_repo import (
    ERASING_PREFIX,
    WriteRefused,
    counter_names,
    counters_update,
    status_deltas,
)

HIDE_PAGE = 25


class ErasureRunning(Exception):
    """The user's counters name an unfinished erasure: `erasure_id`."""

    def __init__(self, erasure_id: str) -> None:
        super().__init__(erasure_id)
        self.erasure_id = erasure_id


@dataclass
class Page:
    items: list[dict[str, Any]]
    next_key: dict[str, Any] | None


def _mark(expr: Expr, user_id: str, at: str) -> Expr:
    """Hide, from `at` on, every session the user has: the moment, and the counts reads no longer show."""
    expr.set("type", "counters").set("GSI1PK", keys.owner_gsi1pk(user_id)).set("GSI1SK", keys.COUNTERS_GSI1SK)
    expr.set("erased_before", at)
    zero = expr.value(0)
    for name in counter_names():
        expr.set_raw(f"{expr.name(ERASING_PREFIX + name)} = if_not_exists({expr.name(name)}, {zero})")
    return expr


class ErasureRepo:
    def start(self, user_id: str, erasure: dict[str, Any]) -> None:
        """The mark and the erasure record, atomically; `ErasureRunning` when one is unfinished."""
        counters = _mark(Expr(), user_id, erasure["erased_before"]).set("erasure_id", erasure["erasure_id"])
        counters.when(f"attribute_not_exists({counters.name('erasure_id')})")
        try:
            table.transact(
                [
                    {"Update": {"Key": keys.counters_key(user_id), **counters.params()}},
                    {"Put": {"Item": erasure, "ConditionExpression": "attribute_not_exists(PK)"}},
                ]
            )
        except table.TransactionCancelled as cancelled:
            current = cancelled.reasons[0].item if cancelled.failed(0) else None
            if current and current.get("erasure_id"):
                raise ErasureRunning(str(current["erasure_id"])) from cancelled
            raise

    def extend(self, user_id: str, erasure_id: str, at: str, fields: dict[str, Any]) -> bool:
        """Move an unfinished erasure's mark to `at` (what the user made since goes too) and hand it to a
        worker again; False when it finished meanwhile."""
        counters = _mark(Expr(), user_id, at)
        counters.when(f"{counters.name('erasure_id')} = {counters.value(erasure_id)}")
        record = Expr().set("erased_before", at).set("phase", "ready")
        for name, value in fields.items():
            record.set(name, value)
        record.when(f"{record.name('status')} = {record.value('running')}")
        try:
            table.transact(
                [
                    {"Update": {"Key": keys.counters_key(user_id), **counters.params()}},
                    {"Update": {"Key": keys.erasure_key(user_id, erasure_id), **record.params()}},
                ]
            )
        except table.TransactionCancelled:
            return False
        return True

    def get(self, user_id: str, erasure_id: str) -> dict[str, Any] | None:
        return table.get(keys.erasure_key(user_id, erasure_id))

    def claim(
        self, user_id: str, erasure_id: str, *, worker: str, now_epoch: int, lease_until: int
    ) -> dict[str, Any] | None:
        """Take the erasure for this worker (ready, or its last worker's lease lapsed): the record, or None."""
        expr = Expr().set("phase", "running").set("worker", worker).set("lease_until", lease_until)
        expr.set("GSI3SK", lease_until)
        expr.when(f"{expr.name('status')} = {expr.value('running')}")
        expr.when(
            f"{expr.name('phase')} = {expr.value('ready')} OR {expr.name('lease_until')} < {expr.value(now_epoch)}"
        )
        return self._update(user_id, erasure_id, expr)

    def progress(
        self, user_id: str, erasure_id: str, *, worker: str, lease_until: int, counts: dict[str, int]
    ) -> dict[str, Any] | None:
        """Add to the receipt's counts and renew the lease: the record as it is now (its mark may have
        moved), or None when this worker no longer holds it."""
        expr = Expr().set("lease_until", lease_until).set("GSI3SK", lease_until)
        for name, count in counts.items():
            if count:
                expr.add(name, count)
        expr.when(f"{expr.name('worker')} = {expr.value(worker)}")
        return self._update(user_id, erasure_id, expr)

    def hand_on(self, user_id: str, erasure_id: str, *, worker: str) -> None:
        """Out of time: a fresh invocation continues (the stream fires on `phase = ready`)."""
        expr = Expr().set("phase", "ready").remove("worker")
        expr.when(f"{expr.name('worker')} = {expr.value(worker)}")
        self._update(user_id, erasure_id, expr)

    def rearm(self, user_id: str, erasure_id: str, now_epoch: int) -> bool:
        """An erasure whose worker is gone for good (the schedule found its lease lapsed): hand it on."""
        expr = Expr().set("phase", "ready").remove("worker")
        expr.when(f"{expr.name('status')} = {expr.value('running')}")
        expr.when(f"{expr.name('lease_until')} < {expr.value(now_epoch)}")
        return self._update(user_id, erasure_id, expr) is not None

    def complete(self, user_id: str, erasure_id: str, *, worker: str, erased_before: str, at: str, ttl: int) -> bool:
        """The receipt, and the mark's counts dropped, if the mark did not move meanwhile (else: go on)."""
        record = Expr().set("status", "completed").set("phase", "done").set("completed_at", at).set("ttl", ttl)
        record.remove("worker", "lease_until", "email", "GSI3PK", "GSI3SK")
        record.when(f"{record.name('worker')} = {record.value(worker)}")
        record.when(f"{record.name('erased_before')} = {record.value(erased_before)}")
        counters = Expr().remove("erasure_id", *(ERASING_PREFIX + name for name in counter_names()))
        counters.when(f"{counters.name('erasure_id')} = {counters.value(erasure_id)}")
        try:
            table.transact(
                [
                    {"Update": {"Key": keys.erasure_key(user_id, erasure_id), **record.params()}},
                    {"Update": {"Key": keys.counters_key(user_id), **counters.params()}},
                ]
            )
        except table.TransactionCancelled:
            return False
        return True

    def _update(self, user_id: str, erasure_id: str, expr: Expr) -> dict[str, Any] | None:
        try:
            return table.update(keys.erasure_key(user_id, erasure_id), expr, return_new=True)
        except table.ConditionFailed:
            return None

    # -- the worker's batches -----------------------------------------------------------------------
    def owned_page(self, user_id: str, start_key: dict[str, Any] | None) -> Page:
        """A page of the sessions in the user's listing (the counters item left out)."""
        return self._index_page(keys.owner_gsi1pk(user_id), start_key)

    def erasing_page(self, user_id: str) -> Page:
        """Hidden sessions waiting for the purge (each leaves the index as its purge ends)."""
        return self._index_page(keys.erasing_gsi1pk(user_id), None)

    def _index_page(self, gsi1pk: str, start_key: dict[str, Any] | None) -> Page:
        request: dict[str, Any] = {
            "IndexName": "GSI1",
            "KeyConditionExpression": "GSI1PK = :pk",
            "ExpressionAttributeValues": {":pk": gsi1pk},
            "Limit": HIDE_PAGE,
        }
        if start_key:
            request["ExclusiveStartKey"] = start_key
        response = table.query(**request)
        found = [item for item in response["Items"] if item["SK"] == keys.SESSION_SK]
        return Page(found, response.get("LastEvaluatedKey"))

    def hide(
        self, session: dict[str, Any], *, erased_before: str, at: str, purge_due: tuple[str, int], ttl: int
    ) -> None:
        """The session out of every listing and read (a tombstone waiting under `ERASING#<owner>`), and out of
        its owner's counts and of the counts the mark hides, in one transaction; `WriteRefused` (with the
        session as it is) when it changed meanwhile."""
        owner, status = str(session["created_by"]), str(session["status"])
        expr = Expr()
        expr.when(
            f"attribute_exists(PK) AND attribute_not_exists({expr.name('deleted_at')}) "
            f"AND {expr.name('created_by')} = {expr.value(owner)}"
        )
        expr.when(f"{expr.name('status')} = {expr.value(status)}")
        expr.when(f"{expr.name('created_at')} <= {expr.value(erased_before)}")
        expr.set("deleted_at", at).set("updated_at", at).set("GSI1PK", keys.erasing_gsi1pk(owner))
        expr.set("GSI1SK", session["session_id"]).set("GSI3PK", purge_due[0]).set("GSI3SK", purge_due[1])
        expr.set("ttl", ttl).remove("GSI2PK", "GSI2SK").add("version", 1)
        deltas = status_deltas(status, None)
        deltas.update({ERASING_PREFIX + name: delta for name, delta in list(deltas.items())})
        try:
            table.transact(
                [
                    {"Update": {"Key": keys.session_key(session["session_id"]), **expr.params()}},
                    counters_update(owner, deltas),
                ]
            )
        except table.TransactionCancelled as cancelled:
            raise WriteRefused(cancelled.reasons[0].item) from cancelled

    def unfinished_runs(self, session_id: str) -> list[dict[str, Any]]:
        return table.query_all(
            KeyConditionExpression="PK = :pk AND begins_with(SK, :runs)",
            FilterExpression="#phase <> :done",
            ExpressionAttributeNames={"#phase": "phase"},
            ExpressionAttributeValues={":pk": keys.session_pk(session_id), ":runs": keys.RUN_PREFIX, ":done": "done"},
            ConsistentRead=True,
        )

    def shares_to(self, recipient: str) -> list[dict[str, str]]:
        """Keys of the shares others gave `recipient` (a user id or an e-mail address)."""
        found = table.query_all(
            IndexName="GSI2",
            KeyConditionExpression="GSI2PK = :pk",
            ExpressionAttributeValues={":pk": keys.shared_gsi2pk(recipient)},
        )
        return [{"PK": item["PK"], "SK": item["SK"]} for item in found]

    def user_items(self, user_id: str, prefix: str) -> list[dict[str, Any]]:
        return table.query_all(
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            ExpressionAttributeValues={":pk": keys.user_pk(user_id), ":prefix": prefix},
            ConsistentRead=True,
        )

    def anonymise(self, item_key: dict[str, str], user_id: str, field_name: str, anonymous: str) -> bool:
        """Replace the user's name on one item they wrote, if it is still there and still theirs."""
        expr = Expr().set(field_name, anonymous)
        expr.when(f"attribute_exists(PK) AND {expr.name(field_name)} = {expr.value(user_id)}")
        try:
            table.update(item_key, expr)
        except table.ConditionFailed:
            return False
        return True
