"""1. DynamoDB requests, items read and written, and bytes written by one call of every route.

Targets: one request per read page and per write (a write's read-back, where the contract returns the new
state, is named); no Scan on any request path. Every route on a session is measured for its owner and for a
sharee (`collaborate`): a sharee starts a chat in the owner's 2, and appends in at most 3. moto does not
report consumed capacity, so the figures come
from botocore's request and response events: requests on the wire, items DynamoDB read (a query's
ScannedCount), items written, and request bytes of writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks import harness
from benchmarks.report import Section, table

BASE = "/api/v1/sessions"


@dataclass(frozen=True)
class Scenario:
    name: str
    method: str
    path: str  # `{sid}` is a fresh session of the caller's, `{mid}` one of its messages
    kwargs: dict[str, Any]
    budget: int  # the requests this route should take
    note: str = ""
    setup: Callable[[harness.Stack, str], dict[str, str]] | None = None
    sharee_budget: int | None = None  # a sharee's requests (None: the owner's budget, or an owner-only route)
    owner_only: bool = False


def _with_messages(count: int) -> Callable[[harness.Stack, str], dict[str, str]]:
    def setup(stack: harness.Stack, session_id: str) -> dict[str, str]:
        harness.seed_messages(stack.table, session_id, count)
        return {}

    return setup


def _a_message(stack: harness.Stack, session_id: str) -> dict[str, str]:
    harness.seed_messages(stack.table, session_id, 3)
    page = stack.api("GET", f"{BASE}/{session_id}", query={"include": "messages"}).body
    return {"mid": page["messages"][0]["message_id"]}


def _deck(stack: harness.Stack, session_id: str) -> dict[str, str]:
    slides = [{"slide_id": f"s{n}", "html": f"<h1>Slide {n}</h1><p>Body</p>"} for n in range(10)]
    deck = {"slides": slides, "css": "", "scripts": []}
    result = stack.api("PUT", f"{BASE}/{session_id}/slides", body=deck)
    assert result.status == 200, result.body
    return {}


def _nine_more(stack: harness.Stack, session_id: str) -> dict[str, str]:
    ids = [session_id] + [stack.api.create_session()["session_id"] for _ in range(9)]
    return {"ids": ",".join(ids)}


MESSAGE = {"role": "user", "content": "How many requests does this take?"}
SCENARIOS = [
    Scenario("create session", "POST", BASE, {"body": {"title": "t"}}, 1),
    Scenario("create session with prompt", "POST", BASE, {"body": {"prompt": "hello"}}, 1),
    Scenario("list sessions, page 1 (50)", "GET", BASE, {"query": {"limit": "50"}}, 1, "total and summary included"),
    Scenario("list sessions, filtered", "GET", BASE, {"query": {"status": "active", "search": "t"}}, 1),
    Scenario("continue", "GET", f"{BASE}/continue", {}, 1),
    Scenario("get session", "GET", f"{BASE}/{{sid}}", {}, 1, "the session and the caller's shares"),
    Scenario(
        "get session with messages",
        "GET",
        f"{BASE}/{{sid}}",
        {"query": {"include": "messages"}},
        2,
        "session + first page",
        _with_messages(20),
    ),
    Scenario(
        "rename (PATCH)",
        "PATCH",
        f"{BASE}/{{sid}}",
        {"body": {"title": "renamed"}},
        2,
        "write + read-back",
        sharee_budget=4,
    ),
    Scenario(
        "delete session", "DELETE", f"{BASE}/{{sid}}", {}, 1, "tombstone; the purge is the schedule's", owner_only=True
    ),
    Scenario(
        "cleanup 10 sessions",
        "POST",
        f"{BASE}/cleanup",
        {"body": {"session_ids": "{ids}"}},
        2,
        "one read of all, one transaction",
        _nine_more,
        owner_only=True,
    ),
    Scenario("append 1 message", "POST", f"{BASE}/{{sid}}/messages", {"body": MESSAGE}, 1, sharee_budget=3),
    Scenario(
        "batch append 25",
        "POST",
        f"{BASE}/{{sid}}/messages",
        {"body": {"messages": [MESSAGE] * 25}},
        1,
        sharee_budget=3,
    ),
    Scenario(
        "start a chat (async)",
        "POST",
        f"{BASE}/{{sid}}/chat/async",
        {"body": {"message": "How many requests?"}},
        2,
        "access and the turn; then message, run and turn (the worker's own: the chat-runs measure)",
    ),
    Scenario(
        "delete message", "DELETE", f"{BASE}/{{sid}}/messages/{{mid}}", {}, 3, "the newest: + its successor", _a_message
    ),
    Scenario("list messages (100)", "GET", f"{BASE}/{{sid}}/messages", {}, 2, "access + page", _with_messages(150)),
    Scenario(
        "get message",
        "GET",
        f"{BASE}/{{sid}}/messages/{{mid}}",
        {},
        2,
        "session, shares and message at once",
        _a_message,
    ),
    Scenario("get slides", "GET", f"{BASE}/{{sid}}/slides", {}, 2, "access + deck", _deck),
    Scenario(
        "put slides",
        "PUT",
        f"{BASE}/{{sid}}/slides",
        {"body": {"slides": [{"slide_id": "s1", "html": "<h1>One</h1>"}], "css": ""}},
        2,
        "access + deck write",
    ),
    Scenario(
        "export (markdown)",
        "POST",
        f"{BASE}/{{sid}}/export",
        {"body": {"format": "markdown"}},
        4,
        "access, deck, messages page, export record",
        _deck,
    ),
    Scenario("list exports", "GET", f"{BASE}/{{sid}}/exports", {}, 2),
    Scenario(
        "share",
        "POST",
        f"{BASE}/{{sid}}/share",
        {"body": {"recipients": ["carol@example.com"], "permissions": "view"}},
        1,
        owner_only=True,
    ),
    Scenario("list shares", "GET", f"{BASE}/{{sid}}/shares", {}, 2, owner_only=True),
    Scenario(
        "comment",
        "POST",
        f"{BASE}/{{sid}}/comments",
        {"body": {"content": "c", "comment_type": "note"}},
        1,
        sharee_budget=3,
    ),
    Scenario("list comments", "GET", f"{BASE}/{{sid}}/comments", {}, 2),
    Scenario("history", "GET", f"{BASE}/{{sid}}/history", {}, 2),
    Scenario("end session", "POST", f"{BASE}/{{sid}}/end", {}, 2, "write + read-back", owner_only=True),
    Scenario("metrics", "GET", f"{BASE}/{{sid}}/metrics", {}, 1),
    Scenario("results", "GET", f"{BASE}/{{sid}}/results", {}, 2),
]


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        if value == "{ids}":
            return names["ids"].split(",")
        return value.format(**names) if "{" in value else value
    if isinstance(value, dict):
        return {key: _fill(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, names) for item in value]
    return value


SHAREE = "bob"


def measure(stack: harness.Stack, scenario: Scenario, *, user: str = "alice") -> tuple[int, harness.Work]:
    """One call as `user`: the session's owner `alice`, or `bob` whom she shared it with (`collaborate`)."""
    session_id = stack.api.create_session(title="t", prompt="first")["session_id"]
    names = {"sid": session_id, "mid": "msg_0", "ids": session_id}
    if scenario.setup:
        names.update(scenario.setup(stack, session_id))
    if user == SHAREE:
        share = {"recipients": [SHAREE], "permissions": "collaborate"}
        stack.api("POST", f"{BASE}/{session_id}/share", body=share)
    path = scenario.path.format(**names)
    kwargs = _fill(scenario.kwargs, names)
    with stack.meter.window() as calls:
        result = stack.api(scenario.method, path, user=user, **kwargs)
    return result.status, harness.Work.of(calls)


