"""boto3 clients, created on first use and cached, so a cold start pays only for what a route uses."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3
from boto3.dynamodb.transform import TransformationInjector, copy_dynamodb_params
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionError, ReadTimeoutError

# Standard retry mode backs off on throttling and 5xx; three attempts of at most 1 + 2 s stay inside the
# functions' 10 s timeout, so a stuck call becomes a 503 the client can retry, not a gateway timeout.
# (`total_max_attempts` counts the first try; botocore's `max_attempts` would count retries only: four tries.)
_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=1, read_timeout=2)

_UNAVAILABLE_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "SlowDown",
    "InternalError",
}


def _local_endpoint() -> str | None:
    """Where `sam local` runs point DynamoDB and S3: `make local-aws`'s embedded AWS (env.json).

    Only when SAM CLI runs the function (it sets AWS_SAM_LOCAL; Lambda never does): in AWS the template's
    empty LOCAL_AWS_ENDPOINT is never read.
    """
    if os.environ.get("AWS_SAM_LOCAL") != "true":
        return None
    return os.environ.get("LOCAL_AWS_ENDPOINT") or None


class RetryableError(Exception):
    """A backing service did not finish the work; the client should retry (503)."""


@cache
def dynamodb() -> Any:
    """A DynamoDB client that speaks plain Python values.

    The resource layer's own serialization hooks on a plain client: building `boto3.resource` would also
    load the resource model, tens of milliseconds of cold start for nothing we use.
    """
    client = boto3.client("dynamodb", config=_CONFIG, endpoint_url=_local_endpoint())
    injector = TransformationInjector()
    client.meta.events.register(
        "provide-client-params.dynamodb", copy_dynamodb_params, unique_id="dynamodb-create-params-copy"
    )
    client.meta.events.register(
        "before-parameter-build.dynamodb", injector.inject_attribute_value_input, unique_id="dynamodb-attr-value-input"
    )
    client.meta.events.register(
        "after-call.dynamodb", injector.inject_attribute_value_output, unique_id="dynamodb-attr-value-output"
    )
    return client


# SigV4 always: S3 refuses SigV2-presigned downloads of KMS-encrypted objects (the bucket's default), and
# botocore would otherwise presign with SigV2 in us-east-1.
_S3_CONFIG = _CONFIG.merge(Config(signature_version="s3v4"))


@cache
def s3() -> Any:
    return boto3.client("s3", config=_S3_CONFIG, endpoint_url=_local_endpoint())


# A model answer takes seconds: one attempt of at most 20 s stays inside the messages function's 29 s
# timeout with room to store the reply (or the error reply); the client retries a 503 itself.
_BEDROCK_CONFIG = Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=2, read_timeout=20)


@cache
def bedrock_runtime() -> Any:
    return boto3.client("bedrock-runtime", config=_BEDROCK_CONFIG)


# A post to a WebSocket connection is a short call: two attempts, so one slow connection cannot hold a run's
# other subscribers (or its worker) back for long.
_CONNECTIONS_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 2}, connect_timeout=1, read_timeout=2)


@cache
def connections(endpoint_url: str) -> Any:
    """The live WebSocket API's @connections endpoint (`LIVE_CONNECTIONS_URL`)."""
    return boto3.client("apigatewaymanagementapi", config=_CONNECTIONS_CONFIG, endpoint_url=endpoint_url)


def reset() -> None:
    """Forget cached clients (tests bind them inside a fresh mock)."""
    connections.cache_clear()
    dynamodb.cache_clear()
    dynamodb_wire.cache_clear()
    s3.cache_clear()
    bedrock_runtime.cache_clear()


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
    return boto3.client("dynamodb", config=_CONFIG, endpoint_url=_local_endpoint())
