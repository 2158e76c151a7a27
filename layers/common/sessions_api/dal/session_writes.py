"""Every change to a session item, as one transaction planned here and committed by `commit`.

A plan (`SessionWrite`) is the session's update, the items written with it and what the session must be
for the write to apply (`Expects`). The same `Expects` value is both the transaction's condition (built
here) and, when the write is refused, what `logic.policy.refusal` reads to tell the caller why. Who writes
(`Writer`) is added at commit: the owner's condition on the session, and for anyone else a ConditionCheck
on the share that allowed it, in the same transaction, so a revocation can never race the write.

Every write to an open session records activity without reading first: `active_until` is computed by
DynamoDB from the session's own `idle_seconds`, so any write stays a single request. The due time on GSI3
(GSI3SK) is armed only at creation and at status changes, so the few due-index partitions never take a write
per message; the schedule, finding a session due that was written to since, re-arms it at `active_until`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sessions_api import timeutil
from sessions_api.dal import items, keys, rates, table
from sessions_api.dal.expressions import Expr
from sessions_api.dal.items import preview
from sessions_api.dal.sessions_repo import WriteRefused, counters_update, owner_condition, put, status_deltas
from sessions_api.models.entities import OPEN_STATUSES, Status

ALL_STATUSES = frozenset(str(status) for status in Status)
NOT_EXPIRED = ALL_STATUSES - {str(Status.EXPIRED)}
OPEN_FOR_MESSAGES = frozenset({str(Status.ACTIVE), str(Status.RUNNING)})


@dataclass(frozen=True)
class Expects:
    """What the session must be for a write to apply (each field None/False: no requirement)."""

    statuses: frozenset[str] = NOT_EXPIRED  # the statuses the write accepts
    version: int | None = None  # the client's If-Match on the session
    deck_version: int | None = None  # the deck version the write was planned on
    deck_if_match: bool = False  # that deck version is the client's If-Match (412), not our own read (plan again)
    turn_free_at: int | None = None  # epoch seconds: no run holds the session's turn then
    turn_holder: str | None = None  # this run holds the turn…
    turn_held_at: int | None = None  # …and still holds it at this time (its lease has not lapsed)
    waiting_runs: int | None = None  # the runs waiting for the turn, as counted when the write was planned
    checks_newest: bool = False  # the newest message is still `newest_message` (None: there is none)
    newest_message: str | None = None
    message_count: int | None = None  # the messages counted when the write was planned (none added since)
    newest_before: str | None = None  # the session's newest message sorts before this one (or there is none)…
    newest_after: str | None = None  # …or after it: a newer message landed first and keeps the preview
    paused_from: str | None = None  # a resume: the session was paused from this status
    message_id: str | None = None  # the message this write removes must still exist


@dataclass
class SessionWrite:
    """One transaction: the session's update (conditioned by `expects`), items put, other operations."""

    session_id: str
    update: Expr
    expects: Expects
    puts: list[dict[str, Any]] = field(default_factory=list)
    operations: list[dict[str, Any]] = field(default_factory=list)
    message_delete: int | None = None  # index in `operations` of the conditional delete of `expects.message_id`
    # The same write for when a message with a newer id was committed first (ids are made before the commit,
    # so concurrent appends land out of order): it leaves that message the preview.
    behind: SessionWrite | None = None


def signed(change: SessionWrite, author: str) -> SessionWrite:
    """`change` with a pointer, in `author`'s partition, to the items it writes that name them: a sharee's
    write in a session that is not theirs, which their erasure anonymises rather than deletes."""
    pointer = items.authored(author, change.session_id, change.puts)
    if pointer is None:
        return change
    behind = None if change.behind is None else signed(change.behind, author)
    return replace(change, puts=[*change.puts, pointer], behind=behind)


@dataclass(frozen=True)
class Writer:
    """Who writes: the owner, or a sharee whose `share` must still grant one of `permissions` at `now_iso`;
    `caller`, the user whose write rate it counts toward (None: the system's own write, a run's or the schedule's)."""

    owner: str
    share: dict[str, Any] | None = None
    permissions: tuple[str, ...] = ()
    now_iso: str = ""
    caller: str | None = None


