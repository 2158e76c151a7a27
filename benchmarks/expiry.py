"""6. The scheduled expiry run: DynamoDB work against the number of due sessions, and the purge of a big session.

10,000 sessions of one user; 10, 100 and then 1,000 of them made due (idle past their timeout). Each run
should read and write in proportion to what is due, never to the table. Then a 10,000-message session is
deleted and purged by the same function (invoked as the schedule would, with its template timeout).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from benchmarks import harness
from benchmarks.report import Section, table
from local import moto_fast

SESSIONS = 10_000
DUE_COUNTS = (10, 100, 1_000)
PURGE_MESSAGES = 10_000
MAX_RUNS = 10


def log(text: str) -> None:
    print(f"   {text}", file=sys.stderr, flush=True)


class Context:
    """A Lambda context whose deadline runs down like the real one (the function stops before it)."""

    function_name = "ExpiryFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ExpiryFunction"
    aws_request_id = "bench-expiry"

    def __init__(self, timeout_seconds: int) -> None:
        self.deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def _spec() -> Any:
    return next((s for s in harness.function_specs() if s.logical_id == "ExpiryFunction"), None)


def seed_sessions(api: Any, table: Any, count: int) -> list[str]:
    """`count` sessions shaped exactly like the one the API created, none of them due."""
    from sessions_api import ids
    from sessions_api.dal import keys
    from sessions_api.settings import get_settings

    template_item = table.get_item(Key=keys.session_key(api.create_session(title="seed")["session_id"]))["Item"]
    shards = get_settings().due_shards
    future = int(time.time()) + 86_400
    session_ids = []
    with table.batch_writer() as batch:
        for _ in range(count - 1):
            session_id = ids.new_session_id()
            item = dict(template_item)
            item.update(
                keys.session_key(session_id),
                session_id=session_id,
                GSI3PK=keys.due_gsi3pk(keys.due_shard(session_id, shards)),
                GSI3SK=future,
                active_until=future,
            )
            item["GSI1SK"] = keys.activity_sk(item["last_activity_at"], session_id)
            item["GSI2SK"] = item["GSI1SK"]
            batch.put_item(Item=item)
            session_ids.append(session_id)
    table.update_item(  # the owner's counters, as if the API had created them all
        Key=keys.counters_key(template_item["created_by"]),
        UpdateExpression="ADD #total :n, #open :n, #active :n",
        ExpressionAttributeNames={"#total": "total", "#open": "open_count", "#active": "s_active"},
        ExpressionAttributeValues={":n": count - 1},
    )
    return session_ids


def make_due(table: Any, session_ids: list[str]) -> None:
    from sessions_api.dal import keys

    past = int(time.time()) - 60
    for session_id in session_ids:
        table.update_item(
            Key=keys.session_key(session_id),
            UpdateExpression="SET GSI3SK = :due, active_until = :due, last_activity_at = :idle",
            ExpressionAttributeValues={":due": past, ":idle": "2020-01-01T00:00:00.000Z"},
        )


def invoke_expiry(timeout_seconds: int) -> dict[str, Any]:
    """One scheduled run of ExpiryFunction, in-process, with the template's timeout."""
    from tests import support

    event = json.loads((support.EVENTS / "schedule.json").read_text())
    result: dict[str, Any] = support.load_function("ExpiryFunction").lambda_handler(event, Context(timeout_seconds))
    return result


def _invoke(stack: harness.Stack, spec: Any) -> tuple[dict[str, Any], list[harness.Call], float]:
    with stack.meter.window() as calls:
        started = time.perf_counter()
        result = invoke_expiry(spec.timeout)
        seconds = time.perf_counter() - started
    return result, calls, seconds