def run(section: Section) -> None:
    rows, data = [], {}
    over_budget, scans, missing, broken = [], 0, [], []
    with harness.moto_stack() as stack, harness.quiet():
        for _ in range(55):  # a listing with a full first page
            stack.api.create_session(title="t")
        for scenario in SCENARIOS:
            probe = scenario.path.format(sid="session_0123456789abcdef", mid="msg_0")
            if not harness.has_route(scenario.method, probe):
                missing.append(scenario.name)
                continue
            try:
                status, work = measure(stack, scenario)
            except Exception as exc:  # an endpoint group being built may not load yet
                broken.append(f"{scenario.name} ({type(exc).__name__}: {str(exc)[:160]})")
                continue
            if status >= 500 or status in (404, 405):
                broken.append(f"{scenario.name} ({status})")
                continue
            scans += work.scans
            within = work.requests <= scenario.budget
            if not within:
                over_budget.append(f"{scenario.name}: {work.requests} > {scenario.budget}")
            sharee = "owner only"
            if "{sid}" in scenario.path and not scenario.owner_only:
                sharee_status, sharee_work = measure(stack, scenario, user=SHAREE)
                scans += sharee_work.scans
                sharee_budget = scenario.sharee_budget or scenario.budget
                sharee = f"**{sharee_work.requests}**"
                if sharee_status >= 300 or sharee_work.requests > sharee_budget:
                    over_budget.append(f"{scenario.name} (sharee): {sharee_work.requests} > {sharee_budget}")
                    sharee += f" (status {sharee_status}, budget {sharee_budget})"
            elif "{sid}" not in scenario.path:
                sharee = "—"
            data[scenario.name] = {**work.__dict__, "status": status, "budget": scenario.budget, "sharee": sharee}
            rows.append(
                [
                    scenario.name,
                    f"`{scenario.method} {scenario.path.replace('{sid}', '{id}').replace('{mid}', '{mid}')}`",
                    status,
                    f"**{work.requests}**" + ("" if within else f" (budget {scenario.budget})"),
                    sharee,
                    work.operations,
                    work.items_read,
                    work.items_written,
                    f"{work.bytes_written:,}",
                    scenario.note,
                ]
            )
    section.data = data
    section.add(
        "One call of each route, as user `alice`, in-process against moto with the table from template.yaml; "
        "routes on a session also as `bob`, a `collaborate` sharee (his requests only; the operations, items "
        "and bytes are alice's). "
        "Items read is what DynamoDB read (a query's ScannedCount); bytes written are the write requests' "
        "bodies on the wire. moto reports no consumed capacity, so none is shown.",
        table(
            [
                "route",
                "request",
                "status",
                "DynamoDB requests",
                "a sharee's requests",
                "operations",
                "items read",
                "items written",
                "bytes written",
                "note",
            ],
            rows,
        ),
    )
    if missing:
        section.gap(
            "routes not in template.yaml yet (their endpoint groups are being built), so not measured: "
            + ", ".join(missing)
        )
    if broken:
        section.gap("routes present but not answering yet: " + ", ".join(broken))
    section.target(
        "one request per read page and per write",
        not over_budget if rows else None,
        "; ".join(over_budget) or f"{len(rows)} routes measured, all within their request budget",
    )
    section.target("zero scans on any request path", scans == 0 if rows else None, f"{scans} Scan requests")
    if rows:
        section.summary.append(
            (
                "DynamoDB requests per route (max over routes measured)",
                str(max(d["requests"] for d in data.values())),
                "—",
            )
        )
        section.summary.append(("Scans on request paths", str(scans), "—"))
