"""Thin helpers over the table: transactions with readable cancellation reasons, pagination keys."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from sessions_api.dal import clients
from sessions_api.dal.expressions import Expr
from sessions_api.settings import get_settings

_deserializer = TypeDeserializer()


def table_name() -> str:
    return get_settings().table_name


def from_wire(item: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """An item in DynamoDB's wire format (as error responses carry it) as plain Python values."""
    if not item:
        return None
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


@dataclass(frozen=True)
class Reason:
    code: str
    item: dict[str, Any] | None


class TransactionCancelled(Exception):
    """A transaction refused by a condition; `reasons[i]` is the outcome of operation i."""

    def __init__(self, reasons: list[Reason]) -> None:
        super().__init__(", ".join(reason.code for reason in reasons))
        self.reasons = reasons

    def failed(self, index: int) -> bool:
        return self.reasons[index].code == "ConditionalCheckFailed"


CONFLICT_ATTEMPTS = 4
CONFLICT_BACKOFF_SECONDS = 0.01


def transact(operations: list[dict[str, Any]]) -> None:
    """Run one TransactWriteItems; each operation is `{"Put"|"Update"|"Delete"|"ConditionCheck": {...}}`."""
    items = []
    for operation in operations:
        ((kind, body),) = operation.items()
        items.append({kind: {"TableName": table_name(), "ReturnValuesOnConditionCheckFailure": "ALL_OLD", **body}})
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            # The token makes botocore's retry of a transaction whose answer was lost (a read timeout)
            # idempotent, instead of a second run that fails its own conditions.
            clients.dynamodb().transact_write_items(TransactItems=items, ClientRequestToken=str(uuid.uuid4()))
            return
        except ClientError as exc:
            if clients.error_code(exc) != "TransactionCanceledException":
                raise
            raw = exc.response.get("CancellationReasons") or []
            reasons = [Reason(code=reason.get("Code", "None"), item=from_wire(reason.get("Item"))) for reason in raw]
            if any(reason.code == "ConditionalCheckFailed" for reason in reasons):
                raise TransactionCancelled(reasons) from exc
            conflict = any(reason.code == "TransactionConflict" for reason in reasons)
            if not conflict or attempt == CONFLICT_ATTEMPTS:
                raise  # throttling, or a conflict that outlasted the retries: the HTTP edge answers 503
            # Another transaction held one of its items (a user's writes share their rate counter): nothing was
            # written, and the other is done within milliseconds. Random jitter only, no secret.
            time.sleep(random.uniform(0, CONFLICT_BACKOFF_SECONDS * 2**attempt))  # noqa: S311  # nosec B311


class ConditionFailed(Exception):
    """A single-item write refused by its condition."""


def update(key: dict[str, str], expr: Expr, *, return_new: bool = False) -> dict[str, Any] | None:
    """One UpdateItem of `expr`; the item as it is after the update when `return_new`."""
    try:
        response = clients.dynamodb().update_item(
            TableName=table_name(), Key=key, ReturnValues="ALL_NEW" if return_new else "NONE", **expr.params()
        )
    except ClientError as exc:
        if clients.error_code(exc) == "ConditionalCheckFailedException":
            raise ConditionFailed from exc
        raise
    attributes: dict[str, Any] | None = response.get("Attributes")
    return attributes


def get(key: dict[str, str]) -> dict[str, Any] | None:
    response = clients.dynamodb().get_item(TableName=table_name(), Key=key, ConsistentRead=True)
    return response.get("Item")


def batch_write(requests: list[dict[str, Any]]) -> None:
    """≤ 25 `PutRequest`/`DeleteRequest`s in one BatchWriteItem, retrying what DynamoDB leaves unprocessed."""
    pending = {table_name(): requests}
    for attempt in range(6):
        pending = clients.dynamodb().batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        if not pending:
            return
        time.sleep(0.05 * 2**attempt)
    raise clients.RetryableError("DynamoDB left writes unprocessed")


def batch_get(keys: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Strongly consistent BatchGetItem (≤ 100 keys), retrying what DynamoDB leaves unprocessed."""
    found: list[dict[str, Any]] = []
    request = {table_name(): {"Keys": keys, "ConsistentRead": True}}
    for attempt in range(5):
        response = clients.dynamodb().batch_get_item(RequestItems=request)
        found.extend(response.get("Responses", {}).get(table_name(), []))
        request = response.get("UnprocessedKeys") or {}
        if not request:
            return found
        time.sleep(0.05 * 2**attempt)
    raise clients.RetryableError("DynamoDB left keys unprocessed")


def query(**kwargs: Any) -> dict[str, Any]:
    return clients.dynamodb().query(TableName=table_name(), **kwargs)


def query_all(**kwargs: Any) -> list[dict[str, Any]]:
    """Every item a query finds, page after page."""
    found: list[dict[str, Any]] = []
    while True:
        response = query(**kwargs)
        found += response["Items"]
        if "LastEvaluatedKey" not in response:
            return found
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def is_expired_by_ttl(item: dict[str, Any], now_epoch: float) -> bool:
    """TTL deletion lags by up to days: an item past its TTL is gone for every read."""
    ttl = item.get("ttl")
    return isinstance(ttl, int | Decimal) and ttl <= now_epoch
