"""The access matrix: every authorized route × every kind of caller → what the one policy demands.

Shared by `tests/integration/test_access_matrix.py` (in-process, moto) and its end-to-end twin
`tests/e2e/test_access_matrix_e2e.py` (through the local gateway). Both fail when a route that
template.yaml routes to a function and that function serves has no row here.

Adding your route (one row per method and path, as template.yaml writes the path):

    Row("POST", "/api/v1/sessions/{session_id}/messages", Action.WRITE, ok=201,
        body=lambda w: {"role": "user", "content": "hi"}),

- `action` is the least `logic.policy.Action` the route needs on the session in its path; the expected
  status for each caller follows from it (owner and strong-enough shares → `ok`, weaker shares → 403
  `session_not_accessible`, strangers / revoked / expired shares → 404 `session_not_found`).
- A path parameter other than `session_id` (`{message_id}`, `{export_id}`, …) is taken from `SEEDS`:
  add a function that creates (through the API) or finds one in the world's session and returns its id.
- `prepare(world)` puts the session in the state the route needs first (e.g. pause it before `/resume`).
- A route that is not about one session (`action=None`, e.g. `GET /sessions`) lists its statuses per role
  in `expect` and the roles that may see or change the world's session through it in `allowed`.

- Two rows of one route (e.g. `GET /sessions` and `GET /sessions?shared=true`) differ by `variant`.
- End to end, the callers of a GET and all refused callers of a route share one world: a GET by several
  roles in turn must be fine (one that creates something, like `GET …/export`, then reuses it).

Every refused caller must change nothing in the session (its partition and its owner's counters; in
process, for a route about one session, the whole table) and get back none of its data (the `secrets`
planted in it). A row for a route no function serves fails too.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sessions_api.dal import keys
from sessions_api.logic.policy import Action

API = "/api/v1"
SESSION = f"{API}/sessions/{{session_id}}"
OWNER, VIEW, EDIT, COLLABORATE, REVOKED, EXPIRED, STRANGER = ROLES = (
    "owner",
    "view",
    "edit",
    "collaborate",
    "revoked",
    "expired",
    "stranger",
)
# The contract ("Sharing and comments"): the least role that may do each action. Pinned here, not read
# from logic/policy.py, so a change of the policy has to change the contract's test too.
LEAST_ROLE: dict[Action, str] = {
    Action.READ: VIEW,
    Action.WRITE: EDIT,
    Action.COMMENT: COLLABORATE,
    Action.EXPORT: COLLABORATE,
    Action.MANAGE: OWNER,
}
LADDER = (VIEW, EDIT, COLLABORATE, OWNER)


@dataclass
class Reply:
    status: int
    body: Any
    text: str  # the raw body, searched for leaked data


class Client(Protocol):
    def __call__(
        self,
        method: str,
        path: str,
        *,
        user: str,
        body: Any = None,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply: ...


@dataclass
class World:
    """One session owned by `users[OWNER]`, shared with a user of each role, with some data in it."""

    client: Client
    table: Any  # boto3 Table resource of the stack's table
    tag: str
    whole_table: bool = False  # refusals are checked on the whole table (in-process: nothing else writes)
    session_id: str = ""
    users: dict[str, str] = field(default_factory=dict)
    share_ids: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Strings only those allowed may ever get back."""
        return (f"title-{self.tag}", f"prompt-{self.tag}", f"comment-{self.tag}", f"note-{self.tag}")

    def call(self, role: str, method: str, path: str, **kwargs: Any) -> Reply:
        return self.client(method, path, user=self.users[role], **kwargs)

    def ok(self, role: str, method: str, path: str, **kwargs: Any) -> Any:
        reply = self.call(role, method, path, **kwargs)
        assert reply.status < 300, (method, path, reply.status, reply.text)
        return reply.body

    def param(self, name: str) -> str:
        if name not in self.params:
            if name not in SEEDS:
                raise LookupError(f"no seed for path parameter {{{name}}}: add one to tests/access_matrix.SEEDS")
            self.params[name] = SEEDS[name](self)
        return self.params[name]

    def path(self, template: str) -> str:
        names = [part[1:-1] for part in template.split("/") if part.startswith("{") and part.endswith("}")]
        return template.format(**{name: self.param(name) for name in names})

    def snapshot(self, *, whole_table: bool = False) -> list[dict[str, Any]]:
        """The session as stored: its partition (every item of it, shares included) and its owner's counters;
        or the whole table."""
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {"KeyConditionExpression": "PK = :pk", "ConsistentRead": True}
        request["ExpressionAttributeValues"] = {":pk": keys.session_pk(self.session_id)}
        read = self.table.query
        if whole_table:
            request, read = {"ConsistentRead": True}, self.table.scan
        while True:
            page = read(**request)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        counters = self.table.get_item(Key=keys.counters_key(self.users[OWNER]), ConsistentRead=True).get("Item")
        return [*sorted(items, key=lambda item: (item["PK"], item["SK"])), counters or {}]


