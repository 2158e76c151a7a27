"""Sessions and the per-user counters that keep `total`, `summary` and the quota exact."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sessions_api.dal import idempotency, keys, rates, table
from sessions_api.dal.expressions import Expr
from sessions_api.identity import Caller
from sessions_api.models.entities import OPEN_STATUSES, Status, storable

GSI1_KEY_ATTRS = ("PK", "SK", "GSI1PK", "GSI1SK")
GSI2_KEY_ATTRS = ("PK", "SK", "GSI2PK", "GSI2SK")


class QuotaExceeded(Exception):
    pass


class WriteRefused(Exception):
    """A conditional write was refused. `session_refused`: the session's own condition failed, and `current`
    is the session as it was then (None: absent); `share_lost`: the writer's share no longer grants the
    write; `message_gone`: the message it removes was gone already; `overtaken`: an append's `behind` plan,
    sent because a newer message had landed first, was refused too."""

    def __init__(
        self,
        current: dict[str, Any] | None,
        *,
        session_refused: bool = True,
        share_lost: bool = False,
        message_gone: bool = False,
    ) -> None:
        super().__init__("conditional write refused")
        self.current = current
        self.session_refused = session_refused
        self.share_lost = share_lost
        self.message_gone = message_gone
        self.overtaken = False


def status_counter(status: str) -> str:
    return f"s_{status}"


ERASING_PREFIX = "erasing_"


def totals(counters: dict[str, Any] | None) -> dict[str, Any]:
    """`total` and `summary` (sessions by status) of a user, from their counters item: less the sessions an
    erasure still has to hide (counted `erasing_*` when it was asked for), which reads no longer see."""
    counters = counters or {}

    def count(name: str) -> int:
        return max(0, int(counters.get(name, 0)) - int(counters.get(ERASING_PREFIX + name, 0)))

    return {
        "total": count("total"),
        "summary": {str(status): count(status_counter(status)) for status in Status},
    }


def counter_names() -> list[str]:
    """Every counter a user's counters item keeps."""
    return ["total", "open_count", *(status_counter(status) for status in Status)]


def erased(session: dict[str, Any], counters: dict[str, Any] | None) -> bool:
    """Whether the session's owner erased everything they had when it already existed (DELETE /me): from that
    moment it is gone from every read, though the erasure's worker may not have reached it yet."""
    erased_before = (counters or {}).get("erased_before")
    return erased_before is not None and str(session.get("created_at", "")) <= str(erased_before)


def status_deltas(old: str | None, new: str | None) -> dict[str, int]:
    """Counter changes when a session moves from `old` to `new` status (None: not counted)."""
    deltas: dict[str, int] = {}
    if old is not None:
        deltas[status_counter(old)] = -1
        deltas["total"] = -1
        deltas["open_count"] = -1 if Status(old) in OPEN_STATUSES else 0
    if new is not None:
        deltas[status_counter(new)] = deltas.get(status_counter(new), 0) + 1
        deltas["total"] = deltas.get("total", 0) + 1
        deltas["open_count"] = deltas.get("open_count", 0) + (1 if Status(new) in OPEN_STATUSES else 0)
    return {name: delta for name, delta in deltas.items() if delta}


def counters_update(user_id: str, deltas: dict[str, int], *, quota: int | None = None) -> dict[str, Any]:
    """A transaction operation adjusting a user's counters (created on first use)."""
    expr = Expr()
    expr.set("type", "counters").set("GSI1PK", keys.owner_gsi1pk(user_id)).set("GSI1SK", keys.COUNTERS_GSI1SK)
    for name, delta in sorted(deltas.items()):
        expr.add(name, delta)
    if quota is not None:
        open_count = expr.name("open_count")
        expr.when(f"attribute_not_exists({open_count}) OR {open_count} < {expr.value(quota)}")
    return {"Update": {"Key": keys.counters_key(user_id), **expr.params()}}


def put(item: dict[str, Any], *, unique: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"Item": storable(item)}
    if unique:
        body["ConditionExpression"] = "attribute_not_exists(PK)"
    return {"Put": body}


def visible(item: dict[str, Any] | None, now_epoch: float) -> dict[str, Any] | None:
    """A session as reads see it: tombstoned or past-TTL sessions are gone."""
    if item is None or item.get("deleted_at") or table.is_expired_by_ttl(item, now_epoch):
        return None
    return item