def commit(write: SessionWrite, writer: Writer) -> None:
    """Run the plan as `writer`, in one TransactWriteItems (the plan itself is left as it was, to retry);
    refused because a newer message landed first, its `behind` plan instead."""
    try:
        _transact(write, writer)
    except WriteRefused as refused:
        current = refused.current
        if write.behind is None or not refused.session_refused or current is None:
            raise
        newest = write.behind.expects.newest_after
        if current.get("created_by") != writer.owner or current.get("last_message_id", "") <= (newest or ""):
            raise
        try:
            _transact(write.behind, writer)
        except WriteRefused as again:
            again.overtaken = True
            raise


def _transact(write: SessionWrite, writer: Writer) -> None:
    expr = owner_condition(write.update.copy(), writer.owner)
    operations: list[dict[str, Any]] = [{"Update": {"Key": keys.session_key(write.session_id), **expr.params()}}]
    operations += [put(item) for item in write.puts]
    operations += write.operations
    charge = None if writer.caller is None else rates.Charge(writer.caller, write.session_id, rates.weight(write.puts))
    if charge is not None:
        operations.append(charge.operation())
    if writer.share is not None:
        operations.append(_share_check(writer))
    try:
        table.transact(operations)
    except table.TransactionCancelled as cancelled:
        if charge is not None:
            charge.refuse_if_over(cancelled, len(operations) - 1 - (writer.share is not None))
        extra = 1 + len(write.puts)
        raise WriteRefused(
            cancelled.reasons[0].item,
            session_refused=cancelled.failed(0),
            share_lost=writer.share is not None and cancelled.failed(len(operations) - 1),
            message_gone=write.message_delete is not None and cancelled.failed(extra + write.message_delete),
        ) from cancelled


def _share_check(writer: Writer) -> dict[str, Any]:
    """The share still exists, still grants one of the permissions, and has not expired."""
    assert writer.share is not None
    expr = Expr()
    allowed = ", ".join(expr.value(permission) for permission in writer.permissions)
    expires_at = expr.name("expires_at")
    expr.when(f"attribute_exists(PK) AND {expr.name('permission')} IN ({allowed})")
    expr.when(f"attribute_not_exists({expires_at}) OR {expires_at} > {expr.value(writer.now_iso)}")
    key = {"PK": writer.share["PK"], "SK": writer.share["SK"]}
    return {"ConditionCheck": {"Key": key, **expr.params(update=False)}}


def _plan(session_id: str, expr: Expr, expects: Expects, **rest: Any) -> SessionWrite:
    """The write with `expects` added to its own conditions."""
    _require(expr, expects)
    return SessionWrite(session_id, expr, expects, **rest)


def _require(expr: Expr, expects: Expects) -> None:
    if expects.statuses == NOT_EXPIRED:
        expr.when(f"{expr.name('status')} <> {expr.value(str(Status.EXPIRED))}")
    elif len(expects.statuses) == 1:
        expr.when(f"{expr.name('status')} = {expr.value(next(iter(expects.statuses)))}")
    elif expects.statuses != ALL_STATUSES:
        allowed = ", ".join(expr.value(value) for value in sorted(expects.statuses))
        expr.when(f"{expr.name('status')} IN ({allowed})")
    if expects.version is not None:
        expr.when(f"{expr.name('version')} = {expr.value(expects.version)}")
    if expects.deck_version is not None:
        expr.when_count("deck_version", expects.deck_version)
    if expects.turn_free_at is not None:
        until = expr.name("active_run_until")
        expr.when(f"attribute_not_exists({until}) OR {until} < {expr.value(expects.turn_free_at)}")
    if expects.turn_holder is not None:
        expr.when(f"{expr.name('active_run')} = {expr.value(expects.turn_holder)}")
    if expects.turn_held_at is not None:
        expr.when(f"{expr.name('active_run_until')} >= {expr.value(expects.turn_held_at)}")
    if expects.waiting_runs is not None:
        expr.when_count("waiting_runs", expects.waiting_runs)
    if expects.message_count is not None:
        expr.when_count("message_count", expects.message_count)
    if expects.checks_newest:
        last = expr.name("last_message_id")
        if expects.newest_message is None:
            expr.when(f"attribute_not_exists({last})")
        else:
            expr.when(f"{last} = {expr.value(expects.newest_message)}")
    if expects.newest_before is not None:
        last = expr.name("last_message_id")
        expr.when(f"attribute_not_exists({last}) OR {last} < {expr.value(expects.newest_before)}")
    if expects.newest_after is not None:
        expr.when(f"{expr.name('last_message_id')} > {expr.value(expects.newest_after)}")
    if expects.paused_from is not None:
        paused_from = expr.name("paused_from")
        if expects.paused_from == Status.ACTIVE:  # sessions paused before `paused_from` existed resume as active
            expr.when(f"attribute_not_exists({paused_from}) OR {paused_from} = {expr.value(expects.paused_from)}")
        else:
            expr.when(f"{paused_from} = {expr.value(expects.paused_from)}")


