"""Chat runs and their events, in their session's partition (`RUN#…`, `RUNEVT#…#n`, `RUNQ#…`)."""

from __future__ import annotations

from typing import Any

from sessions_api.dal import keys, partition, table
from sessions_api.dal.expressions import Expr
from sessions_api.dal.sessions_repo import Page, with_access
from sessions_api.identity import Caller

EVENTS_PAGE = 500


class RunsRepo:
    def get_with_access(
        self, session_id: str, request_id: str, caller: Caller
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]], dict[str, Any] | None]:
        """The session, the caller's shares of it and the run, in one strongly consistent request."""
        return with_access(session_id, caller, keys.run_key(session_id, request_id))

    def get(self, session_id: str, request_id: str) -> dict[str, Any] | None:
        return table.get(keys.run_key(session_id, request_id))

    def events(self, session_id: str, request_id: str, *, after: int, limit: int = EVENTS_PAGE) -> list[dict[str, Any]]:
        """The run's events numbered above `after`, in order (their `event` maps)."""
        request: dict[str, Any] = {
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": keys.session_pk(session_id),
                ":prefix": f"{keys.RUN_EVENT_PREFIX}{request_id}#",
            },
            "ConsistentRead": True,
            "Limit": limit,
        }
        if after > 0:
            request["ExclusiveStartKey"] = keys.run_event_key(session_id, request_id, after)
        return [item["event"] for item in table.query(**request)["Items"]]

    def page(self, session_id: str, *, limit: int, start_key: dict[str, Any] | None) -> Page:
        """The session's runs, newest first."""
        return partition.page(session_id, keys.RUN_PREFIX, limit=limit, start_key=start_key, ascending=False)

    def next_waiting(self, session_id: str) -> dict[str, Any] | None:
        """The run whose turn comes next, if any runs wait."""
        response = table.query(
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            ExpressionAttributeValues={":pk": keys.session_pk(session_id), ":prefix": keys.RUN_QUEUE_PREFIX},
            ConsistentRead=True,
            Limit=1,
        )
        if not response["Items"]:
            return None
        entry = response["Items"][0]
        found = self.get(session_id, entry["request_id"])
        return {**found, "queue_key": {"PK": entry["PK"], "SK": entry["SK"]}} if found else None

    def claim(
        self, session_id: str, request_id: str, *, worker: str, lease_until: int, at: str
    ) -> dict[str, Any] | None:
        """Start the run as `worker` if it is ready and nobody has started it (None otherwise)."""
        expr = Expr()
        expr.when(f"{expr.name('phase')} = {expr.value('ready')}")
        expr.set("phase", "running").set("status", "running").set("worker", worker).set("started_at", at)
        # Its due time stays the one it was made ready with: the schedule re-arms a run found due while running.
        expr.set("lease_until", lease_until).add("attempts", 1)
        return self._update(session_id, request_id, expr)

    def take_over(
        self, session_id: str, request_id: str, *, worker: str, now: int, lease_until: int
    ) -> dict[str, Any] | None:
        """Adopt a run whose worker stopped renewing its lease (crashed or timed out), to end it (None if it
        is still held, or done)."""
        expr = Expr()
        lease = expr.name("lease_until")
        expr.when(f"{expr.name('phase')} = {expr.value('running')} AND {lease} < {expr.value(now)}")
        expr.set("worker", worker).set("lease_until", lease_until).set("GSI3SK", lease_until).add("attempts", 1)
        return self._update(session_id, request_id, expr)

    def rearm(self, session_id: str, request_id: str, *, now: int) -> bool:
        """A running run found due whose lease its worker renewed since: due again when the lease lapses."""
        expr = Expr()
        lease = expr.name("lease_until")
        expr.when(f"{expr.name('phase')} = {expr.value('running')} AND {lease} > {expr.value(now)}")
        expr.set_raw(f"{expr.name('GSI3SK')} = {lease}")
        try:
            table.update(keys.run_key(session_id, request_id), expr)
        except table.ConditionFailed:
            return False
        return True

    def _update(self, session_id: str, request_id: str, expr: Expr) -> dict[str, Any] | None:
        try:
            return table.update(keys.run_key(session_id, request_id), expr, return_new=True)
        except table.ConditionFailed:
            return None

    @staticmethod
    def write(operations: list[dict[str, Any]]) -> None:
        """A run's own items and operations (events, progress) in one transaction; TransactionCancelled when
        the run is no longer this worker's (cancelled, or taken over)."""
        table.transact(operations)

    @staticmethod
    def progress(
        session_id: str, request_id: str, *, worker: str, last_event: int, added: int, lease_until: int | None
    ) -> dict[str, Any]:
        """A transaction operation: the run's event count moves from `last_event` by `added`, only while
        `worker` still runs it (a cancel or a take-over makes it fail)."""
        expr = Expr().set("last_event", last_event + added)
        if lease_until is not None:  # not the due time: the schedule re-arms a live run at its lease (`rearm`)
            expr.set("lease_until", lease_until)
        expr.when(f"{expr.name('phase')} = {expr.value('running')} AND {expr.name('worker')} = {expr.value(worker)}")
        expr.when_count("last_event", last_event)
        return {"Update": {"Key": keys.run_key(session_id, request_id), **expr.params()}}

    @staticmethod
    def finish(
        session_id: str,
        request_id: str,
        *,
        expected_phases: tuple[str, ...],
        worker: str | None,
        last_event: int,
        fields: dict[str, Any],
    ) -> dict[str, Any]:
        """A transaction operation ending the run with `fields` (status, reply, usage…), if it is where it was
        believed to be: in one of `expected_phases`, run by `worker` (when given), at event `last_event`."""
        expr = Expr()
        for name, value in fields.items():
            expr.set(name, value)
        expr.set("phase", "done").remove("lease_until", "GSI3PK", "GSI3SK", "worker")
        phases = ", ".join(expr.value(phase) for phase in expected_phases)
        expr.when(f"{expr.name('phase')} IN ({phases})")
        if worker is not None:
            expr.when(f"{expr.name('worker')} = {expr.value(worker)}")
        expr.when_count("last_event", last_event)
        return {"Update": {"Key": keys.run_key(session_id, request_id), **expr.params()}}

    @staticmethod
    def promote(
        session_id: str, request_id: str, *, user_message_id: str, due_pk: str, ready_until: int
    ) -> dict[str, Any]:
        """A transaction operation: a waiting run gets the turn and is ready for a worker."""
        expr = Expr().set("phase", "ready").set("user_message_id", user_message_id)
        expr.set("GSI3PK", due_pk).set("GSI3SK", ready_until)
        expr.when(f"{expr.name('phase')} = {expr.value('waiting')}")
        return {"Update": {"Key": keys.run_key(session_id, request_id), **expr.params()}}
