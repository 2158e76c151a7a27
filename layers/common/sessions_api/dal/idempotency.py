"""`Idempotency-Key` support: Powertools Idempotency, its records kept in the sessions table.

A record of a request on a session lives in that session's partition, so it is purged with the session
and never outlives the data it holds; a create's record (no session yet) is tied to the session it
made by a pointer item in the new partition (`pointer_item`), which the purge follows.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from functools import cache
from typing import Any

from sessions_api import errors
from sessions_api.dal import clients, keys
from sessions_api.settings import get_settings

RECORD_TTL_SECONDS = 24 * 3600
_pending: ContextVar[Callable[[], dict[str, Any]]] = ContextVar("pending_idempotent_call")
_scope: ContextVar[str | None] = ContextVar("idempotency_scope", default=None)
_record_id: ContextVar[str | None] = ContextVar("idempotency_record_id", default=None)
_lambda_context: ContextVar[Any] = ContextVar("lambda_context", default=None)


@cache
def _idempotent_execute(client: Any) -> tuple[Callable[..., dict[str, Any]], Any]:
    """(the wrapped call, its config), built once per client on first use."""
    # Imported here: a request without a key (and a function that never takes one) pays nothing for it.
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    class SessionsTablePersistence(DynamoDBPersistenceLayer):
        """Records keyed by `keys.idempotency_record_key`: in the request's session, or one partition each."""

        def _get_key(self, idempotency_key: str) -> dict[str, Any]:
            _record_id.set(idempotency_key)
            key = keys.idempotency_record_key(idempotency_key, _scope.get())
            return {name: {"S": value} for name, value in key.items()}

    config = IdempotencyConfig(
        event_key_jmespath="[user, operation, key]",
        payload_validation_jmespath="body",
        expires_after_seconds=RECORD_TTL_SECONDS,
        raise_on_no_idempotency_key=True,
    )
    store = SessionsTablePersistence(
        table_name=get_settings().table_name, key_attr="PK", sort_key_attr="SK", expiry_attr="ttl", boto3_client=client
    )

    @idempotent_function(data_keyword_argument="request", persistence_store=store, config=config)
    def execute(request: dict[str, Any]) -> dict[str, Any]:
        return _pending.get()()

    return execute, config


def register_context(context: Any) -> None:
    """Lets an in-progress record expire with the invocation, so a crash never blocks a retry for long."""
    _lambda_context.set(context)


def pointer_item(session_id: str, now_epoch: int) -> dict[str, Any] | None:
    """While a create runs under a key: the item that ties the key's record to the new session."""
    record_id = _record_id.get()
    if record_id is None or _scope.get() is not None:
        return None
    return {
        **keys.idempotency_pointer_key(session_id, record_id),
        "type": "idempotency_pointer",
        "ttl": now_epoch + RECORD_TTL_SECONDS,
    }


def run_once(
    *,
    operation: str,
    user: str,
    key: str | None,
    body: Any,
    session_id: str | None,
    produce: Callable[[], dict[str, Any]],
) -> tuple[dict[str, Any], bool]:
    """`produce()` once per (user, operation, key) → (result, replayed): a retry gets the first result back.

    `session_id`: the session the request acts on (its record is kept, and purged, with it). The key's
    shape was checked at the edge (`http.IdempotencyKey`).
    """
    if key is None:
        return produce(), False
    produced = False

    def produce_once() -> dict[str, Any]:
        nonlocal produced
        produced = True
        return produce()

    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    execute, config = _idempotent_execute(clients.dynamodb_wire())
    config.register_lambda_context(_lambda_context.get())
    tokens = (_pending.set(produce_once), _scope.set(session_id), _record_id.set(None))
    try:
        result = execute(request={"user": user, "operation": operation, "key": key, "body": body})
        return result, not produced
    except IdempotencyValidationError as exc:
        raise errors.Conflict("This Idempotency-Key was already used with a different request body") from exc
    except IdempotencyAlreadyInProgressError as exc:
        raise errors.Conflict(
            "A request with this Idempotency-Key is still in progress", headers={"Retry-After": "1"}
        ) from exc
    finally:
        _pending.reset(tokens[0])
        _scope.reset(tokens[1])
        _record_id.reset(tokens[2])