def _touch(
    expr: Expr, session_id: str, moment: datetime, *, active_listing: bool = True, due: bool = True, arm: bool = False
) -> Expr:
    """Activity: times, the owner's listing order, the active listing, the idle deadline (`arm`: and the due
    time with it), the version."""
    at = timeutil.iso(moment)
    expr.set("last_activity_at", at).set("updated_at", at)
    expr.set("GSI1SK", keys.activity_sk(at, session_id))
    if active_listing:
        expr.set("GSI2SK", keys.activity_sk(at, session_id))
    if due:
        until = f"{expr.name('idle_seconds')} + {expr.value(timeutil.epoch_seconds(moment))}"
        expr.set_raw(f"{expr.name('active_until')} = {until}")
        if arm:
            expr.set_raw(f"{expr.name('GSI3SK')} = {until}")
    return expr.add("version", 1)


# -- messages and the session's turn ------------------------------------------------------------------
@dataclass(frozen=True)
class Turn:
    """A run's hold on the session's turn: `request_id` until `until` (epoch seconds, renewed while it
    works), taken at `now`. One run at a time per session: the others wait (`waiting_runs`) or are refused."""

    request_id: str
    now: int
    until: int


@dataclass(frozen=True)
class TurnEnd:
    """A run giving the turn up, to nobody or to the next waiting run. `waiting_runs` is the count the
    finishing run saw: a run enqueued meanwhile makes the write plan again, so no waiting run is stranded."""

    request_id: str
    waiting_runs: int | None  # 0 when it passes the turn to nobody (None: it names its successor)
    successor: Turn | None = None


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int
    cost_usd: float


