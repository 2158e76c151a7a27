"""`Idempotency-Key` support: Powertools Idempotency, its records kept in the sessions table."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from sessions_api import errors
from sessions_api.dal import clients
from sessions_api.settings import get_settings

RECORD_TTL_SECONDS = 24 * 3600
_config = IdempotencyConfig(
    event_key_jmespath="[user, operation, key]",
    payload_validation_jmespath="body",
    expires_after_seconds=RECORD_TTL_SECONDS,
    raise_on_no_idempotency_key=True,
)
_pending: ContextVar[Callable[[], dict[str, Any]]] = ContextVar("pending_idempotent_call")


class _SessionsTablePersistence(DynamoDBPersistenceLayer):
    """One partition per record (Powertools' sort-key mode would put every record in one hot partition)."""

    def _get_key(self, idempotency_key: str) -> dict[str, Any]:
        return {"PK": {"S": f"IDEMPOTENCY#{idempotency_key}"}, "SK": {"S": "IDEMPOTENCY"}}


@cache
def _idempotent_execute(client: Any) -> Callable[..., dict[str, Any]]:
    # Built on first use (requests without a key never pay for it), once per client.
    store = _SessionsTablePersistence(
        table_name=get_settings().table_name,
        key_attr="PK",
        sort_key_attr="SK",
        expiry_attr="ttl",
        boto3_client=client,
    )

    @idempotent_function(data_keyword_argument="request", persistence_store=store, config=_config)
    def execute(request: dict[str, Any]) -> dict[str, Any]:
        return _pending.get()()

    return execute


def register_context(context: Any) -> None:
    """Lets an in-progress record expire with the invocation, so a crash never blocks a retry for long."""
    _config.register_lambda_context(context)


def run_once(
    *, operation: str, user: str, key: str | None, body: Any, produce: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """`produce()` once per (user, operation, key); a retry gets the first result back."""
    if key is None:
        return produce()
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise errors.validation_error("header.Idempotency-Key", "must be 1 to 255 printable characters")
    token = _pending.set(produce)
    try:
        return _idempotent_execute(clients.dynamodb_wire())(
            request={"user": user, "operation": operation, "key": key, "body": body}
        )
    except IdempotencyValidationError as exc:
        raise errors.Conflict("This Idempotency-Key was already used with a different request body") from exc
    except IdempotencyAlreadyInProgressError as exc:
        raise errors.Conflict(
            "A request with this Idempotency-Key is still in progress", headers={"Retry-After": "1"}
        ) from exc
    finally:
        _pending.reset(token)
