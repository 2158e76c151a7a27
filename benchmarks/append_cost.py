"""2. The cost of appending message n of a session: ours against LangChain's DynamoDBChatMessageHistory.

Ours writes one message item (and the session's counters) in one request whatever the history length.
LangChain reads the whole history item and writes it back whole, so each append costs more than the last
until the item passes DynamoDB's 400 KB limit and appends fail. Both run against the same moto in-process
(which enforces the 400 KB item limit: the failure below is moto's ValidationException).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks import harness, plots
from benchmarks.peers import langchain_history
from benchmarks.report import Section, table

CHECKPOINTS = (1, 100, 1_000, 10_000)
# A typical chat turn (~300 characters); both sides append the same text.
CONTENT = ("Here is what I found about the quarterly numbers, with the three caveats you asked about. " * 4)[:300]
LANGCHAIN_SAMPLES = (1, 2, 5, 10, 20, 50, 100, 200, 300, 400, 500, 700, 1_000, 2_000, 5_000, 10_000)


def _ours_route(session_id: str) -> bool:
    return harness.has_route("POST", f"/api/v1/sessions/{session_id}/messages")


def _layer_append(session_id: str, role: str, content: str) -> None:
    """The append use case itself, below the routes: its one transaction."""
    from sessions_api.identity import Caller
    from sessions_api.logic.messages import Messages
    from sessions_api.models.messages import MessageIn
    from sessions_api.settings import get_settings

    Messages(get_settings()).append(Caller("alice"), session_id, [MessageIn(role=role, content=content)])


def ours(stack: harness.Stack) -> tuple[str, dict[int, harness.Work]]:
    session_id = stack.api.create_session(title="append cost")["session_id"]
    via_api = _ours_route(session_id)
    results: dict[int, harness.Work] = {}
    have = 0
    for n in CHECKPOINTS:
        if n - 1 > have:
            harness.seed_messages(stack.table, session_id, n - 1 - have, content=CONTENT, start=have)
            have = n - 1
        role = "user" if n % 2 else "assistant"
        with stack.meter.window() as calls:
            if via_api:
                result = stack.api(
                    "POST", f"/api/v1/sessions/{session_id}/messages", body={"role": role, "content": CONTENT}
                )
                assert result.status == 201, result.body
            else:
                _layer_append(session_id, role, CONTENT)
        have += 1
        results[n] = harness.Work.of(calls)
    return ("`POST /sessions/{id}/messages`" if via_api else "the layer's append write (guard transaction)"), results


@dataclass
class LangChainRun:
    series: list[tuple[int, harness.Work]]  # the work of append n (its request is sent even when refused)
    limit_at: int | None  # first n whose history no longer fits in a DynamoDB item (PutItem check)
    moto_refused_at: int | None  # first n whose UpdateItem moto refused
    failure: str


def _bisect(low: int, high: int, fails: Callable[[int], bool]) -> int:
    """The first n in (low, high] for which fails(n), given not fails(low) and fails(high)."""
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if fails(middle) else (middle, high)
    return high


def langchain(stack: harness.Stack) -> LangChainRun:
    """The work of appending message n, for sampled n (history seeded to n - 1 first), and where it breaks.

    Appending every message one by one would measure moto's serializer more than LangChain (each append
    re-reads and re-sends the whole history); the work of append n depends only on the n - 1 before it.
    """
    import boto3
    from botocore.exceptions import ClientError

    langchain_history.create_table(stack.dynamodb)
    chat = langchain_history.history("bench-session")
    stack.meter.watch(chat.table.meta.client)
    seeder = boto3.resource("dynamodb").Table(langchain_history.TABLE)  # unmetered
    messages: dict[str, str] = {}

    def fits(count: int) -> bool:
        """Whether a history of `count` messages fits in one item (moto's PutItem applies the size rules)."""
        try:
            seeder.put_item(Item={"SessionId": "probe", "History": langchain_history.seed(count, CONTENT)})
        except ClientError as exc:
            messages["limit"] = str(exc.response.get("Error", {}).get("Message", exc))
            return False
        return True

    def append(n: int) -> tuple[harness.Work, bool]:
        seeder.put_item(Item={"SessionId": "bench-session", "History": langchain_history.seed(n - 1, CONTENT)})
        with stack.meter.window() as calls:
            try:
                langchain_history.append(chat, "user" if n % 2 else "assistant", CONTENT)
                accepted = True
            except ClientError as exc:
                messages["moto"] = str(exc.response.get("Error", {}).get("Message", exc))
                accepted = False
        return harness.Work.of(calls), accepted

    series: list[tuple[int, harness.Work]] = []
    limit_at = moto_refused_at = None
    last_fit = last_accepted = 0
    for n in LANGCHAIN_SAMPLES:
        if not fits(n):
            limit_at = n
            break
        last_fit = n
        work, accepted = append(n)
        series.append((n, work))
        if accepted:
            last_accepted = n
        elif moto_refused_at is None:
            moto_refused_at = n
    if limit_at is not None:
        limit_at = _bisect(last_fit, limit_at, lambda n: not fits(n))
        work, _ = append(limit_at - 1)
        series.append((limit_at - 1, work))
    if moto_refused_at is not None:
        moto_refused_at = _bisect(last_accepted, moto_refused_at, lambda n: not append(n)[1])
    series.sort(key=lambda point: point[0])
    return LangChainRun(series, limit_at, moto_refused_at, messages.get("limit", ""))


def _total(series: list[tuple[int, harness.Work]], last: int) -> float:
    """Bytes written by appends 1..last, from the measured points (linear in n between them)."""
    points = [(n, w.bytes_written) for n, w in series]
    total = 0.0
    for (n0, b0), (n1, b1) in itertools.pairwise(points):
        total += (b0 + b1) / 2 * (n1 - n0)
    return total + points[0][1]


def run(section: Section) -> None:
    with harness.moto_stack() as stack, harness.quiet():
        label, mine = ours(stack)
        lc = langchain(stack)
    theirs = dict(lc.series)
    limit = lc.limit_at
    rows = []
    for n in CHECKPOINTS:
        work, other = mine[n], theirs.get(n)
        if limit is not None and n >= limit:
            alt = f"**fails**: the history passes 400 KB at message {limit:,}"
        elif other is not None:
            alt = f"{other.requests} ({other.operations}), {other.bytes_written:,} B"
        else:
            alt = "—"
        rows.append([f"{n:,}", f"{work.requests} ({work.operations})", f"{work.bytes_written:,}", alt])
    section.data = {
        "ours_via": label,
        "ours": {n: w.__dict__ for n, w in mine.items()},
        "langchain": {n: w.__dict__ for n, w in lc.series},
        "langchain_limit_at": limit,
        "moto_update_refused_at": lc.moto_refused_at,
    }
    section.add(
        f"Ours: {label}. The same {len(CONTENT)}-character message each time, alternating user and assistant; "
        "the history before each measured append is seeded straight into the table. Bytes written: the write "
        "requests' bodies on the wire.",
        table(
            ["append of message", "ours: requests", "ours: bytes written", "LangChain: requests, bytes written"], rows
        ),
    )
    crossover = next((n for n, w in lc.series if w.bytes_written > mine[1].bytes_written), None)
    if crossover is not None:
        section.add(
            f"Ours writes about {mine[1].bytes_written:,} bytes per append whatever the history: the message item, "
            "its history event and the session's counters and preview, in one transaction. LangChain writes "
            f"less for the first few messages and more from message {crossover:,} on (the first sampled point "
            "past ours)."
        )
    if limit is not None:
        before = theirs[limit - 1]
        section.add(
            f"LangChain's append of message {limit - 1:,} sends {before.bytes_written:,} bytes for one "
            f"{len(CONTENT)}-character message; at message {limit:,} the history no longer fits in one item "
            f"and every further append fails with *{lc.failure}* (moto's PutItem applies DynamoDB's item-size "
            "rules, so the limit is found by storing the history the append would write). Bytes per append grow "
            f"linearly with the history: the {limit - 1:,} appends before the limit write about "
            f"{_total(lc.series, limit - 1) / 1e6:,.0f} MB between them; ours write "
            f"{mine[1].bytes_written * (limit - 1) / 1e6:,.1f} MB for as many messages."
        )
    if lc.moto_refused_at is not None:
        section.add(
            f"moto check: moto's UpdateItem already refuses LangChain's append at message {lc.moto_refused_at:,} "
            "(*Item size to update has exceeded the maximum allowed size*): it counts the replaced `History` "
            "attribute and its new value together, so it refuses at about half of DynamoDB's limit. The limit "
            "above is DynamoDB's own (PutItem, which moto sizes correctly)."
        )
    if not _ours_route("session_0123456789abcdef"):
        section.gap(
            "the messages endpoint (`POST /sessions/{id}/messages`) is not in template.yaml yet: ours is measured "
            "through the layer's append write (the guard's single transaction that the endpoint will make)"
        )
    flat = len({(w.requests, w.items_written) for w in mine.values()}) == 1
    spread = max(w.bytes_written for w in mine.values()) - min(w.bytes_written for w in mine.values())
    section.target(
        "append cost flat in history length",
        flat,
        f"{mine[1].requests} request(s) and {mine[1].items_written} items written at messages 1 to 10,000; "
        f"bytes vary by {spread} B (ids, counters)",
    )
    section.summary.append(
        (
            "Append message 1 / 10,000: requests, bytes written",
            f"{mine[1].requests} / {mine[10_000].requests}, {mine[1].bytes_written:,} / "
            f"{mine[10_000].bytes_written:,} B",
            f"LangChain: {theirs[1].requests}, {theirs[1].bytes_written:,} B / fails from message {limit:,} "
            f"(at {limit - 1:,}: {theirs[limit - 1].bytes_written:,} B)"
            if limit
            else "LangChain: no failure seen",
        )
    )
    section.plots.append(
        plots.append_cost(
            [(n, w.bytes_written) for n, w in sorted(mine.items())],
            [(n, w.bytes_written) for n, w in lc.series],
            limit,
        )
    )
