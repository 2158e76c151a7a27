"""Fork of 10,000 messages (POST /sessions/{id}/fork): requests, time and peak memory of the request.

The source holds 10,000 messages and a deck; the fork is invoked in-process against moto, which answers a
query or a batch far slower than DynamoDB: the seconds are moto's, the requests are what DynamoDB would serve
(one Query per 500 messages, one BatchWriteItem per 25, a few in flight at once).
"""

from __future__ import annotations

import json
import time
import tracemalloc

from benchmarks import harness
from benchmarks.harness import kib
from benchmarks.report import Section, table
from local import moto_fast

MESSAGES = 10_000
FUNCTION_SECONDS = 29  # SessionsFunction's timeout


def run(section: Section) -> None:
    with harness.moto_stack() as stack, harness.quiet(), moto_fast.installed():
        source_id = stack.api.create_session(title="Long")["session_id"]
        harness.seed_messages(stack.table, source_id, MESSAGES)
        deck = {"slides": [{"slide_id": "s1", "html": "<h1>Tides</h1>"}], "css": ""}
        assert stack.api("PUT", f"/api/v1/sessions/{source_id}/slides", body=deck).status == 200
        logical_id, event = harness.support.http_event("POST", f"/api/v1/sessions/{source_id}/fork", body={})
        module = harness.support.load_function(logical_id)
        # moto is slower than the function's time; the invocation is given enough to finish
        context = harness.support.LambdaContext(function_name=logical_id, timeout_seconds=3600)
        tracemalloc.start()
        with stack.meter.window() as calls:
            started = time.perf_counter()
            raw = module.lambda_handler(event, context)
            seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert raw["statusCode"] == 201, raw["body"]
    forked = json.loads(raw["body"])
    work = harness.Work.of(calls)
    section.data.update(work=work.__dict__, seconds=seconds, peak=peak, message_count=forked["message_count"])
    section.add(
        f"A session of {MESSAGES:,} messages and a one-slide deck, forked whole by its owner.",
        table(
            ["", "requests", "operations", "items read", "items written", "seconds (moto)", "peak memory"],
            [
                [
                    "POST …/fork",
                    work.requests,
                    work.operations,
                    f"{work.items_read:,}",
                    f"{work.items_written:,}",
                    f"{seconds:.1f}",
                    kib(peak),
                ]
            ],
        ),
        "The copy reads a page of 500 messages at a time and writes 25 to a request, 8 requests in flight: "
        "the fork holds a page's worth at a time (the peak here also counts moto's own copy of the 10,000 new "
        "items, held in the same process). Against DynamoDB (~10 ms a request) the same "
        f"requests take about {work.requests * 0.01 / 4:.1f} s, inside the function's {FUNCTION_SECONDS} s.",
    )
    section.target(
        "one BatchWriteItem per 25 messages, one Query per 500, nothing read twice",
        forked["message_count"] == MESSAGES and work.requests <= MESSAGES // 25 + MESSAGES // 500 + 10,
        f"{work.requests} requests for {MESSAGES:,} messages",
    )
    section.summary.append(
        (
            f"Fork of {MESSAGES:,} messages",
            f"{work.requests} requests, {kib(peak)} peak, {seconds:.1f} s (moto)",
            "—",
        )
    )