def owner_condition(expr: Expr, owner: str) -> Expr:
    return expr.when(
        f"attribute_exists(PK) AND attribute_not_exists({expr.name('deleted_at')}) "
        f"AND {expr.name('created_by')} = {expr.value(owner)}"
    )


def with_access(
    session_id: str, caller: Caller, item_key: dict[str, str] | None = None
) -> tuple[dict[str, Any] | None, list[dict[str, Any]], dict[str, Any] | None]:
    """The session, the caller's shares of it and one more item of its partition (the message, the run a
    request is about), in one strongly consistent request: what an access check needs, and what it guards.

    The caller's counters come in the same request, so an owner's erased session reads as absent; a sharee's
    check reads the owner's counters too (a second request, made only when the caller holds a share).
    """
    wanted = [
        keys.session_key(session_id),
        keys.share_key(session_id, "user", caller.user_id),
        keys.counters_key(caller.user_id),
    ]
    if caller.email:
        wanted.append(keys.share_key(session_id, "email", caller.email))
    if item_key is not None:
        wanted.append(item_key)
    found = table.batch_get(wanted)
    session = next((item for item in found if item["SK"] == keys.SESSION_SK), None)
    shares = [item for item in found if item["SK"].startswith(keys.SHARE_PREFIX)]
    other = next((item for item in found if item_key is not None and item["SK"] == item_key["SK"]), None)
    if session is not None:
        owner = session.get("created_by")
        if owner == caller.user_id:
            counters = next((item for item in found if item["SK"] == keys.COUNTERS_SK), None)
        else:
            counters = table.get(keys.counters_key(str(owner))) if shares else None
        if erased(session, counters):
            session = None
    return session, shares, other


@dataclass(frozen=True)
class SessionFilters:
    """What a listing keeps: a title substring (case-insensitive), a status, a type, a creation window."""

    search: str | None = None
    status: str | None = None
    session_type: str | None = None
    created_from: str | None = None
    created_to: str | None = None

    def expression(self) -> Expr:
        expr = Expr()
        if self.search:
            expr.when(f"contains({expr.name('title_lower')}, {expr.value(self.search.lower())})")
        if self.status:
            expr.when(f"{expr.name('status')} = {expr.value(self.status)}")
        if self.session_type:
            expr.when(f"{expr.name('session_type')} = {expr.value(self.session_type)}")
        if self.created_from:
            expr.when(f"{expr.name('created_at')} >= {expr.value(self.created_from)}")
        if self.created_to:
            expr.when(f"{expr.name('created_at')} <= {expr.value(self.created_to)}")
        return expr


@dataclass
class Page:
    items: list[dict[str, Any]]
    next_key: dict[str, Any] | None
    counters: dict[str, Any] | None = None