def build_world(client: Client, table: Any, *, whole_table: bool = False) -> World:
    """Given a session with a message and a comment, shared view / edit / collaborate, one share revoked
    and one expired; every user is new, so worlds never see each other."""
    world = World(client, table, uuid.uuid4().hex[:12], whole_table)
    world.users = {role: f"{role}-{world.tag}" for role in ROLES}
    session = world.ok(
        OWNER,
        "POST",
        f"{API}/sessions",
        body={"title": f"title-{world.tag}", "prompt": f"prompt-{world.tag}", "metadata": {"k": f"note-{world.tag}"}},
    )
    world.session_id = world.params["session_id"] = session["session_id"]
    base = world.path(SESSION)
    for role, permission in ((VIEW, "view"), (EDIT, "edit"), (COLLABORATE, "collaborate"), (REVOKED, "edit")):
        share = world.ok(
            OWNER,
            "POST",
            f"{base}/share",
            body={"recipients": [world.users[role]], "permissions": permission, "message": f"note-{world.tag}"},
        )
        world.share_ids[role] = share["share_id"]
    world.ok(OWNER, "DELETE", f"{base}/shares/{world.share_ids[REVOKED]}")
    share = world.ok(
        OWNER, "POST", f"{base}/share", body={"recipients": [world.users[EXPIRED]], "permissions": "collaborate"}
    )
    world.share_ids[EXPIRED] = share["share_id"]
    # An API client cannot make a share that is already over: age this one in the table.
    table.update_item(
        Key=keys.share_key(world.session_id, "user", world.users[EXPIRED]),
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": "2020-01-01T00:00:00.000Z"},
    )
    world.ok(OWNER, "POST", f"{base}/comments", body={"content": f"comment-{world.tag}", "comment_type": "note"})
    return world


def _first_message_id(world: World) -> str:
    session = world.ok(OWNER, "GET", world.path(SESSION), query={"include": "messages"})
    return str(session["messages"][0]["message_id"])


def _slide_id(world: World) -> str:
    deck = {"slides": [{"slide_id": "intro", "html": f"<h1>note-{world.tag}</h1>"}]}
    world.ok(OWNER, "PUT", world.path(f"{SESSION}/slides"), body=deck)
    return "intro"


def _request_id(world: World) -> str:
    run = world.ok(OWNER, "POST", world.path(f"{SESSION}/chat"), body={"message": f"seed-{world.tag}"})
    return str(run["request_id"])


def _export_id(world: World) -> str:
    export = world.ok(OWNER, "POST", world.path(f"{SESSION}/export"), body={"format": "markdown"})
    return str(export["export_id"])


