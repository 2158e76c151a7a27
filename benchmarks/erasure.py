"""Erase everything (DELETE /me) of a user with 100 sessions: requests, time, peak memory of the worker,
against the alternative a "delete all for a user" without per-user keys needs: a scan of the whole table.

100 sessions of 20 messages each for the erased user, beside 1,000 sessions of another user that must not
be touched. The worker is invoked as its stream mapping would (in-process, against moto).
"""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

from benchmarks import harness
from benchmarks.expiry import Context, seed_sessions
from benchmarks.harness import kib
from benchmarks.report import Section, table
from local import moto_fast

SESSIONS = 100
MESSAGES_PER_SESSION = 20
OTHERS_SESSIONS = 10_000


def run(section: Section) -> None:
    from sessions_api.dal import keys
    from sessions_api.logic.erasing import Eraser
    from sessions_api.settings import get_settings

    with harness.moto_stack() as stack, harness.quiet(), moto_fast.installed():
        mine = seed_sessions(stack.api, stack.table, SESSIONS)  # alice's, as the API makes them
        for session_id in mine:
            harness.seed_messages(stack.table, session_id, MESSAGES_PER_SESSION)
        stack.api.create_session(user="bob", title="bob's")
        seed_others(stack, OTHERS_SESSIONS)
        table_items = stack.table.scan(Select="COUNT")["Count"]
        with stack.meter.window() as asking:
            started = time.perf_counter()
            asked = stack.api("DELETE", "/api/v1/me", user="alice")
            ask_seconds = time.perf_counter() - started
        assert asked.status == 202, asked.body
        erasure_id = asked.body["erasure_id"]
        tracemalloc.start()
        with stack.meter.window() as working:
            started = time.perf_counter()
            done = Eraser(get_settings()).run("alice", erasure_id, Context(900).get_remaining_time_in_millis)
            seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        receipt = stack.api("GET", f"/api/v1/me/erasures/{erasure_id}", user="alice").body
        bobs_left = stack.table.query(
            IndexName="GSI1",
            KeyConditionExpression="GSI1PK = :pk",
            ExpressionAttributeValues={":pk": keys.owner_gsi1pk("bob")},
            Select="COUNT",
        )["Count"]
    ask, work = harness.Work.of(asking), harness.Work.of(working)
    section.data.update(
        ask=ask.__dict__, work=work.__dict__, seconds=seconds, ask_seconds=ask_seconds, peak=peak, receipt=receipt
    )
    section.add(
        f"alice: {SESSIONS} sessions × {MESSAGES_PER_SESSION} messages; bob: {OTHERS_SESSIONS:,} sessions "
        f"({table_items:,} items in the table). The worker ran once (finished: {done}); bob's sessions after: "
        f"{bobs_left - 1:,} (untouched).",
        table(
            ["step", "requests", "operations", "items read", "items written", "seconds", "peak memory"],
            [
                [
                    "DELETE /me (the request)",
                    ask.requests,
                    ask.operations,
                    ask.items_read,
                    ask.items_written,
                    f"{ask_seconds:.2f}",
                    "—",
                ],
                [
                    "the worker",
                    work.requests,
                    work.operations,
                    work.items_read,
                    work.items_written,
                    f"{seconds:.1f}",
                    kib(peak),
                ],
                ["alternative: find the user's items by Scan", "≥ 1 per MB", "Scan", f"{table_items:,}", "—", "—", "—"],
            ],
        ),
        f"Receipt: {receipt['sessions']} sessions, {receipt['items_deleted']:,} items and "
        f"{receipt['objects_deleted']} objects deleted. Items read by the worker per item it deleted: "
        f"{work.items_read / max(1, receipt['items_deleted']):.2f}; a scan would read "
        f"{table_items / max(1, receipt['items_deleted']):.1f} per item deleted here, and grows with everyone's data.",
    )
    section.target("the request is one transaction whatever the user has", ask.requests <= 2, ask.operations)
    section.target(
        "the worker reads no more than it deletes (×2), never the table",
        work.scans == 0 and work.items_read <= 2 * max(1, receipt["items_deleted"]),
        f"{work.items_read:,} items read, {receipt['items_deleted']:,} deleted, {work.scans} scans",
    )
    section.summary.append(
        (
            f"Erasure of {SESSIONS} sessions ({SESSIONS * MESSAGES_PER_SESSION:,} messages)",
            f"{seconds:.1f} s, {work.requests:,} requests, {kib(peak)} peak (moto)",
            f"a Scan reads all {table_items:,} items",
        )
    )


def seed_others(stack: Any, count: int) -> None:
    """bob's sessions, shaped as the API makes them."""
    from sessions_api import ids
    from sessions_api.dal import keys

    first = stack.table.query(
        IndexName="GSI1",
        KeyConditionExpression="GSI1PK = :pk",
        ExpressionAttributeValues={":pk": keys.owner_gsi1pk("bob")},
    )["Items"]
    template_item = next(item for item in first if item["SK"] == keys.SESSION_SK)
    with stack.table.batch_writer() as batch:
        for _ in range(count):
            session_id = ids.new_session_id()
            item = {**template_item, **keys.session_key(session_id), "session_id": session_id}
            item["GSI1SK"] = keys.activity_sk(item["last_activity_at"], session_id)
            item.pop("GSI3PK", None), item.pop("GSI3SK", None)
            batch.put_item(Item=item)
