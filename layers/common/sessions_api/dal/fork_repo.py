"""What a fork reads and writes: the source's messages a page at a time, their copies 25 to a BatchWriteItem,
large contents and decks copied inside S3, and the one transaction that makes the fork visible.

Large contents and decks are copied (S3 CopyObject: one request, no bytes through the function), never shared
by reference. Every object of a session lives under its owner's prefix, `sessions/<owner>/<session>/`, and
that prefix is what the purge of a deleted session and an erasure of everything its owner had delete, with no
read of who else might point into it. The fork is the forker's: pointing into the source's prefix would make
deleting the source break the fork, or, with a reference count keeping the object, leave the source owner's
object behind their erasure under their name, and add a counter write to every delete, purge and erasure.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from sessions_api.dal import clients, idempotency, keys, rates, table
from sessions_api.dal.expressions import Expr
from sessions_api.dal.objects import ObjectMissing
from sessions_api.dal.purge_repo import BATCH_WRITE_MAX
from sessions_api.dal.session_writes import ALL_STATUSES, Expects, SessionWrite
from sessions_api.dal.sessions_repo import Page, counters_update, put, status_deltas
from sessions_api.models.entities import Status, storable
from sessions_api.settings import get_settings

PAGE = 500  # messages a query reads: 20 batch writes, a few hundred KB held at a time
PARALLEL = 8  # batch writes, or object copies, in flight at once


class ForkRepo:
    def counters(self, user_id: str) -> dict[str, Any] | None:
        return table.get(keys.counters_key(user_id))

    def begin(self, unpublished: dict[str, Any]) -> None:
        """The fork's own item, invisible and due for its purge, before anything is copied into its partition;
        counted toward its owner's write rate, so a fork past the limit copies nothing."""
        charge = rates.Charge(unpublished["created_by"], unpublished["session_id"], 1)
        try:
            table.transact([put(unpublished, unique=True), charge.operation()])
        except table.TransactionCancelled as cancelled:
            charge.refuse_if_over(cancelled, 1)
            raise

    def messages(self, session_id: str, *, through: str | None, start_key: dict[str, Any] | None) -> Page:
        """One page of the session's messages in order, up to and including `through` (None: to the last), as
        stored (large contents stay in S3)."""
        pk, first = keys.session_pk(session_id), keys.MESSAGE_PREFIX
        request: dict[str, Any] = {"ConsistentRead": True, "Limit": PAGE}
        if through is None:
            request["KeyConditionExpression"] = "PK = :pk AND begins_with(SK, :first)"
            request["ExpressionAttributeValues"] = {":pk": pk, ":first": first}
        else:
            request["KeyConditionExpression"] = "PK = :pk AND SK BETWEEN :first AND :last"
            request["ExpressionAttributeValues"] = {":pk": pk, ":first": first, ":last": first + through}
        if start_key:
            request["ExclusiveStartKey"] = start_key
        response = table.query(**request)
        return Page(items=response["Items"], next_key=response.get("LastEvaluatedKey"))

    def deck(self, session_id: str) -> dict[str, Any] | None:
        return table.get(keys.deck_key(session_id))

    def copy_objects(self, pairs: list[tuple[str, str]]) -> None:
        """Copy each (source key, new key) inside the bucket, before the items that will point at the copies."""
        if len(pairs) == 1:
            _copy(*pairs[0])
        elif pairs:
            with ThreadPoolExecutor(max_workers=min(PARALLEL, len(pairs))) as pool:
                list(pool.map(lambda pair: _copy(*pair), pairs))

    def write_items(self, items: list[dict[str, Any]]) -> None:
        """Put the items, 25 to a BatchWriteItem, several batches at once."""
        batches = [items[start : start + BATCH_WRITE_MAX] for start in range(0, len(items), BATCH_WRITE_MAX)]
        if len(batches) == 1:
            _write_batch(batches[0])
        elif batches:
            with ThreadPoolExecutor(max_workers=min(PARALLEL, len(batches))) as pool:
                list(pool.map(_write_batch, batches))

    def abandon(self, session_id: str, now_epoch: int) -> None:
        """Best effort, after a failed copy: the fork is due for its purge now, not when a crash would leave it."""
        expr = Expr().set("GSI3SK", now_epoch)
        expr.when(f"attribute_exists({expr.name('forking')})")
        try:
            table.update(keys.session_key(session_id), expr)
        except (table.ConditionFailed, BotoCoreError, ClientError):
            return


def publishing(
    source_id: str, fork: dict[str, Any], fork_puts: list[dict[str, Any]], source_event: dict[str, Any], *, quota: int
) -> SessionWrite:
    """The transaction that makes the copied fork visible, as a write on the source (whose history records the
    fork, and whose reader the forker must still be): the fork's item replacing its tombstone, its owner's
    counters within the quota, its own first items, and (under an `Idempotency-Key`) the pointer to the key's
    record, so purging the fork purges the record. A fork item purged meanwhile refuses it."""
    fork_put = put(fork)
    fork_put["Put"]["ConditionExpression"] = "attribute_exists(forking)"
    counters = counters_update(fork["created_by"], status_deltas(None, Status(fork["status"])), quota=quota)
    pointer = idempotency.pointer_item(fork["session_id"], int(time.time()))
    operations = [fork_put, counters, *(put(item) for item in [*fork_puts, *([pointer] if pointer else [])])]
    # Any status may be forked; `fork_count` only because an update must change something.
    return SessionWrite(
        source_id, Expr().add("fork_count", 1), Expects(statuses=ALL_STATUSES), [source_event], operations
    )


def _bucket() -> str:
    return get_settings().bucket_name


def _copy(source_key: str, new_key: str) -> None:
    try:
        clients.s3().copy_object(
            Bucket=_bucket(),
            Key=new_key,
            CopySource={"Bucket": _bucket(), "Key": source_key},
            TaggingDirective="REPLACE",  # payloads carry no tags: the copy needs no tagging permission
        )
    except ClientError as exc:
        if clients.error_code(exc) in {"NoSuchKey", "404"}:
            raise ObjectMissing(source_key) from exc
        raise clients.RetryableError(f"S3 did not copy {source_key}") from exc
    except BotoCoreError as exc:
        raise clients.RetryableError(f"S3 did not copy {source_key}") from exc


def _write_batch(items: list[dict[str, Any]]) -> None:
    table.batch_write([{"PutRequest": {"Item": storable(item)}} for item in items])