# Path parameters other than session_id: how to get a real one in the world's session.
SEEDS: dict[str, Callable[[World], str]] = {
    "share_id": lambda world: world.share_ids[VIEW],
    "message_id": _first_message_id,
    "slide_id": _slide_id,
    "export_id": _export_id,
    "request_id": _request_id,
    # Another user's export job and erasure: nobody but their maker may read them.
    "job_id": lambda world: world.ok(STRANGER, "POST", f"{API}/me/export")["job_id"],
    "erasure_id": lambda world: world.ok(STRANGER, "DELETE", f"{API}/me")["erasure_id"],
}


def every(status: int, **by_role: int) -> dict[str, int]:
    return {role: by_role.get(role, status) for role in ROLES}


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # as template.yaml routes it
    action: Action | None  # the least action on the session in the path; None: not about one session
    ok: int = 200
    body: Callable[[World], Any] | None = None
    query: Callable[[World], dict[str, str]] | None = None
    prepare: Callable[[World], None] | None = None
    expect: Mapping[str, int] | None = None  # action None only: the status for each role
    allowed: frozenset[str] = frozenset({OWNER})  # action None only: who may see or change the session
    variant: str = ""  # tells apart rows of one route

    @property
    def route(self) -> tuple[str, str]:
        return self.method, self.path

    @property
    def name(self) -> str:
        return f"{self.method} {self.path.removeprefix(API)}{f' [{self.variant}]' if self.variant else ''}"

    def may(self, role: str) -> bool:
        """Whether `role` may do what this route does to the world's session."""
        if self.action is None:
            return role in self.allowed
        least = LEAST_ROLE[self.action]
        return role in LADDER and LADDER.index(role) >= LADDER.index(least)

    def expected(self, role: str) -> tuple[int, str | None]:
        """(status, problem code) the role must get."""
        if self.action is None:
            assert self.expect is not None, f"{self.name}: a row without action lists `expect`"
            return self.expect[role], None
        if self.may(role):
            return self.ok, None
        if role in LADDER:
            return 403, "session_not_accessible"
        return 404, "session_not_found"


