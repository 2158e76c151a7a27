"""Chat runs: the DynamoDB work of one run as its reply grows, and how soon its first words are stored.

The worker (logic/runner.py) writes what the model streams as coalesced events (every 0.25 s or 4 KB), so
its writes grow with the reply's duration, not with its tokens. Measured in-process against moto with the
local model streaming 4 words per chunk, 5 ms apart (a fast model); the run is handed to the worker
directly, as the stream's event-source mapping would. The synchronous chat of earlier versions made 4
requests whatever the reply; it is shown beside the run's cost.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import harness
from benchmarks.report import Section, table

SAMPLES = 10

TOKENS = (100, 1_000, 10_000)
CHUNK_DELAY_SECONDS = 0.005
BENCH_AGENT = "bench-long"  # the agents we ship answer 2,048 tokens at most; this one may answer 12,000


def run(section: Section) -> None:
    import dataclasses

    from sessions_api import agents, timeutil
    from sessions_api.logic import runner
    from sessions_api.providers.local_echo import LocalEchoProvider
    from sessions_api.settings import get_settings

    provider = LocalEchoProvider(chunk_delay_seconds=CHUNK_DELAY_SECONDS)
    agents.AGENTS[BENCH_AGENT] = dataclasses.replace(
        agents.agent_for(None), name=BENCH_AGENT, max_output_tokens=12_000, context_tokens=100_000
    )
    rows, data = [], {}
    with harness.moto_stack() as stack, harness.quiet():
        for wanted in TOKENS:
            words = wanted // 3  # the local model counts about 3 tokens for each "wordN "
            session_id = stack.api.create_session(title="runs", agent_name=BENCH_AGENT)["session_id"]
            with stack.meter.window() as accept_calls:
                accepted = stack.api(
                    "POST", f"/api/v1/sessions/{session_id}/chat/async", body={"message": f"bench [stream {words}]"}
                ).body
            request_id = accepted["request_id"]
            with stack.meter.window() as calls:
                runner.run(get_settings(), provider, session_id, request_id, remaining_ms=lambda: 900_000)
            work, accepting = harness.Work.of(calls), harness.Work.of(accept_calls)
            view = stack.api("GET", f"/api/v1/chat/poll/{request_id}").body
            events = view["events"]
            run_item: dict[str, Any] = stack.table.get_item(
                Key={"PK": f"SESSION#{session_id}", "SK": f"RUN#{request_id}"}
            )["Item"]
            first = timeutil.parse(events[0]["at"]) - timeutil.parse(run_item["started_at"])
            tokens = view["result"]["usage"]["output_tokens"]
            data[str(wanted)] = {
                "accept": accepting.__dict__,
                "worker": work.__dict__,
                "events": len(events),
                "output_tokens": tokens,
                "first_event_ms": round(first.total_seconds() * 1000),
            }
            rows.append(
                [
                    f"{tokens:,} tokens ({words:,} words)",
                    accepting.requests,
                    f"**{work.requests}**",
                    work.items_written,
                    f"{work.bytes_written:,}",
                    len(events),
                    f"{first.total_seconds() * 1000:.0f} ms",
                ]
            )
    section.data = data
    section.add(
        __doc__.split("\n\n", 1)[1].strip(),
        table(
            [
                "reply",
                "accept: requests",
                "worker: requests",
                "worker: items written",
                "worker: bytes written",
                "events",
                "claim → first event stored",
            ],
            rows,
        ),
    )
    small, large = data[str(TOKENS[0])], data[str(TOKENS[-1])]
    ratio = large["worker"]["items_written"] / small["worker"]["items_written"]
    section.target(
        "items written grow with the reply's duration, not per token (100× the tokens: far under 100× the items)",
        ratio < TOKENS[-1] / TOKENS[0] / 4,
        f"{ratio:.1f}× the items for {TOKENS[-1] // TOKENS[0]}× the tokens",
    )
    _through_the_gateway(section)
    section.summary.append(
        (
            "A chat run's DynamoDB requests, 100 / 10,000-token reply (the synchronous chat: 4 requests)",
            f"{small['worker']['requests']} / {large['worker']['requests']} requests, first words stored after "
            f"{small['first_event_ms']} ms",
            "—",
        )
    )


def _through_the_gateway(section: Section) -> None:
    """What a client sees through the local gateway (make dev's): the synchronous chat, the first event of an
    async one, and what a poll costs next to a plain read."""
    import requests

    from benchmarks.gateway_load import Gateway

    os.environ["ModelProvider"] = "local"  # noqa: SIM112 - the template parameter, as make dev sets it
    with tempfile.TemporaryDirectory() as workdir:
        gateway = Gateway(Path(workdir))
        try:
            http = requests.Session()
            api = gateway.url + "/api/v1"
            session_id = http.post(f"{api}/sessions", json={"title": "bench"}, timeout=30).json()["session_id"]
            sync, first, polls, reads = [], [], [], []
            for _ in range(SAMPLES):
                started = time.perf_counter()
                answer = http.post(f"{api}/sessions/{session_id}/chat", json={"message": "hi"}, timeout=60)
                assert answer.status_code == 200, answer.text
                sync.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                accepted = http.post(f"{api}/sessions/{session_id}/chat/async", json={"message": "hi"}, timeout=60)
                request_id = accepted.json()["request_id"]
                while not http.get(f"{api}/chat/poll/{request_id}", params={"wait": 20}, timeout=60).json()["events"]:
                    pass
                first.append((time.perf_counter() - started) * 1000)
                while http.get(f"{api}/chat/poll/{request_id}", timeout=60).json()["status"] != "completed":
                    time.sleep(0.05)
                for timings, path in ((polls, f"/chat/poll/{request_id}"), (reads, f"/sessions/{session_id}")):
                    started = time.perf_counter()
                    http.get(api + path, timeout=30).raise_for_status()
                    timings.append((time.perf_counter() - started) * 1000)
        finally:
            gateway.stop()
    medians = {
        name: statistics.median(values)
        for name, values in (("sync", sync), ("first", first), ("poll", polls), ("read", reads))
    }
    section.data["gateway"] = medians
    section.add(
        f"Through the local gateway (`make dev`), medians of {SAMPLES}: a short synchronous chat (a run awaited), the "
        "first event of an async chat as a long-polling client sees it, and a poll of a finished run next to a "
        "plain read of the session.",
        table(
            ["synchronous chat", "async: accepted → first event seen", "poll (finished run)", "get session"],
            [
                [
                    f"{medians['sync']:.0f} ms",
                    f"{medians['first']:.0f} ms",
                    f"{medians['poll']:.0f} ms",
                    f"{medians['read']:.0f} ms",
                ]
            ],
        ),
    )
