"""Live (WebSocket) connections and their subscriptions to chat runs, and posting to a connection.

A connection is one item (`CONN#<id>`) naming its user and the runs it follows; a subscription is an item in
the run's session partition (`LIVE#<request_id>#<connection id>`), so the worker reads a run's subscribers
with one Query and a session's purge takes them with it. Both expire with API Gateway's two-hour connection
limit, so a connection whose $disconnect never came leaves nothing behind for long.
"""

from __future__ import annotations

from typing import Any

from sessions_api.dal import clients, keys, table
from sessions_api.dal.expressions import Expr
from sessions_api.dal.sessions_repo import put
from sessions_api.models.entities import storable

# API Gateway closes a WebSocket connection after two hours at most.
CONNECTION_SECONDS = 2 * 3600


class Gone(Exception):
    """The connection is closed (GoneException)."""


class LiveRepo:
    def __init__(self, connections_url: str) -> None:
        self.connections_url = connections_url

    # -- connections ------------------------------------------------------------------------------------
    def connect(self, connection_id: str, *, user: str, email: str | None, now: int) -> None:
        item = {
            **keys.connection_key(connection_id),
            "type": "connection",
            "user": user,
            "ttl": now + CONNECTION_SECONDS,
        }
        if email:
            item["email"] = email
        clients.dynamodb().put_item(TableName=table.table_name(), Item=storable(item))

    def connection(self, connection_id: str) -> dict[str, Any] | None:
        return table.get(keys.connection_key(connection_id))

    def disconnect(self, connection_id: str) -> None:
        """The connection and its subscriptions, gone."""
        found = self.connection(connection_id)
        if found is None:
            return
        for followed in found.get("follows") or ():
            session_id, request_id = followed.split(" ", 1)
            _delete(keys.subscription_key(session_id, request_id, connection_id))
        _delete(keys.connection_key(connection_id))

    # -- subscriptions ----------------------------------------------------------------------------------
    def subscribe(self, subscription: dict[str, Any], *, now: int) -> bool | None:
        """Record it, and note it on its connection; False when the connection is gone meanwhile, None when
        the connection follows that run already (its delivery stays as it is)."""
        connection_id = subscription["connection_id"]
        item = {
            **keys.subscription_key(subscription["session_id"], subscription["request_id"], connection_id),
            "type": "subscription",
            **subscription,
            "ttl": now + CONNECTION_SECONDS,
        }
        expr = Expr().add("follows", frozenset({f"{subscription['session_id']} {subscription['request_id']}"}))
        expr.when("attribute_exists(PK)")
        note = {"Update": {"Key": keys.connection_key(connection_id), **expr.params()}}
        try:
            table.transact([put(item, unique=True), note])
        except table.TransactionCancelled as refused:
            return None if refused.failed(0) else False
        return True

    def subscribers(self, session_id: str, request_id: str) -> list[dict[str, Any]]:
        return table.query_all(
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            ExpressionAttributeValues={
                ":pk": keys.session_pk(session_id),
                ":prefix": f"{keys.LIVE_PREFIX}{request_id}#",
            },
            ConsistentRead=True,
        )

    def claim(self, subscription: dict[str, Any], *, by: str) -> bool:
        """Become the one who delivers this subscription's events (the subscribing function replaying a
        finished run, or the worker running it): whoever claims first; True for them."""
        expr = Expr().set("deliverer", by)
        expr.when(f"attribute_exists(PK) AND attribute_not_exists({expr.name('deliverer')})")
        key = keys.subscription_key(
            subscription["session_id"], subscription["request_id"], subscription["connection_id"]
        )
        try:
            table.update(key, expr)
        except table.ConditionFailed:
            return False
        return True

    def drop(self, subscription: dict[str, Any]) -> None:
        _delete(
            keys.subscription_key(subscription["session_id"], subscription["request_id"], subscription["connection_id"])
        )

    def shares(self, share_keys: list[dict[str, str]]) -> list[dict[str, Any]]:
        """The share items that still exist, of those named (named twice or not: BatchGetItem takes each key
        once, and 100 at a time)."""
        distinct = list({(key["PK"], key["SK"]): key for key in share_keys}.values())
        return [
            item for start in range(0, len(distinct), 100) for item in table.batch_get(distinct[start : start + 100])
        ]

    # -- posting ----------------------------------------------------------------------------------------
    def post(self, connection_id: str, data: bytes) -> None:
        """One message to the connection; Gone when it is closed."""
        client = clients.connections(self.connections_url)
        try:
            client.post_to_connection(ConnectionId=connection_id, Data=data)
        except client.exceptions.GoneException as gone:
            raise Gone(connection_id) from gone


def _delete(key: dict[str, str]) -> None:
    clients.dynamodb().delete_item(TableName=table.table_name(), Key=key)