ROUTES: list[Row] = [
    # -- sessions ------------------------------------------------------------------------------------
    Row("POST", f"{API}/sessions", None, expect=every(201), body=lambda w: {}),
    Row("GET", f"{API}/sessions", None, expect=every(200)),
    Row(
        "GET",
        f"{API}/sessions",
        None,
        variant="shared",
        query=lambda w: {"shared": "true"},
        expect=every(200),
        allowed=frozenset({VIEW, EDIT, COLLABORATE}),
    ),
    Row("GET", f"{API}/sessions/continue", None, expect=every(404, owner=200)),
    Row(
        "POST",
        f"{API}/sessions/cleanup",
        None,
        body=lambda w: {"session_ids": [w.session_id]},
        expect=every(200),
    ),
    Row("GET", SESSION, Action.READ),
    Row("PATCH", SESSION, Action.WRITE, body=lambda w: {"title": "renamed"}),
    Row("DELETE", SESSION, Action.MANAGE, ok=204),
    # -- lifecycle: status changes are the owner's; results are written by editors, completed by the owner
    Row("POST", f"{SESSION}/cancel", Action.MANAGE, body=lambda w: {"reason": "done"}),
    Row("POST", f"{SESSION}/pause", Action.MANAGE),
    Row("POST", f"{SESSION}/resume", Action.MANAGE, prepare=lambda w: w.ok(OWNER, "POST", w.path(f"{SESSION}/pause"))),
    Row("POST", f"{SESSION}/end", Action.MANAGE),
    Row("PUT", f"{SESSION}/results", Action.WRITE, body=lambda w: {"summary": "found it", "results": {"a": 1}}),
    Row(
        "PUT",
        f"{SESSION}/results",
        Action.MANAGE,
        variant="complete",
        body=lambda w: {"summary": "found it", "complete": True},
    ),
    Row("GET", f"{SESSION}/results", Action.READ),
    Row("GET", f"{SESSION}/metrics", Action.READ),
    Row("GET", f"{SESSION}/history", Action.READ),
    Row("POST", f"{SESSION}/fork", Action.READ, ok=201, body=lambda w: {}),  # into the caller's own session
    # -- messages and chat ---------------------------------------------------------------------------
    Row("POST", f"{SESSION}/messages", Action.WRITE, ok=201, body=lambda w: {"role": "user", "content": "more"}),
    Row("GET", f"{SESSION}/messages", Action.READ),
    Row("GET", f"{SESSION}/messages/{{message_id}}", Action.READ),
    Row("DELETE", f"{SESSION}/messages/{{message_id}}", Action.WRITE, ok=204),
    Row("POST", f"{SESSION}/chat", Action.WRITE, body=lambda w: {"message": "hello"}),
    Row("POST", f"{API}/chat", Action.WRITE, body=lambda w: {"message": "hello", "session_id": w.session_id}),
    Row("POST", f"{API}/chat", None, variant="new session", body=lambda w: {"message": "hi"}, expect=every(200)),
    Row("POST", f"{SESSION}/chat/async", Action.WRITE, ok=202, body=lambda w: {"message": "later"}),
    Row("POST", f"{API}/chat/async", Action.WRITE, ok=202, body=lambda w: {"message": "x", "session_id": w.session_id}),
    Row("POST", f"{API}/chat/async", None, variant="new session", body=lambda w: {"message": "x"}, expect=every(202)),
    Row("POST", f"{SESSION}/chat/stream", Action.WRITE, body=lambda w: {"message": "streamed"}),
    Row("POST", f"{API}/chat/stream", Action.WRITE, body=lambda w: {"message": "x", "session_id": w.session_id}),
    Row("POST", f"{API}/chat/stream", None, variant="new session", body=lambda w: {"message": "x"}, expect=every(200)),
    # A run is the session's: viewers poll it, editors cancel it (the seeded run has finished: 409), strangers
    # and lapsed sharees do not learn it exists.
    Row(
        "GET",
        f"{API}/chat/poll/{{request_id}}",
        None,
        expect=every(404, **{OWNER: 200, VIEW: 200, EDIT: 200, COLLABORATE: 200}),
        allowed=frozenset({OWNER, VIEW, EDIT, COLLABORATE}),
    ),
    Row(
        "POST",
        f"{API}/chat/runs/{{request_id}}/cancel",
        None,
        expect=every(404, **{OWNER: 409, VIEW: 403, EDIT: 409, COLLABORATE: 409}),
        allowed=frozenset({OWNER, VIEW, EDIT, COLLABORATE}),
    ),
    Row("GET", f"{SESSION}/runs", Action.READ),
    # -- slides ----------------------------------------------------------------------------------------
    Row("GET", f"{SESSION}/slides", Action.READ),
    Row(
        "PUT",
        f"{SESSION}/slides",
        Action.WRITE,
        body=lambda w: {"slides": [{"slide_id": "one", "html": "<p>1</p>"}], "css": "p{}"},
    ),
    Row("PUT", f"{SESSION}/slides/{{slide_id}}", Action.WRITE, body=lambda w: {"html": "<p>changed</p>"}),
    Row("DELETE", f"{SESSION}/slides/{{slide_id}}", Action.WRITE, ok=204),
    # -- exports ---------------------------------------------------------------------------------------
    Row("POST", f"{SESSION}/export", Action.EXPORT, ok=201, body=lambda w: {"format": "json"}),
    Row("GET", f"{SESSION}/export", Action.EXPORT, ok=303, query=lambda w: {"format": "markdown"}),
    Row("GET", f"{SESSION}/exports", Action.READ),
    Row("GET", f"{SESSION}/exports/{{export_id}}", Action.READ),
    # -- your data: each caller's own; only the owner's erasure takes the world's session away ------------
    # (the stranger's own job, made for `{job_id}`, is still unfinished: one at a time)
    Row(
        "POST",
        f"{API}/me/export",
        None,
        prepare=lambda w: (
            w.params.setdefault("export", str(w.call(STRANGER, "POST", f"{API}/me/export").status)) and None
        ),
        expect=every(202, stranger=409),
        allowed=frozenset({OWNER}),
    ),
    Row("GET", f"{API}/me/export/{{job_id}}", None, expect=every(404, stranger=200), allowed=frozenset()),
    # A sharee's erasure removes their share from the session (its worker, later); the stranger's touches nothing.
    Row("DELETE", f"{API}/me", None, expect=every(202), allowed=frozenset(ROLES) - {STRANGER}),
    Row("GET", f"{API}/me/erasures/{{erasure_id}}", None, expect=every(404, stranger=200), allowed=frozenset()),
    # -- sharing and comments ------------------------------------------------------------------------
    Row(
        "POST",
        f"{SESSION}/share",
        Action.MANAGE,
        ok=201,
        body=lambda w: {"recipients": [f"new-{w.tag}"], "permissions": "view"},
    ),
    Row("GET", f"{SESSION}/shares", Action.MANAGE),
    Row("DELETE", f"{SESSION}/shares/{{share_id}}", Action.MANAGE, ok=204),
    Row(
        "POST",
        f"{SESSION}/comments",
        Action.COMMENT,
        ok=201,
        body=lambda w: {"content": "a remark", "comment_type": "question", "reference_point": {"quote": "x"}},
    ),
    Row("GET", f"{SESSION}/comments", Action.READ),
]

