"""boto3 clients, created on first use and cached, so a cold start pays only for what a route uses."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionError, ReadTimeoutError

# Standard retry mode backs off on throttling and 5xx; three attempts of at most 1 + 2 s stay inside the
# functions' 10 s timeout, so a stuck call becomes a 503 the client can retry, not a gateway timeout.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=1, read_timeout=2)

_UNAVAILABLE_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "SlowDown",
    "InternalError",
}


class RetryableError(Exception):
    """A backing service did not finish the work; the client should retry (503)."""


@cache
def dynamodb() -> Any:
    """A DynamoDB client that speaks plain Python values (the resource layer's serialization)."""
    return boto3.resource("dynamodb", config=_CONFIG).meta.client


@cache
def s3() -> Any:
    return boto3.client("s3", config=_CONFIG)


def reset() -> None:
    """Forget cached clients (tests bind them inside a fresh mock)."""
    dynamodb.cache_clear()
    dynamodb_wire.cache_clear()
    s3.cache_clear()


def error_code(exc: BaseException) -> str | None:
    return exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None


def is_service_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionError | ReadTimeoutError | RetryableError):
        return True
    code = error_code(exc)
    if code == "TransactionCanceledException":
        reasons = exc.response.get("CancellationReasons") or []  # type: ignore[attr-defined]
        return any(reason.get("Code") in {"ThrottlingError", "TransactionConflict"} for reason in reasons)
    return code in _UNAVAILABLE_CODES


@cache
def dynamodb_wire() -> Any:
    """A plain DynamoDB client (wire-format values), for libraries that bring their own serialization."""
    return boto3.client("dynamodb", config=_CONFIG)
