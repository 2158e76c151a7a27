"""3. Listing 50 sessions with message counts and previews: ours against FastAPI + SQLAlchemy.

Ours keeps `message_count` and `last_message_preview` on the session item (updated in the append's own
transaction), so the page, its total and its summary are one Query. The peer is the common router that
asks per listed session (SQL statements counted with an SQLAlchemy event).
"""

from __future__ import annotations

from benchmarks import harness
from benchmarks.peers import events
from benchmarks.report import Section, table

SESSIONS = 50
MESSAGES_EACH = 3


def ours(stack: harness.Stack) -> tuple[harness.Work, int]:
    for n in range(SESSIONS):
        session_id = stack.api.create_session(title=f"Chat {n}", prompt="first message")["session_id"]
        harness.seed_messages(stack.table, session_id, MESSAGES_EACH - 1)
    with stack.meter.window() as calls:
        result = stack.api("GET", "/api/v1/sessions", query={"limit": str(SESSIONS)})
    assert result.status == 200, result.body
    assert all(s["message_count"] == MESSAGES_EACH for s in result.body["sessions"]), "counts on every session"
    return harness.Work.of(calls), result.body["count"]


def peer() -> tuple[int, int]:
    from benchmarks.peers import sqlalchemy_sessions as peer_app

    peer_app.seed("alice", SESSIONS, MESSAGES_EACH)
    peer_app.statements.clear()
    response = peer_app.lambda_handler(
        events.v2_event("GET", "/api/v1/sessions", query={"limit": str(SESSIONS)}), events.Context()
    )
    assert response["statusCode"] == 200, response
    import json

    return len(peer_app.statements), len(json.loads(response["body"])["sessions"])


def run(section: Section) -> None:
    with harness.moto_stack() as stack, harness.quiet():
        work, listed = ours(stack)
    statements, peer_listed = peer()
    section.data = {
        "ours": work.__dict__,
        "ours_listed": listed,
        "peer_statements": statements,
        "peer_listed": peer_listed,
    }
    section.add(
        f"{SESSIONS} sessions of {MESSAGES_EACH} messages each; one `GET /api/v1/sessions?limit={SESSIONS}` with "
        "message counts and last-message previews.",
        table(
            ["", "sessions listed", "round trips to the database", "what"],
            [
                [
                    "ours",
                    listed,
                    f"**{work.requests}**",
                    f"{work.operations}; {work.items_read} items read "
                    "(the page and the counters item that carries total and summary)",
                ],
                [
                    "FastAPI + SQLAlchemy (SQLite)",
                    peer_listed,
                    f"**{statements}**",
                    f"1 page query + {SESSIONS} × (count + last message) + 1 total",
                ],
            ],
        ),
    )
    section.target(f"listing {SESSIONS} sessions is one request", work.requests == 1, f"{work.requests} request(s)")
    section.summary.append(
        (
            f"List {SESSIONS} sessions with counts and previews: database round trips",
            str(work.requests),
            f"FastAPI + SQLAlchemy: {statements} SQL statements",
        )
    )