ROWS_BY_ROUTE = {row.route: row for row in ROUTES}
CASES = [(row, role) for row in ROUTES for role in ROLES]
CASE_IDS = [f"{row.name} × {role}" for row, role in CASES]


def run_case(world: World, row: Row, role: str) -> Reply:
    """When `role` calls the route; then the status is the policy's, and a refused caller changed and
    learned nothing."""
    if row.prepare:
        row.prepare(world)
    path = world.path(row.path)
    # A route about one session refused must write nothing at all; others may write the caller's own data.
    whole_table = world.whole_table and row.action is not None
    before = world.snapshot(whole_table=whole_table)
    reply = world.call(
        role,
        row.method,
        path,
        body=row.body(world) if row.body else None,
        query=row.query(world) if row.query else None,
    )
    status, code = row.expected(role)
    assert reply.status == status, f"{row.name} as {role}: {reply.status} {reply.text}"
    if code is not None:
        assert reply.body["code"] == code, reply.body
    if not row.may(role):
        leaked = [secret for secret in world.secrets if secret in reply.text]
        assert not leaked, f"{row.name} as {role} leaked {leaked}: {reply.text}"
        assert world.snapshot(whole_table=whole_table) == before, f"{row.name} as {role} changed the session"
    return reply


# -- which routes exist -------------------------------------------------------------------------------


def served_routes() -> dict[tuple[str, str], str]:
    """(method, path) → function, for every route template.yaml sends to a function through its JWT
    authorizer and that the function's Powertools resolver actually serves (public routes excluded)."""
    from tests import support

    served: dict[tuple[str, str], str] = {}
    for logical_id, spec in support.function_specs().items():
        routed = [route for route in spec.routes if route.path != "$default" and route.authorizer is not None]
        if not routed:
            continue
        app = getattr(support.load_function(logical_id), "app", None)
        assert app is not None, f"{logical_id} has HTTP routes but its module has no Powertools `app`"
        for handled in app._static_routes + app._dynamic_routes:
            path = handled.path.replace("<", "{").replace(">", "}")
            if handled.method == "OPTIONS":
                continue  # preflights are public: the OPTIONS twins carry no authorizer
            if any(route.path == path and route.method in ("ANY", handled.method) for route in routed):
                served[(handled.method, path)] = logical_id
    return served
