"""Export everything (POST /me/export) of a user with 100 sessions: the request, then the worker's requests,
time and peak memory, and the archive it streamed to S3.

100 sessions of 100 messages each, a tenth of them with one message too large for its item (stored in S3);
beside them 1,000 sessions of another user that the job must not read. The worker is invoked as its stream
mapping would (in-process, against moto), with the production part size.
"""

from __future__ import annotations

import time
import tracemalloc
from collections import Counter

from benchmarks import harness
from benchmarks.erasure import seed_others
from benchmarks.expiry import Context, seed_sessions
from benchmarks.harness import kib
from benchmarks.report import Section, table
from local import moto_fast

SESSIONS = 100
MESSAGES_PER_SESSION = 100
LARGE_EVERY = 10  # one session in ten holds a message over the item limit (in S3)
LARGE_BYTES = 100_000  # the API's limit per message
OTHERS_SESSIONS = 1_000
TIMEOUT_SECONDS = 900


def run(section: Section) -> None:
    from sessions_api.dal import clients
    from sessions_api.logic.takeout import Takeout
    from sessions_api.settings import get_settings
    from tests.support import load_function

    with harness.moto_stack() as stack, harness.quiet(), moto_fast.installed():
        markdown = load_function("TakeoutWorkerFunction").markdown  # the worker's renderer, as it ships
        mine = seed_sessions(stack.api, stack.table, SESSIONS)
        for number, session_id in enumerate(mine):
            harness.seed_messages(stack.table, session_id, MESSAGES_PER_SESSION - 1)
            large = "x" * LARGE_BYTES if number % LARGE_EVERY == 0 else "a last word"
            result = stack.api(
                "POST", f"/api/v1/sessions/{session_id}/messages", body={"role": "user", "content": large}
            )
            assert result.status == 201, result.body
        stack.api.create_session(user="bob", title="bob's")
        seed_others(stack, OTHERS_SESSIONS)
        s3_calls: Counter[str] = Counter()
        clients.s3().meta.events.register("before-call.s3", lambda model, **_: s3_calls.update([model.name]))

        with stack.meter.window() as asking:
            started = time.perf_counter()
            asked = stack.api("POST", "/api/v1/me/export", user="alice")
            ask_seconds = time.perf_counter() - started
        assert asked.status == 202, asked.body
        job_id = asked.body["job_id"]
        s3_calls.clear()
        tracemalloc.start()
        with stack.meter.window() as working:
            started = time.perf_counter()
            outcome = Takeout(get_settings()).run(
                "alice", job_id, markdown=markdown, remaining_ms=Context(TIMEOUT_SECONDS).get_remaining_time_in_millis
            )
            seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        job = stack.api("GET", f"/api/v1/me/export/{job_id}", user="alice").body
    assert outcome == "completed", outcome
    ask, work = harness.Work.of(asking), harness.Work.of(working)
    messages = SESSIONS * MESSAGES_PER_SESSION
    parts = s3_calls.get("UploadPart", 0)
    s3_operations = ", ".join(f"{name} ×{n}" if n > 1 else name for name, n in sorted(s3_calls.items()))
    section.data.update(
        ask=ask.__dict__,
        work=work.__dict__,
        seconds=seconds,
        ask_seconds=ask_seconds,
        peak=peak,
        job=job,
        s3=dict(s3_calls),
    )
    section.add(
        f"alice: {SESSIONS} sessions × {MESSAGES_PER_SESSION} messages ({SESSIONS // LARGE_EVERY} of them over "
        f"the item limit, in S3); bob: {OTHERS_SESSIONS:,} sessions. The archive: {job['size_bytes']:,} bytes in "
        f"{parts} part(s) of ≤ 8 MiB.",
        table(
            ["step", "DynamoDB requests", "operations", "items read", "S3 requests", "seconds", "peak memory"],
            [
                [
                    "POST /me/export (the request)",
                    ask.requests,
                    ask.operations,
                    ask.items_read,
                    "—",
                    f"{ask_seconds:.3f}",
                    "—",
                ],
                [
                    "the worker",
                    work.requests,
                    work.operations,
                    work.items_read,
                    f"{sum(s3_calls.values())} ({s3_operations})",
                    f"{seconds:.1f}",
                    kib(peak),
                ],
            ],
        ),
        "The time is moto's (its serialisation of each Query dominates a profile); in AWS the worker's cost is "
        f"its {work.requests + sum(s3_calls.values())} requests, a few seconds at 10-30 ms each, well inside one "
        f"{TIMEOUT_SECONDS} s invocation. Peak memory is traced in-process, so it counts moto's own copies too.",
    )
    section.target("the request is one transaction whatever the user has", ask.requests <= 1, ask.operations)
    section.target(
        "the worker reads only the user's items, never the table",
        work.scans == 0 and work.items_read < 2 * (messages + 5 * SESSIONS),
        f"{work.items_read:,} items read for {messages:,} messages, {work.scans} scans",
    )
    section.target(
        "peak memory stays near one part plus one session, not the archive",
        peak < 3 * 8 * 1024 * 1024 + 4 * LARGE_BYTES,
        f"{kib(peak)} peak for a {job['size_bytes']:,}-byte archive",
    )
    section.summary.append(
        (
            f"Export of {SESSIONS} sessions ({messages:,} messages)",
            f"{seconds:.1f} s, {work.requests:,} DynamoDB + {sum(s3_calls.values())} S3 requests, {kib(peak)} peak",
            "—",
        )
    )