def run(section: Section) -> None:
    spec = _spec()
    if spec is None or not (spec.code_dir / "app.py").exists():
        section.gap("the expiry function (functions/expiry/) is not in template.yaml yet; the harness is ready")
        return
    rows, data = [], {}
    with harness.moto_stack() as stack, harness.quiet(), moto_fast.installed():
        started = time.perf_counter()
        session_ids = seed_sessions(stack.api, stack.table, SESSIONS)
        section.data["seed_seconds"] = time.perf_counter() - started
        log(f"seeded {SESSIONS} sessions in {section.data['seed_seconds']:.0f} s")
        taken = 0
        for due in DUE_COUNTS:
            make_due(stack.table, session_ids[taken : taken + due])
            taken += due
            result, calls, seconds = _invoke(stack, spec)
            work = harness.Work.of(calls)
            data[due] = {**work.__dict__, "report": result, "seconds": seconds}
            log(f"{due} due: {work.requests} requests in {seconds:.0f} s")
            rows.append(
                [
                    f"{due:,} of {SESSIONS:,}",
                    f"{result.get('expired')} (errors {result.get('errors')})",
                    work.requests,
                    work.operations,
                    work.items_read,
                    work.items_written,
                    f"{work.requests / due:.2f}",
                    f"{work.items_read / due:.2f}",
                    f"{seconds:.1f}",
                ]
            )
        purge = _purge(stack, spec)
    section.data.update(runs=data, purge=purge)
    section.add(
        f"{SESSIONS:,} sessions of one owner; the due ones are made idle before each run (earlier runs' "
        "sessions are expired and no longer due). In-process against moto, with moto's whole-table snapshot per "
        "transaction turned off (it costs seconds per transaction at this size; `errors` in the run report "
        "shows no transaction was refused).",
        table(
            [
                "due sessions",
                "expired",
                "requests",
                "operations",
                "items read",
                "items written",
                "requests per due",
                "items read per due",
                "seconds",
            ],
            rows,
        ),
        f"Purge of a deleted {PURGE_MESSAGES:,}-message session: {purge['runs']} scheduled run(s), "
        f"{purge['requests']:,} requests ({purge['operations']}), {purge['items_read']:,} items read, "
        f"{purge['items_written']:,} items deleted, {purge['seconds']:.1f} s in total "
        f"(moto in-process; DynamoDB's BatchWriteItem is much faster than moto's). Session purged: "
        f"{'yes' if purge['gone'] else '**no**'}.",
    )
    from sessions_api.settings import get_settings

    # A run's fixed cost is one query per due shard, empty or not; what grows must grow with the due count only.
    shards = get_settings().due_shards
    per_due = [(data[d]["requests"] - shards) / d for d in DUE_COUNTS]
    proportional = max(per_due) <= 1.5 * min(per_due) and all(data[d]["scans"] == 0 for d in DUE_COUNTS)
    section.target(
        f"expiry work proportional to the due count (beyond one query per shard, {shards})",
        proportional,
        ", ".join(
            f"{d:,} due → {data[d]['requests']:,} requests, {data[d]['items_read']:,} items read" for d in DUE_COUNTS
        ),
    )
    section.summary.append(
        (
            f"Expiry run over {SESSIONS:,} sessions, 10 / 100 / 1,000 due: requests",
            " / ".join(f"{data[d]['requests']:,}" for d in DUE_COUNTS),
            "—",
        )
    )
    section.summary.append(
        (
            f"Purge of a {PURGE_MESSAGES:,}-message session",
            f"{purge['seconds']:.1f} s, {purge['requests']:,} requests (moto)",
            "—",
        )
    )


def _purge(stack: harness.Stack, spec: Any) -> dict[str, Any]:
    from sessions_api.dal import keys

    session_id = stack.api.create_session(user="bob", title="big")["session_id"]  # alice is at her quota
    harness.seed_messages(stack.table, session_id, PURGE_MESSAGES)
    assert stack.api("DELETE", f"/api/v1/sessions/{session_id}", user="bob").status == 204
    time.sleep(1.1)  # the tombstone is due from the second it was written
    all_calls: list[harness.Call] = []
    seconds, runs = 0.0, 0
    while runs < MAX_RUNS:
        _, calls, elapsed = _invoke(stack, spec)
        runs += 1
        all_calls += calls
        seconds += elapsed
        left = stack.table.query(
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": keys.session_pk(session_id)},
            Select="COUNT",
        )["Count"]
        if left == 0:
            break
    work = harness.Work.of(all_calls)
    return {**work.__dict__, "runs": runs, "seconds": seconds, "gone": left == 0}