class SessionsRepo:
    def holds_leftovers(self, session_id: str) -> bool:
        """Whether the partition holds items without its session item (a deleted session's, not purged yet):
        the session item's key sorts first, so one item read tells."""
        found = table.query(
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": keys.session_pk(session_id)},
            ConsistentRead=True,
            Limit=1,
        )["Items"]
        return bool(found) and found[0]["SK"] != keys.session_key(session_id)["SK"]

    def create(self, session: dict[str, Any], *, quota: int, extra_items: list[dict[str, Any]]) -> None:
        """The session, its owner's counters (guarding the quota) and its first items, atomically.

        `WriteRefused` (with the item holding it) when the id is taken, whatever the quota says.
        """
        pointer = idempotency.pointer_item(session["session_id"], int(time.time()))
        charge = rates.Charge(session["created_by"], session["session_id"], rates.weight(extra_items))
        operations = [
            put(session, unique=True),
            counters_update(session["created_by"], status_deltas(None, session["status"]), quota=quota),
            *(put(item) for item in [*extra_items, *([pointer] if pointer else [])]),
            charge.operation(),
        ]
        try:
            table.transact(operations)
        except table.TransactionCancelled as cancelled:
            charge.refuse_if_over(cancelled, len(operations) - 1)
            if cancelled.failed(0):
                raise WriteRefused(cancelled.reasons[0].item) from cancelled
            if cancelled.failed(1):
                raise QuotaExceeded from cancelled
            raise

    def get_with_shares(self, session_id: str, caller: Caller) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The session and the caller's shares of it, in one strongly consistent request."""
        session, shares, _ = with_access(session_id, caller)
        return session, shares

    def counters(self, user_id: str) -> dict[str, Any] | None:
        return table.get(keys.counters_key(user_id))

    def list_owned(
        self, user_id: str, *, limit: int, start_key: dict[str, Any] | None, filters: SessionFilters
    ) -> Page:
        """One page of the owner's sessions, newest activity first, reading at most the page asked for.

        The first page also meets the counters item (it sorts first), so it costs one query.
        """
        expr = filters.expression()
        key_condition = f"{expr.name('GSI1PK')} = {expr.value(keys.owner_gsi1pk(user_id))}"
        first_page = start_key is None
        lookahead = limit + 1 + (1 if first_page else 0)
        condition = expr.condition_expression()
        if condition:  # filters must not drop the counters item that page 1 carries
            grouped = f"({condition})" if " OR " in condition else condition
            condition = f"{grouped} OR {expr.name('SK')} = {expr.value(keys.COUNTERS_SK)}"
        params = expr.params(update=False)
        params.pop("ConditionExpression", None)
        if condition:
            params["FilterExpression"] = condition
        request: dict[str, Any] = {
            "IndexName": "GSI1",
            "KeyConditionExpression": key_condition,
            "ScanIndexForward": False,
            "Limit": lookahead,
            **params,
        }
        if start_key:
            request["ExclusiveStartKey"] = start_key
        response = table.query(**request)
        counters = next((item for item in response["Items"] if item["SK"] == keys.COUNTERS_SK), None)
        sessions = [item for item in response["Items"] if item["SK"] == keys.SESSION_SK]
        if len(sessions) > limit:
            sessions = sessions[:limit]
            next_key: dict[str, Any] | None = {name: sessions[-1][name] for name in GSI1_KEY_ATTRS}
        else:
            next_key = response.get("LastEvaluatedKey")
        return Page(items=sessions, next_key=next_key, counters=counters)

    def latest_active(self, user_id: str, *, created_after: str | None = None) -> dict[str, Any] | None:
        """The active session with the newest activity (created after `created_after`, when given)."""
        request: dict[str, Any] = {
            "IndexName": "GSI2",
            "KeyConditionExpression": "GSI2PK = :pk",
            "ExpressionAttributeValues": {":pk": keys.active_gsi2pk(user_id)},
            "ScanIndexForward": False,
        }
        if created_after is None:
            response = table.query(**request, Limit=1)
            return response["Items"][0] if response["Items"] else None
        request["FilterExpression"] = "created_at > :after"
        request["ExpressionAttributeValues"][":after"] = created_after
        return next(iter(table.query_all(**request)), None)

    def tombstone(
        self,
        session_id: str,
        owner: str,
        *,
        status: str,
        version: int | None,
        now_iso: str,
        due_pk: str,
        due_sk: int,
        purge_ttl: int,
    ) -> dict[str, Any]:
        """The operation that hides a session from every read and queues its purge.

        Conditioned on the status (and version) it is believed to have, so the counters it is paired
        with are exact; a refusal carries the real item.
        """
        expr = owner_condition(Expr(), owner)
        expr.when(f"{expr.name('status')} = {expr.value(status)}")
        if version is not None:
            expr.when(f"{expr.name('version')} = {expr.value(version)}")
        expr.set("deleted_at", now_iso).set("updated_at", now_iso).set("GSI3PK", due_pk).set("GSI3SK", due_sk)
        expr.set("ttl", purge_ttl).add("version", 1)
        expr.remove("GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK")
        return {"Update": {"Key": keys.session_key(session_id), **expr.params()}}

    def delete_sessions(self, owner: str, operations: list[dict[str, Any]], deltas: dict[str, int]) -> None:
        """Tombstones and the owner's counters in one transaction; a refusal names the first refused session."""
        try:
            table.transact([*operations, counters_update(owner, deltas)])
        except table.TransactionCancelled as cancelled:
            refused = next(
                (reason.item for reason in cancelled.reasons if reason.code == "ConditionalCheckFailed"), None
            )
            raise WriteRefused(refused) from cancelled

    def get_many(self, session_ids: list[str]) -> list[dict[str, Any]]:
        return table.batch_get([keys.session_key(session_id) for session_id in session_ids])