def append_messages(
    session_id: str,
    messages: list[dict[str, Any]],
    event: dict[str, Any],
    *,
    moment: datetime,
    open_only: bool = True,
    take_turn: Turn | None = None,
    end_turn: TurnEnd | None = None,
    usage: Usage | None = None,
    puts: list[dict[str, Any]] = (),  # type: ignore[assignment]
    operations: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> SessionWrite:
    """Messages (as `MessagesRepo.offload` made them) and what they add to the session's counters.

    `open_only`: only sessions open for messages take them (a run's reply completes a turn begun while
    open, so it does not ask). `take_turn` / `end_turn`: the run whose user message or reply this is takes
    or gives up the session's turn; `usage`: what the model call cost; `puts`, `operations`: the run's own items.
    """
    expr = Expr()
    expr.add("message_count", len(messages))
    for role in ("user", "assistant", "system"):
        count = sum(1 for message in messages if message["role"] == role)
        if count:
            expr.add(f"{role}_messages", count)
            if role == "user":
                expr.add("turn_count", count)
    failed = sum(1 for message in messages if message.get("is_error"))
    if failed:
        expr.add("error_count", failed)
    input_tokens = sum(message.get("token_count", 0) for message in messages if message["role"] != "assistant")
    output_tokens = sum(message.get("token_count", 0) for message in messages if message["role"] == "assistant")
    if usage is not None:
        input_tokens += usage.input_tokens
        if usage.input_tokens + usage.output_tokens:
            expr.add("billed_tokens", usage.input_tokens + usage.output_tokens)
        if usage.cost_usd:
            expr.add("cost_usd", usage.cost_usd)
    if input_tokens:
        expr.add("input_tokens", input_tokens)
    if output_tokens:
        expr.add("output_tokens", output_tokens)
    if take_turn is not None:
        expr.set("active_run", take_turn.request_id).set("active_run_until", take_turn.until)
    if end_turn is not None and end_turn.successor is not None:
        expr.set("active_run", end_turn.successor.request_id).set("active_run_until", end_turn.successor.until)
        expr.add("waiting_runs", -1)
    elif end_turn is not None:
        expr.remove("active_run", "active_run_until")
    expects = Expects(
        statuses=OPEN_FOR_MESSAGES if open_only else NOT_EXPIRED,
        turn_free_at=take_turn.now if take_turn else None,
        turn_holder=end_turn.request_id if end_turn else None,
        waiting_runs=end_turn.waiting_runs if end_turn else None,
    )
    _touch(expr, session_id, moment)
    newest = messages[-1]
    behind = _plan(
        session_id,
        expr.copy(),
        replace(expects, newest_after=newest["message_id"]),
        puts=[*messages, event, *puts],
        operations=list(operations),
    )
    # The id tells a later delete whether it removes the newest message (whose preview must change).
    expr.set("last_message_id", newest["message_id"])
    expr.set("last_message_preview", preview(newest.get("content", newest.get("content_preview", ""))))
    return _plan(
        session_id,
        expr,
        replace(expects, newest_before=newest["message_id"]),
        puts=[*messages, event, *puts],
        operations=list(operations),
        behind=behind,
    )


def enqueue_run(
    session_id: str, puts: list[dict[str, Any]], *, moment: datetime, holder: str, now: int
) -> SessionWrite:
    """A run that waits for the turn `holder` has now (its own items in `puts`); refused if the turn was
    freed meanwhile, so the run takes it instead of waiting for a hand-over that will not come."""
    expr = _touch(Expr().add("waiting_runs", 1), session_id, moment)
    expects = Expects(statuses=OPEN_FOR_MESSAGES, turn_holder=holder, turn_held_at=now)
    return _plan(session_id, expr, expects, puts=puts)


def dequeue_run(
    session_id: str, puts: list[dict[str, Any]], deletes: list[dict[str, str]], operations: list[dict[str, Any]]
) -> SessionWrite:
    """A waiting run leaves the queue (cancelled) before it ever had the turn: nothing else changes."""
    operations = [
        *operations,
        *({"Delete": {"Key": key, "ConditionExpression": "attribute_exists(PK)"}} for key in deletes),
    ]
    expr = Expr().add("waiting_runs", -1)
    return _plan(session_id, expr, Expects(statuses=ALL_STATUSES), puts=puts, operations=operations)


def renew_turn(session_id: str, request_id: str, until: int) -> dict[str, Any]:
    """A transaction operation: the running run keeps the turn until `until` (only while it holds it)."""
    expr = Expr().set("active_run_until", until)
    expr.when(f"{expr.name('active_run')} = {expr.value(request_id)}")
    return {"Update": {"Key": keys.session_key(session_id), **expr.params()}}


def remove_message(
    session_id: str,
    message: dict[str, Any],
    event: dict[str, Any],
    *,
    moment: datetime,
    newest_seen: str | None,
    counted: int,
    successor: dict[str, Any] | None,
    was_newest: bool,
) -> SessionWrite:
    """The message's delete and its counters taken back; for the newest message, the next one's preview,
    guarded by `last_message_id` and by the count of messages as read (`counted`: an append overtaken by
    the newest leaves `last_message_id` alone), so an append racing the delete is never overwritten."""
    role = message["role"]
    expr = Expr().add("message_count", -1).add(f"{role}_messages", -1)
    if role == "user":
        expr.add("turn_count", -1)
    if message.get("is_error"):
        expr.add("error_count", -1)
    tokens = int(message.get("token_count", 0))
    if tokens:
        expr.add("output_tokens" if role == "assistant" else "input_tokens", -tokens)
    if was_newest:
        if successor is None:
            expr.remove("last_message_id", "last_message_preview")
        else:
            text = successor.get("content", successor.get("content_preview", ""))
            expr.set("last_message_id", successor["message_id"]).set("last_message_preview", preview(text))
    expects = Expects(
        checks_newest=was_newest,
        newest_message=newest_seen,
        message_count=counted if was_newest else None,
        message_id=message["message_id"],
    )
    delete = {
        "Delete": {
            "Key": keys.message_key(session_id, message["message_id"]),
            "ConditionExpression": "attribute_exists(PK)",  # already gone: the counters must not go down twice
        }
    }
    return _plan(
        session_id, _touch(expr, session_id, moment), expects, puts=[event], operations=[delete], message_delete=0
    )


# -- edits ------------------------------------------------------------------------------------------
def edit(
    session_id: str, changes: dict[str, Any], events: list[dict[str, Any]], *, moment: datetime, version: int | None
) -> SessionWrite:
    """The client's changes to the session's own fields (None removes one)."""
    expr = Expr()
    for name, value in changes.items():
        if value is None:
            expr.remove(name)
        else:
            expr.set(name, value)
    if "title" in changes:
        expr.set("title_lower", changes["title"].lower())
    return _plan(session_id, _touch(expr, session_id, moment), Expects(version=version), puts=events)


def touch(
    session_id: str,
    *,
    moment: datetime,
    puts: list[dict[str, Any]],
    deletes: list[dict[str, str]] = (),  # type: ignore[assignment]
    version: int | None = None,
) -> SessionWrite:
    """Items written to an open session (shares, comments, results), recorded as its activity."""
    operations = [{"Delete": {"Key": key}} for key in deletes]
    return _plan(
        session_id, _touch(Expr(), session_id, moment), Expects(version=version), puts=puts, operations=operations
    )


def stamp_expired(
    session_id: str, *, at: str, puts: list[dict[str, Any]], deletes: list[dict[str, str]]
) -> SessionWrite:
    """A change to an expired session (a revoke) that never reopens it: no activity, its purge time stays."""
    expr = Expr().set("updated_at", at).add("version", 1)
    operations = [{"Delete": {"Key": key}} for key in deletes]
    return _plan(session_id, expr, Expects(statuses=frozenset({str(Status.EXPIRED)})), puts=puts, operations=operations)


def store_deck(
    session_id: str,
    deck_item: dict[str, Any],
    event: dict[str, Any],
    *,
    moment: datetime,
    expected_version: int,
    if_match: bool,
    payload_key: str | None,
    operations: list[dict[str, Any]],
) -> SessionWrite:
    """The deck at `expected_version + 1`, with `operations` of the writer's own (a run's events and progress);
    the session's `deck_version` is what refuses a stale deck."""
    expr = Expr().set("deck_version", expected_version + 1)
    if payload_key:
        expr.set("deck_payload_key", payload_key)
    else:
        expr.remove("deck_payload_key")
    expects = Expects(deck_version=expected_version, deck_if_match=if_match)
    return _plan(session_id, _touch(expr, session_id, moment), expects, puts=[deck_item, event], operations=operations)


def record_export(
    session_id: str, record: dict[str, Any], event: dict[str, Any], *, summary: dict[str, Any]
) -> SessionWrite:
    """An export read the content, so version, activity and expiry stay put; any status takes one."""
    expr = Expr().set("last_exported_at", summary["created_at"]).set(f"latest_export_{summary['format']}", summary)
    return _plan(session_id, expr, Expects(statuses=ALL_STATUSES), puts=[record, event])


# -- status -----------------------------------------------------------------------------------------
def change_status(
    session_id: str,
    *,
    source: Status,
    target: Status,
    owner: str,
    moment: datetime,
    due_pk: str,
    reason: str | None,
    paused_from: str | None,
    version: int | None,
    puts: list[dict[str, Any]],
) -> SessionWrite:
    """A client's transition from `source` to `target`: status, index keys, counters and activity.

    `paused_from`: a resume, which returns to the status the session was paused from.
    """
    at = timeutil.iso(moment)
    expr = Expr()
    if paused_from is not None:
        expr.remove("paused_from")
    if target is Status.PAUSED:
        expr.set("paused_from", str(source))
    expr.set("status", str(target)).set("status_changed_at", at)
    if reason is None:
        expr.remove("status_reason")
    else:
        expr.set("status_reason", reason)
    listed_active, due = target is Status.ACTIVE, target in OPEN_STATUSES
    if listed_active:
        expr.set("GSI2PK", keys.active_gsi2pk(owner))
    else:
        expr.remove("GSI2PK", "GSI2SK")
    if due:
        expr.set("GSI3PK", due_pk)
    else:
        expr.remove("GSI3PK", "GSI3SK")
        expr.set("ended_at", at)
    _touch(expr, session_id, moment, active_listing=listed_active, due=due, arm=due)  # the index is rewritten anyway
    expects = Expects(statuses=frozenset({str(source)}), version=version, paused_from=paused_from)
    counters = counters_update(owner, status_deltas(source, target))
    return _plan(session_id, expr, expects, puts=puts, operations=[counters])


# -- the schedule's writes (no caller: conditioned on the session's own state) ------------------------
def _run(session_id: str, expr: Expr, operations: list[dict[str, Any]] = ()) -> None:  # type: ignore[assignment]
    """Run a system write; a refusal carries the session as it was."""
    try:
        table.transact([{"Update": {"Key": keys.session_key(session_id), **expr.params()}}, *operations])
    except table.TransactionCancelled as cancelled:
        raise WriteRefused(cancelled.reasons[0].item) from cancelled


def _present(expr: Expr, status: str) -> Expr:
    expr.when(f"attribute_exists(PK) AND attribute_not_exists({expr.name('deleted_at')})")
    return expr.when(f"{expr.name('status')} = {expr.value(status)}")


def _due(expr: Expr, now_epoch: int) -> Expr:
    return expr.when(f"{expr.name('GSI3SK')} <= {expr.value(now_epoch)}")


def _idle(expr: Expr, now_epoch: int) -> Expr:
    """No write since its idle deadline (a session written before `active_until` existed: its due time)."""
    until, now = expr.name("active_until"), expr.value(now_epoch)
    return expr.when(f"{until} <= {now} OR (attribute_not_exists({until}) AND {expr.name('GSI3SK')} <= {now})")


def expire(
    session_id: str,
    owner: str,
    *,
    source: Status,
    moment: datetime,
    purge_epoch: int,
    ttl: int,
    event: dict[str, Any],
) -> bool:
    """Expire the session if it is still idle: a write since has moved `active_until` past now, and then the
    condition fails and the session stays open (`rearm` moves its due time there). False when not expired."""
    at = timeutil.iso(moment)
    expr = _idle(_present(Expr(), str(source)), timeutil.epoch_seconds(moment))
    expr.set("status", str(Status.EXPIRED)).set("status_changed_at", at).set("ended_at", at).set("updated_at", at)
    expr.set("GSI3SK", purge_epoch).set("ttl", ttl)  # still due: for the purge, after the retention
    expr.remove("GSI2PK", "GSI2SK", "paused_from").add("version", 1)
    counters = counters_update(owner, status_deltas(source, Status.EXPIRED))
    try:
        _run(session_id, expr, [put(event), counters])
    except WriteRefused:
        return False
    return True


def hide_expired(session_id: str, owner: str, moment: datetime) -> bool:
    """An expired session past its retention leaves every read and the counters in one transaction;
    True when it is (now, or already) a tombstone ready for the purge."""
    at = timeutil.iso(moment)
    expr = _due(_present(Expr(), str(Status.EXPIRED)), timeutil.epoch_seconds(moment))
    expr.set("deleted_at", at).set("updated_at", at).remove("GSI1PK", "GSI1SK").add("version", 1)
    try:
        _run(session_id, expr, [counters_update(owner, status_deltas(Status.EXPIRED, None))])
    except WriteRefused as refused:
        return bool(refused.current and refused.current.get("deleted_at"))
    return True


def rearm(session_id: str, status: str, now_epoch: int) -> bool:
    """A due session written to since it was armed: due again at its idle deadline (False: it changed
    meanwhile, or is idle after all and the next run expires it)."""
    expr = _present(Expr(), status)
    expr.when(f"{expr.name('active_until')} > {expr.value(now_epoch)}")
    expr.set_raw(f"{expr.name('GSI3SK')} = {expr.name('active_until')}")
    try:
        table.update(keys.session_key(session_id), expr)
    except table.ConditionFailed:
        return False
    return True


def drop_due(session_id: str, status: str) -> None:
    """Take a session that cannot expire out of the due index (a repair, not a path)."""
    expr = _present(Expr(), status).remove("GSI3PK", "GSI3SK")
    try:
        _run(session_id, expr)
    except WriteRefused:
        return
