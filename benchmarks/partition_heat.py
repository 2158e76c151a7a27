"""Partition heat: the hottest partition key of the table and of each index, in the peak hour, at 100 k, 1 M
and 10 M daily users, with one automated user sending 100 messages a second.

DynamoDB serves one partition at most 1,000 WCU/s and 3,000 RCU/s, the table and each GSI separately, and
a throttled index write throttles the table write that caused it. What each route costs is not written
down here: every route the model uses runs once in-process against moto, and its footprint (the capacity
units it spends on each partition key of the table and of each index) is read off the table itself: the
items each of its write requests names, read before and after that request (so a route writing one item
twice pays twice), the full items behind each of its reads, and the indexes as template.yaml defines them
(the projections included). The workload below then scales those footprints, so a change to the code or
the template shows here on the next run.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks import harness
from benchmarks.report import Section, table
from local import moto_fast

BASE = "/api/v1/sessions"
DAILY_USERS = (100_000, 1_000_000, 10_000_000)
WRITE_LIMIT = 1_000  # WCU/s of one partition
READ_LIMIT = 3_000  # RCU/s of one partition
TARGET_SHARE = 0.5
SECONDS_PER_DAY = 86_400

# --- the workload ----------------------------------------------------------------------------------
SESSIONS_PER_USER_DAY = 3
PEAK_FACTOR = 3  # the peak hour carries 3× the average hour
PARETO_ALPHA = 1.2  # per-user activity, heavy-tailed…
ACTIVITY_CAP = 50  # …and capped: no human does more than 50× the average user
SESSION_SECONDS = 15 * 60  # a session's own requests fall within its 15 active minutes
MESSAGE_BYTES = 400  # the average message a user writes
REPLY_WORDS = 250  # the average reply…
CHUNK_DELAY_SECONDS = 0.07  # …streamed over about 4 s: the worker writes its events at a real model's pace
AUTOMATED_MESSAGES_PER_SECOND = 100
AUTOMATED_SESSIONS = 10
SHARD_SAMPLE_MAX = 200_000  # session ids hashed to shards (the peak hour's sessions, at most this many)
SEED = 1_200
ACTOR = "alice"
RECIPIENT = "carol@example.com"
LISTED_SESSIONS = 50  # the most active user's listing is a full first page

Item = dict[str, Any]  # an item in DynamoDB's wire format ({"S": …}, {"N": …}, …)
Snapshot = dict[tuple[str, ...], Item]


# --- sizes and capacity units (DynamoDB's rules) -----------------------------------------------------
def _number_size(text: str) -> int:
    """1 byte per two significant digits (leading and trailing zeroes trimmed), plus 1."""
    digits = re.sub(r"[eE].*$", "", text.lstrip("-")).replace(".", "").strip("0")
    return 1 + math.ceil(max(1, len(digits)) / 2)


def _binary_size(value: bytes | str) -> int:
    """Binary values as botocore parses them (bytes), or as the wire carries them (base64 text)."""
    return len(value) if isinstance(value, bytes) else len(base64.b64decode(value))


def value_size(value: dict[str, Any]) -> int:
    ((kind, inner),) = value.items()
    sizes: dict[str, Callable[[Any], int]] = {
        "S": lambda text: len(text.encode()),
        "N": _number_size,
        "B": _binary_size,
        "BOOL": lambda _: 1,
        "NULL": lambda _: 1,
        "SS": lambda texts: sum(len(text.encode()) for text in texts),
        "NS": lambda numbers: sum(_number_size(number) for number in numbers),
        "BS": lambda blobs: sum(_binary_size(blob) for blob in blobs),
        # a list or map: 3 bytes, and 1 byte per element
        "L": lambda values: 3 + sum(1 + value_size(element) for element in values),
        "M": lambda entries: 3 + sum(1 + len(name.encode()) + value_size(v) for name, v in entries.items()),
    }
    return sizes[kind](inner)


def item_size(item: Item | None) -> int:
    """Bytes DynamoDB counts for an item: each attribute's name and value."""
    return sum(len(name.encode()) + value_size(value) for name, value in (item or {}).items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def read_units(size: int) -> int:
    return max(1, math.ceil(size / 4096))


# --- what one request spends, partition by partition ------------------------------------------------
@dataclass(frozen=True)
class Spent:
    """Capacity units one request spent on one partition key, writing or reading."""

    target: str  # "table" or an index name
    partition: str  # the partition key's value
    units: float


# --- the table's indexes, as the template made them -----------------------------------------------
@dataclass(frozen=True)
class Index:
    """The table itself (projection ALL) or one of its GSIs."""

    name: str
    hash_key: str
    range_key: str | None
    projection: str  # ALL, KEYS_ONLY or INCLUDE
    included: frozenset[str] = frozenset()

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.hash_key, self.range_key) if self.range_key else (self.hash_key,)


@dataclass(frozen=True)
class Schema:
    table: Index
    indexes: tuple[Index, ...]

    def index(self, name: str | None) -> Index:
        return next((index for index in self.indexes if index.name == name), self.table)


def _index(name: str, description: dict[str, Any]) -> Index:
    schema = {key["KeyType"]: key["AttributeName"] for key in description["KeySchema"]}
    projection = description.get("Projection", {"ProjectionType": "ALL"})
    return Index(
        name,
        schema["HASH"],
        schema.get("RANGE"),
        projection["ProjectionType"],
        frozenset(projection.get("NonKeyAttributes", ())),
    )


def schema_of(description: dict[str, Any]) -> Schema:
    """The table's keys and its GSIs from DescribeTable (the table harness made from template.yaml)."""
    indexes = tuple(_index(gsi["IndexName"], gsi) for gsi in description.get("GlobalSecondaryIndexes", []))
    return Schema(_index("table", description), indexes)


def _plain(value: dict[str, Any]) -> str:
    return str(next(iter(value.values())))


def key_of(item: Item, index: Index) -> tuple[str, ...]:
    return tuple(_plain(item[name]) for name in index.keys)


def projected(item: Item | None, index: Index, table_keys: tuple[str, ...]) -> Item | None:
    """The item as `index` holds it, or None when the item is not in the (sparse) index."""
    if item is None or any(name not in item for name in index.keys):
        return None
    if index.projection == "ALL":
        return item
    kept = set(table_keys) | set(index.keys) | (index.included if index.projection == "INCLUDE" else set())
    return {name: value for name, value in item.items() if name in kept}


def index_writes(before: Item | None, after: Item | None, index: Index, table_keys: tuple[str, ...]) -> list[Spent]:
    """The index writes one item's change makes: in or out of the index 1, a changed index key 2 (delete and
    put), a changed projected attribute 1, anything else none. 1 WCU per KB of the index item, never doubled."""
    old, new = projected(before, index, table_keys), projected(after, index, table_keys)
    if old is None and new is None:
        return []
    if old is None or new is None:
        entry = old if new is None else new
        assert entry is not None
        return [Spent(index.name, _plain(entry[index.hash_key]), write_units(item_size(entry)))]
    if key_of(old, index) != key_of(new, index):
        return [
            Spent(index.name, _plain(old[index.hash_key]), write_units(item_size(old))),
            Spent(index.name, _plain(new[index.hash_key]), write_units(item_size(new))),
        ]
    if old != new:
        size = max(item_size(old), item_size(new))
        return [Spent(index.name, _plain(new[index.hash_key]), write_units(size))]
    return []


KEY_READS = {"GetItem", "BatchGetItem", "TransactGetItems"}


def written_items(operation: str, body: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """(item or key, billing) of each item a write request names; billing `single`, `transact` or `check`."""
    named: list[tuple[dict[str, Any], str]] = []
    if operation in {"PutItem", "UpdateItem", "DeleteItem"}:
        named.append((body.get("Item") or body["Key"], "single"))
    if operation == "TransactWriteItems":
        for entry in body["TransactItems"]:
            ((action, spec),) = entry.items()
            named.append((spec.get("Item") or spec["Key"], "check" if action == "ConditionCheck" else "transact"))
    if operation == "BatchWriteItem":
        for requests in body["RequestItems"].values():
            named += [(spec.get("Item") or spec["Key"], "single") for request in requests for spec in request.values()]
    return named


def _consistency(spec: dict[str, Any]) -> float:
    return 1.0 if spec.get("ConsistentRead") else 0.5


def read_keys(operation: str, body: dict[str, Any]) -> list[tuple[dict[str, Any], float]]:
    """(key, RCU per 4 KB) of each item a key read names: 0.5 eventually consistent, 1 strongly, 2 in a
    transaction."""
    if operation == "GetItem":
        return [(body["Key"], _consistency(body))]
    if operation == "BatchGetItem":
        return [(key, _consistency(spec)) for spec in body["RequestItems"].values() for key in spec["Keys"]]
    if operation == "TransactGetItems":
        return [(entry["Get"]["Key"], 2.0) for entry in body["TransactItems"]]
    return []


def write_capacity(
    operation: str, body: dict[str, Any], before: Snapshot, after: Snapshot, schema: Schema
) -> list[Spent]:
    """Table and index writes of one write request, from its items as they were before and after it (a
    request changes only the items it names). A transaction bills 2 WCU per KB on the table, a
    ConditionCheck too while changing nothing; an item written unchanged still costs its write."""
    named = {key_of(spec, schema.table): billing for spec, billing in written_items(operation, body)}
    writes = []
    for key, billing in sorted(named.items()):
        old, new = before.get(key), after.get(key)
        factor = 1 if billing == "single" else 2
        writes.append(Spent("table", key[0], factor * write_units(max(item_size(old), item_size(new)))))
        for index in schema.indexes:  # a ConditionCheck changes nothing: no index write
            writes += index_writes(old, new, index, schema.table.keys)
    return writes


def _query_partition(body: dict[str, Any], index: Index) -> str:
    """The partition a Query reads: the value its key condition sets the hash key equal to."""
    names = body.get("ExpressionAttributeNames", {})
    for clause in re.split(r"\s+AND\s+", body.get("KeyConditionExpression", ""), flags=re.IGNORECASE):
        match = re.fullmatch(r"\(?\s*([#\w]+)\s*=\s*(:\w+)\s*\)?", clause.strip())
        if match and names.get(match[1], match[1]) == index.hash_key:
            return _plain(body["ExpressionAttributeValues"][match[2]])
    return "*"  # a Scan: every partition


def read_capacity(
    operation: str,
    body: dict[str, Any],
    response: dict[str, Any],
    items: Snapshot,
    schema: Schema,
    *,
    paged: bool,
    partition_items: Callable[[Index, str], list[Item]],
) -> list[Spent]:
    """Read units of one read request, from the full `items` behind it: per item for a key read, per request
    for a Query (its items as its index holds them, 4 KB rounding on their sum). `paged`: the queries read
    pages of many due items, so each item costs its bytes only (the rounding is spread over the page)."""
    table_index = schema.table
    if operation in KEY_READS:
        reads = []
        for spec, factor in read_keys(operation, body):
            key = key_of(spec, table_index)
            reads.append(Spent("table", key[0], factor * read_units(item_size(items.get(key)))))
        return reads
    if operation not in {"Query", "Scan"}:
        return []
    index = schema.index(body.get("IndexName"))
    partition = _query_partition(body, index)
    returned = response.get("Items", [])
    sizes = []
    for item in returned:
        full = items.get(key_of(item, table_index)) if all(k in item for k in table_index.keys) else None
        sizes.append(item_size(projected(full, index, table_index.keys) if full else item))
    scanned = int(response.get("ScannedCount", len(returned)))
    if scanned > len(returned):  # a filter dropped items it still read: count them at the partition's mean
        in_partition = [
            item_size(projected(item, index, table_index.keys)) for item in partition_items(index, partition)
        ]
        mean = sum(in_partition) / len(in_partition) if in_partition else 0
        sizes += [round(mean)] * (scanned - len(returned))
    factor = _consistency(body)
    units = factor * sum(sizes) / 4096 if paged else factor * read_units(sum(sizes))
    return [Spent(index.name, partition, units)]


@dataclass
class Footprint:
    writes: list[Spent] = field(default_factory=list)
    reads: list[Spent] = field(default_factory=list)
    items_written: dict[str, int] = field(default_factory=dict)  # kind of item → its largest size

    def per(self, sessions: int) -> Footprint:
        """One session's share of work that covered `sessions`."""
        return Footprint(
            [Spent(unit.target, unit.partition, unit.units / sessions) for unit in self.writes],
            [Spent(unit.target, unit.partition, unit.units / sessions) for unit in self.reads],
            self.items_written,
        )


def item_kind(key: tuple[str, ...]) -> str:
    """`SESSION#/MSG#`: what an item is, from its key's prefixes."""

    def prefix(value: str) -> str:
        head, sep, _ = value.partition("#")
        return head + sep if head else value

    return "/".join(prefix(value) for value in key)


class TableReader:
    """Items of the stack's table, read through a client no tap watches."""

    def __init__(self, client: Any, table_name: str, schema: Schema) -> None:
        self.client, self.table_name, self.schema = client, table_name, schema

    def items(self, keys: list[dict[str, Any]]) -> Snapshot:
        """The items (those that exist) of these keys, as they are now."""
        wanted = list({key_of(key, self.schema.table): key for key in keys}.values())
        found: Snapshot = {}
        for start in range(0, len(wanted), 100):
            chunk = [{name: key[name] for name in self.schema.table.keys} for key in wanted[start : start + 100]]
            request = {self.table_name: {"Keys": chunk, "ConsistentRead": True}}
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                found.update((key_of(i, self.schema.table), i) for i in response["Responses"].get(self.table_name, []))
                request = response.get("UnprocessedKeys") or {}
        return found

    def partition(self, index: Index, value: str) -> list[Item]:
        """Every item of one partition of the table or an index (`*`: the whole table)."""
        name = {"IndexName": index.name} if index is not self.schema.table else {}
        if value == "*":
            pages = self.client.get_paginator("scan").paginate(TableName=self.table_name)
        else:
            pages = self.client.get_paginator("query").paginate(
                TableName=self.table_name,
                KeyConditionExpression="#hash = :value",
                ExpressionAttributeNames={"#hash": index.hash_key},
                ExpressionAttributeValues={":value": {"S": value}},
                **name,
            )
        return [item for page in pages for item in page["Items"]]


@dataclass
class Tap(harness.Meter):
    """The harness meter, keeping also what each request spent on which partition key while `recording`:
    the items each write names read before and after it, the full items behind each read."""

    reader: TableReader | None = None
    footprint: Footprint | None = None
    paged: bool = False
    _pending: dict[str, tuple[dict[str, Any], list[dict[str, Any]], Snapshot]] = field(default_factory=dict)

    @contextmanager
    def recording(self, *, paged: bool = False) -> Iterator[Footprint]:
        self.footprint, self.paged = Footprint(), paged
        try:
            yield self.footprint
        finally:
            self.footprint = None

    def _on_request(self, request: Any, operation_name: str, **kwargs: Any) -> None:
        super()._on_request(request, operation_name, **kwargs)
        if self.footprint is not None and self.reader is not None:
            body = json.loads(request.body or b"{}")
            named = [spec for spec, _ in written_items(operation_name, body) + read_keys(operation_name, body)]
            self._pending[operation_name] = (body, named, self.reader.items(named))

    def _on_response(self, http_response: Any, parsed: dict[str, Any], model: Any, **kwargs: Any) -> None:
        super()._on_response(http_response, parsed, model, **kwargs)
        pending = self._pending.pop(model.name, None)
        if self.footprint is None or self.reader is None or pending is None:
            return
        body, named, before = pending
        schema = self.reader.schema
        if model.name in harness.WRITE_OPERATIONS:
            after = self.reader.items(named)
            self.footprint.writes += write_capacity(model.name, body, before, after, schema)
            for key, item in after.items():
                if before.get(key) != item:
                    kind = item_kind(key)
                    self.footprint.items_written[kind] = max(item_size(item), self.footprint.items_written.get(kind, 0))
            return
        # the raw response: the client's own hooks may already have turned `parsed` into Python values
        response = json.loads(getattr(http_response, "content", b"") or b"{}")
        returned = [item for item in response.get("Items", []) if all(k in item for k in schema.table.keys)]
        items = before if model.name in KEY_READS else self.reader.items(returned)
        self.footprint.reads += read_capacity(
            model.name, body, response, items, schema, paged=self.paged, partition_items=self.reader.partition
        )


# --- the routes, each run once --------------------------------------------------------------------
CREATE = "create session"
APPEND = "append 1 message"
CHAT = "chat (async) and its run"
LIST = f"list sessions (page of {LISTED_SESSIONS})"
GET = "get session with messages"
RENAME = "rename (PATCH)"
COMMENT = "comment"
SHARE = "share"
EXPIRY = "scheduled expiry (per session)"
LARGEST_APPEND = "append 1 message, largest inline"  # the automated user's worst case, not in the daily rates
# The workload: calls per session, on average.
PER_SESSION = {
    CREATE: 1,
    APPEND: 4,
    CHAT: 6,
    LIST: 1,
    GET: 2,
    RENAME: 0.2,
    COMMENT: 0.2,
    SHARE: 0.1,
    EXPIRY: 1,  # every session becomes due once per idle period
}
MESSAGES_PER_SESSION = int(2 * PER_SESSION[CHAT] + PER_SESSION[APPEND])  # a chat stores the question and the reply


def _message(extra: str = "") -> str:
    """A user message of MESSAGE_BYTES bytes, ending in `extra`."""
    sentence = "Please summarise the quarterly figures and flag anything unusual. "
    return (sentence * (MESSAGE_BYTES // len(sentence) + 1))[: MESSAGE_BYTES - len(extra)] + extra


def _ok(result: Any, what: str) -> Any:
    if result.status >= 300:
        raise RuntimeError(f"{what}: {result.status} {str(result.body)[:200]}")
    return result.body


def _create(stack: harness.Stack, _: str) -> None:
    _ok(stack.api("POST", BASE, body={"title": "heat"}, user=ACTOR), CREATE)


def _append(stack: harness.Stack, session_id: str, content: str | None = None) -> None:
    body = {"role": "user", "content": content or _message()}
    _ok(stack.api("POST", f"{BASE}/{session_id}/messages", body=body, user=ACTOR), APPEND)


def _append_largest(stack: harness.Stack, session_id: str) -> None:
    from sessions_api.dal import payloads

    _append(stack, session_id, "x" * payloads.INLINE_LIMIT_BYTES)


def _chat(stack: harness.Stack, session_id: str) -> None:
    """The accept, then the worker's run, handed over in-process as the stream would (as chat_runs does)."""
    from sessions_api.logic import runner
    from sessions_api.providers.local_echo import LocalEchoProvider
    from sessions_api.settings import get_settings

    body = {"message": _message(f" [stream {REPLY_WORDS}]")}
    accepted = _ok(stack.api("POST", f"{BASE}/{session_id}/chat/async", body=body, user=ACTOR), CHAT)
    provider = LocalEchoProvider(chunk_delay_seconds=CHUNK_DELAY_SECONDS)
    runner.run(get_settings(), provider, session_id, accepted["request_id"], remaining_ms=lambda: 900_000)


def _get_with_messages(stack: harness.Stack, session_id: str) -> None:
    _ok(stack.api("GET", f"{BASE}/{session_id}", query={"include": "messages"}, user=ACTOR), GET)


def _rename(stack: harness.Stack, session_id: str) -> None:
    _ok(stack.api("PATCH", f"{BASE}/{session_id}", body={"title": "renamed"}, user=ACTOR), RENAME)


def _comment(stack: harness.Stack, session_id: str) -> None:
    body = {"content": "Looks right to me.", "comment_type": "note"}
    _ok(stack.api("POST", f"{BASE}/{session_id}/comments", body=body, user=ACTOR), COMMENT)


def _share_session(stack: harness.Stack, session_id: str) -> None:
    body = {"recipients": [RECIPIENT], "permissions": "view"}
    _ok(stack.api("POST", f"{BASE}/{session_id}/share", body=body, user=ACTOR), SHARE)


# Routes on one session, each on a fresh session holding a session's worth of messages.
SESSION_ROUTES: dict[str, Callable[[harness.Stack, str], None]] = {
    CREATE: _create,
    APPEND: _append,
    CHAT: _chat,
    GET: _get_with_messages,
    RENAME: _rename,
    COMMENT: _comment,
    SHARE: _share_session,
    LARGEST_APPEND: _append_largest,
}


@dataclass
class Clock:
    """How far ahead of the real time `timeutil.now()` runs for the code under measure."""

    offset: timedelta = timedelta()

    def at(self, moment: datetime) -> None:
        self.offset = moment - datetime.now(UTC)

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@contextmanager
def _moving_clock() -> Iterator[Clock]:
    """Calls come apart in time (a session's a minute, the schedule's an idle period): the code's clock is
    moved there, not waited for."""
    from sessions_api import timeutil

    clock, real = Clock(), timeutil.now
    timeutil.now = lambda: real() + clock.offset
    try:
        yield clock
    finally:
        timeutil.now = real


@contextmanager
def _tapped_stack() -> Iterator[tuple[harness.Stack, Tap]]:
    """The template's stack in moto, with a tap on the functions' DynamoDB clients."""
    # moto copies the whole table for every transaction; moto_fast copies only the items it names
    with harness.moto_stack() as stack, harness.quiet(), moto_fast.installed():
        from sessions_api.dal import clients

        name = harness.table_name()
        schema = schema_of(stack.dynamodb.describe_table(TableName=name)["Table"])
        tap = Tap(reader=TableReader(stack.dynamodb, name, schema))
        tap.watch(clients.dynamodb())
        tap.watch(clients.dynamodb_wire())
        yield stack, tap


def _record(
    section: Section,
    tap: Tap,
    footprints: dict[str, Footprint],
    name: str,
    work: Callable[[], None],
    *,
    sessions: int = 1,
    paged: bool = False,
) -> None:
    """`work`'s footprint per session it covered (a route being changed may not answer: a gap, not a failure)."""
    try:
        with tap.recording(paged=paged) as footprint:
            work()
    except Exception as exc:
        section.gap(f"{name}: {type(exc).__name__}: {str(exc)[:200]}")
        return
    footprints[name] = footprint.per(sessions)


def _owner_side(
    section: Section, stack: harness.Stack, tap: Tap, clock: Clock, footprints: dict[str, Footprint]
) -> None:
    """A full first page of the owner's listing, and each session's life on the schedule: armed at its
    creation, written to halfway through its idle time, then left idle past its deadline."""
    from benchmarks import expiry
    from sessions_api import timeutil

    sessions = [stack.api.create_session(user=ACTOR, title=f"listed {n}") for n in range(LISTED_SESSIONS)]
    armed = max(timeutil.parse(session["expires_at"]) for session in sessions)
    clock.at(timeutil.now() + (armed - timeutil.now()) / 2)
    for session in sessions:
        _append(stack, session["session_id"])
    read_back = [stack.api("GET", f"{BASE}/{s['session_id']}", user=ACTOR).body for s in sessions]
    deadline = max(timeutil.parse(session["expires_at"]) for session in read_back)

    def listing() -> None:
        _ok(stack.api("GET", BASE, query={"limit": str(LISTED_SESSIONS)}, user=ACTOR), LIST)

    _record(section, tap, footprints, LIST, listing)
    spec = next(spec for spec in harness.function_specs() if spec.logical_id == "ExpiryFunction")

    def schedule() -> None:
        expired = 0
        for moment in (armed, deadline):  # the due time creation armed, then the idle deadline
            clock.at(moment + timedelta(seconds=1))
            expired += int(expiry.invoke_expiry(spec.timeout).get("expired", 0))
        if expired != len(sessions):
            raise RuntimeError(f"the schedule expired {expired} of {len(sessions)} idle sessions")

    _record(section, tap, footprints, EXPIRY, schedule, sessions=len(sessions), paged=True)


def measure_footprints(section: Section) -> tuple[dict[str, Footprint], Schema]:
    footprints: dict[str, Footprint] = {}
    with _tapped_stack() as (stack, tap), _moving_clock() as clock:
        assert tap.reader is not None
        schema = tap.reader.schema
        for name, call in SESSION_ROUTES.items():
            session_id = stack.api.create_session(user=ACTOR, title="heat")["session_id"]
            harness.seed_messages(stack.table, session_id, MESSAGES_PER_SESSION)
            clock.advance(SESSION_SECONDS / MESSAGES_PER_SESSION)  # the call comes a while after the last write
            _record(section, tap, footprints, name, functools.partial(call, stack, session_id))
    with _tapped_stack() as (stack, tap), _moving_clock() as clock:
        _owner_side(section, stack, tap, clock, footprints)
    return footprints, schema


# --- the model -------------------------------------------------------------------------------------
def pareto_scale(alpha: float = PARETO_ALPHA, cap: float = ACTIVITY_CAP) -> float:
    """x_min of the Pareto(alpha) activity whose values, capped at `cap`, average 1 (the mean user)."""

    def capped_mean(x_min: float) -> float:  # ∫ P(X > x) dx from 0 to cap
        return x_min + x_min**alpha * (cap ** (1 - alpha) - x_min ** (1 - alpha)) / (1 - alpha)

    low, high = 0.0, 1.0
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if capped_mean(middle) < 1 else (low, middle)
    return (low + high) / 2


def top_activity(users: int, alpha: float = PARETO_ALPHA, cap: float = ACTIVITY_CAP) -> float:
    """The most active of `users`, in multiples of the mean user: the 1 − 1/users quantile, capped."""
    return min(cap, pareto_scale(alpha, cap) * users ** (1 / alpha))


def peak_rate(per_session: float) -> float:
    """Calls per second of the mean user in the peak hour."""
    return SESSIONS_PER_USER_DAY * per_session * PEAK_FACTOR / SECONDS_PER_DAY


def sample_session_ids(count: int, seed: int) -> list[str]:
    """Session ids shaped like `ids.new_session_id()`'s, from a seeded generator (the same every run)."""
    from sessions_api import ids

    rng = random.Random(seed)
    sample = [f"session_{rng.getrandbits(64):016x}" for _ in range(count)]
    assert len(sample[0]) == len(ids.new_session_id()), "session ids changed shape: draw them like ids does"
    assert ids.is_session_id(sample[0])
    return sample


def shard_counts(session_ids: list[str], shards: int) -> list[int]:
    """Sessions per DUE shard, by the real `keys.due_shard`."""
    from sessions_api.dal import keys

    counts = [0] * shards
    for session_id in session_ids:
        counts[keys.due_shard(session_id, shards)] += 1
    return counts


def peak_hour_sessions(users: int) -> int:
    return round(users * SESSIONS_PER_USER_DAY * PEAK_FACTOR / 24)


def role_of(partition: str, due_partitions: frozenset[str]) -> str:
    """Whose a measured partition key is: a session's, the acting user's, a share recipient's, a DUE shard
    (every session hashed to it), one request's, or one key for everyone (`global`)."""
    from sessions_api import ids
    from sessions_api.dal import keys

    parts = partition.split("#")
    if any(ids.is_session_id(part) for part in parts):
        return "session"
    if partition in due_partitions:
        return "shard"
    if ACTOR in parts:
        return "user"
    if RECIPIENT in parts:
        return "recipient"
    if partition.startswith(keys.IDEMPOTENCY_PREFIX):
        return "request"
    return "global"


PLACEHOLDERS = {"session": "<id>", "user": "<id>", "recipient": "<id>", "shard": "<n>", "request": "<request>"}


def key_label(partition: str, role: str) -> str:
    """`SESSION#<id>`: the key's kind (its prefix before `#`), with the id left out."""
    placeholder = PLACEHOLDERS.get(role)
    return f"{partition.split('#', 1)[0]}#{placeholder}" if placeholder else partition


Load = dict[tuple[str, str, str], tuple[float, float]]  # (target, key, role) → (WCU, RCU) per call


def load_of(footprint: Footprint, due_partitions: frozenset[str]) -> Load:
    sums: dict[tuple[str, str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for column, spent in ((0, footprint.writes), (1, footprint.reads)):
        for unit in spent:
            role = role_of(unit.partition, due_partitions)
            sums[(unit.target, key_label(unit.partition, role), role)][column] += unit.units
    return {key: (write, read) for key, (write, read) in sums.items()}


@dataclass(frozen=True)
class Heat:
    """Capacity per second on one partition key."""

    target: str
    key: str
    source: str
    write: float  # WCU/s
    read: float  # RCU/s

    @property
    def share(self) -> float:
        return max(self.write / WRITE_LIMIT, self.read / READ_LIMIT)


Rates = dict[str, tuple[float, str]]  # role → (calls per second on one such key, whose key it is)


def _heat(loads: list[tuple[Load, Rates]]) -> list[Heat]:
    sums: dict[tuple[str, str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for load, rates in loads:
        for (target, key, role), (write, read) in load.items():
            if role in rates:
                rate, source = rates[role]
                sums[(target, key, source)][0] += rate * write
                sums[(target, key, source)][1] += rate * read
    return [Heat(target, key, source, write, read) for (target, key, source), (write, read) in sums.items()]


@dataclass(frozen=True)
class Population:
    users: int
    top: float  # the most active user's activity, in mean users
    shard_share: float  # the busiest DUE shard's share of the sessions
    automated_on_shard: int  # the automated user's sessions on its busiest DUE shard

    def rates(self, per_session: float) -> Rates:
        mean = peak_rate(per_session)
        human = f"most active user, {self.top:.0f}× the mean"
        return {
            "user": (self.top * mean, human),
            "recipient": (self.top * mean, f"a recipient of the {human}"),
            "session": (per_session / SESSION_SECONDS, "a human's session"),
            "shard": (self.users * mean * self.shard_share, "all users, busiest shard"),
            "global": (self.users * mean, "all users"),
        }

    def automated_rates(self) -> Rates:
        per_session = AUTOMATED_MESSAGES_PER_SECOND / AUTOMATED_SESSIONS
        return {
            "user": (AUTOMATED_MESSAGES_PER_SECOND, "the automated user"),
            "session": (per_session, f"an automated session, {per_session:g} msg/s"),
            "shard": (self.automated_on_shard * per_session, "all users, busiest shard"),
            "global": (AUTOMATED_MESSAGES_PER_SECOND, "all users"),
        }


def population(users: int, shards: int) -> Population:
    sampled = min(peak_hour_sessions(users), SHARD_SAMPLE_MAX)
    counts = shard_counts(sample_session_ids(sampled, SEED), shards)
    automated = shard_counts(sample_session_ids(AUTOMATED_SESSIONS, SEED + 1), shards)
    return Population(users, top_activity(users), max(counts) / sampled, max(automated))


def heat_at(people: Population, loads: dict[str, Load]) -> list[Heat]:
    """Every partition key's load in the peak hour: the modelled users and the automated one."""
    everyone = [
        (loads[route], people.rates(per_session)) for route, per_session in PER_SESSION.items() if route in loads
    ]
    return _heat([*everyone, (loads.get(APPEND, {}), people.automated_rates())])


def worst_cases(loads: dict[str, Load]) -> list[Heat]:
    """The automated user's session were no rate limit to spread it (`at_the_limit`: what the limits allow):
    all 100 msg/s in one session, and 10 msg/s of the largest message an item keeps."""
    per_session = AUTOMATED_MESSAGES_PER_SECOND / AUTOMATED_SESSIONS
    single: Rates = {
        "session": (
            AUTOMATED_MESSAGES_PER_SECOND,
            f"one automated session taking all {AUTOMATED_MESSAGES_PER_SECOND} msg/s, were it not limited",
        )
    }
    largest: Rates = {
        "session": (
            per_session,
            f"an automated session, {per_session:g} msg/s of the largest inline message, were it not limited",
        )
    }
    cases = []
    for load, rates in ((loads.get(APPEND), single), (loads.get(LARGEST_APPEND), largest)):
        heats = _heat([(load, rates)]) if load else []
        if heats:
            cases.append(max(heats, key=lambda heat: heat.share))
    return cases


def at_the_limit(loads: dict[str, Load]) -> list[Heat]:
    """What one user at the write-rate limits (dal/rates.py) can put on one session of theirs: average messages
    one by one, or the largest an item keeps (each weighs the KB it stores)."""
    from sessions_api.dal import payloads, rates
    from sessions_api.settings import get_settings

    settings = get_settings()
    limit = min(settings.user_writes_per_second, settings.session_writes_per_second)
    largest = rates.weight([{"type": "message", "content": "x" * payloads.INLINE_LIMIT_BYTES}])
    cases = []
    for route, per_second, what in (
        (APPEND, limit / rates.weight([{"type": "message", "content": "x" * MESSAGE_BYTES}]), "average messages"),
        (LARGEST_APPEND, limit / largest, "the largest inline message"),
    ):
        rates_: Rates = {"session": (per_second, f"one user at the limit ({limit}/s), {what}, all in one session")}
        heats = _heat([(loads[route], rates_)]) if route in loads else []
        if heats:
            cases.append(max(heats, key=lambda heat: heat.share))
    return cases


BEFORE = Path(__file__).with_name("partition_heat_before.json")


def before_and_after(heats: dict[int, list[Heat]], targets: list[str]) -> str:
    """The hottest write key of each table and index, as recorded before the fixes of docs/capacity.md and now."""
    recorded = json.loads(BEFORE.read_text())
    before = {(row["daily_users"], row["where"]): row for row in recorded["hottest_write_keys"]}
    rows = []
    for users, found in heats.items():
        for target in targets:
            now, _ = hottest(found, target)
            then = before.get((users, target))
            rows.append(
                [
                    f"{users:,}",
                    target,
                    f"{then['key']}: {_percent(then['wcu_per_second'], WRITE_LIMIT)}" if then else "—",
                    f"`{now.key}` ({now.source}): {_percent(now.write, WRITE_LIMIT)}" if now else "—",
                ]
            )
    note = (
        f"**Before and after** the fixes (hottest write key, % of {WRITE_LIMIT:,} WCU/s). Before: this model run on "
        f"commit {recorded['commit']} ({recorded['measured_at']}), kept in `benchmarks/{BEFORE.name}`; after: "
        f"this run. What changed: {recorded['what_changed_since']}."
    )
    return note + "\n\n" + table(["daily users", "where", "before", "after (this run)"], rows)


def hottest(heats: list[Heat], target: str) -> tuple[Heat | None, Heat | None]:
    """(the key taking the most write units, the key taking the most read units) of `target`."""
    mine = [heat for heat in heats if heat.target == target]
    writes = [heat for heat in mine if heat.write > 0]
    reads = [heat for heat in mine if heat.read > 0]
    return (
        max(writes, key=lambda heat: heat.write) if writes else None,
        max(reads, key=lambda heat: heat.read) if reads else None,
    )


# --- the report ------------------------------------------------------------------------------------
def _units(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _percent(value: float, limit: int) -> str:
    text = f"{value / limit:.1%}"
    return f"**{text}**" if value / limit > TARGET_SHARE else text


def _by_key(load: Load, target: str, column: int) -> str:
    sums: dict[str, float] = defaultdict(float)
    for (unit_target, key, _), spent in load.items():
        if unit_target == target and spent[column]:
            sums[key] += spent[column]
    return " · ".join(f"`{key}` {_units(units)}" for key, units in sorted(sums.items())) or "—"


def _footprint_rows(footprints: dict[str, Footprint], loads: dict[str, Load], targets: list[str]) -> list[list[Any]]:
    rows = []
    for route, footprint in footprints.items():
        load = loads[route]
        reads = "; ".join(
            f"{target}: {_by_key(load, target, 1)}"
            for target in targets
            if any(key[0] == target and spent[1] for key, spent in load.items())
        )
        largest = max(footprint.items_written.items(), key=lambda entry: entry[1], default=None)
        rows.append(
            [
                route,
                f"{PER_SESSION[route]:g}" if route in PER_SESSION else "—",
                *(_by_key(load, target, 0) for target in targets),
                reads or "—",
                f"`{largest[0]}` {largest[1]:,} B" if largest else "—",
            ]
        )
    return rows


def _heat_row(users: str, target: str, write: Heat | None, read: Heat | None) -> list[Any]:
    none = ["—", "0", "—"]
    return [
        users,
        target,
        *(
            [f"`{write.key}` ({write.source})", _units(write.write), _percent(write.write, WRITE_LIMIT)]
            if write
            else none
        ),
        *([f"`{read.key}` ({read.source})", _units(read.read), _percent(read.read, READ_LIMIT)] if read else none),
    ]


def _size(footprints: dict[str, Footprint], route: str, kind: str) -> str:
    size = footprints[route].items_written.get(kind) if route in footprints else None
    return f"{size:,} B" if size else "not measured"


def _workload(footprints: dict[str, Footprint], people: list[Population], shards: int) -> str:
    from sessions_api.dal import payloads
    from sessions_api.providers.local_echo import WORDS_PER_CHUNK

    message, session = "SESSION#/MSG#", "SESSION#/#SESSION"
    rows: list[list[Any]] = [
        ["daily active users", " · ".join(f"{p.users:,}" for p in people)],
        ["sessions per user per day (mean)", SESSIONS_PER_USER_DAY],
        ["calls per session (mean)", ", ".join(f"{route} {count:g}" for route, count in PER_SESSION.items())],
        [
            "messages per session",
            f"{MESSAGES_PER_SESSION} (a chat stores the question and its reply); each route ran on a session holding "
            "them",
        ],
        [
            "per-user activity",
            f"Pareto α = {PARETO_ALPHA}, capped at {ACTIVITY_CAP}× and scaled so the mean user is 1× "
            f"(x_min = {pareto_scale():.3f}); the most active of N users is the 1 − 1/N quantile: "
            + " · ".join(f"{p.top:.1f}×" for p in people),
        ],
        [
            "peak hour",
            f"{PEAK_FACTOR}× the average hour (the schedule's expiries too: they follow the activity an idle period "
            "later)",
        ],
        ["an active session", f"{SESSION_SECONDS // 60} minutes: a session's own calls fall within them"],
        [
            "message size",
            f"average {MESSAGE_BYTES} B of content (its item {_size(footprints, APPEND, message)}, the session item "
            f"{_size(footprints, APPEND, session)}); largest kept in its item {payloads.INLINE_LIMIT_BYTES:,} B (item "
            f"{_size(footprints, LARGEST_APPEND, message)}; larger contents go to S3)",
        ],
        [
            "reply",
            f"{REPLY_WORDS} words streamed over about {CHUNK_DELAY_SECONDS * REPLY_WORDS / WORDS_PER_CHUNK:.0f} s "
            f"by the local model (item {_size(footprints, CHAT, message)})",
        ],
        [
            "automated user",
            f"{AUTOMATED_MESSAGES_PER_SECOND} appends/s spread over {AUTOMATED_SESSIONS} of its sessions "
            f"({AUTOMATED_MESSAGES_PER_SECOND / AUTOMATED_SESSIONS:g}/s each; {people[-1].automated_on_shard} of them "
            "on one DUE shard), average-size messages",
        ],
        [
            "DUE shards",
            f"{shards} (settings); the busiest shard's share of the peak hour's sessions, by `keys.due_shard` over "
            f"up to {SHARD_SAMPLE_MAX:,} seeded session ids: " + " · ".join(f"{p.shard_share:.2%}" for p in people),
        ],
        [
            "limits",
            f"{WRITE_LIMIT:,} WCU/s and {READ_LIMIT:,} RCU/s per partition key, table and each GSI alike; "
            f"target ≤ {TARGET_SHARE:.0%}",
        ],
        [
            "billing",
            "table: 1 WCU per KB, 2 in a transaction (a ConditionCheck too); index: 1 WCU per KB of the index item, "
            "2 writes when its key changes; reads: 0.5 / 1 / 2 RCU per 4 KB (eventual / strong / transactional)",
        ],
    ]
    return table(["parameter", "value"], rows)


def _due_rows(loads: dict[str, Load], people: list[Population]) -> list[list[Any]]:
    """What each route puts on the busiest DUE shard, per call and per second at each level."""

    def on_shards(load: Load) -> tuple[float, float]:
        spent = [values for (_, _, role), values in load.items() if role == "shard"]
        return sum(write for write, _ in spent), sum(read for _, read in spent)

    rows = []
    for route, per_session in PER_SESSION.items():
        write, read = on_shards(loads.get(route, {}))
        if write or read or route == APPEND:  # the appends' row even at zero: the per-message rate is the question
            rates = [p.users * peak_rate(per_session) * p.shard_share for p in people]
            rows.append(
                [
                    route,
                    f"{_units(write)} / {_units(read)}",
                    *(f"{_units(r * write)} / {_units(r * read)}" for r in rates),
                ]
            )
    write, read = on_shards(loads.get(APPEND, {}))
    rate = AUTOMATED_MESSAGES_PER_SECOND / AUTOMATED_SESSIONS
    rows.append(
        ["the automated user's appends", f"{_units(write)} / {_units(read)}"]
        + [
            f"{_units(p.automated_on_shard * rate * write)} / {_units(p.automated_on_shard * rate * read)}"
            for p in people
        ]
    )
    return rows


def run(section: Section) -> None:
    from sessions_api.dal import keys
    from sessions_api.settings import get_settings

    footprints, schema = measure_footprints(section)
    shards = get_settings().due_shards
    due_partitions = frozenset(keys.due_gsi3pk(shard) for shard in range(shards))
    loads = {route: load_of(footprint, due_partitions) for route, footprint in footprints.items()}
    targets = ["table", *(index.name for index in schema.indexes)]
    people = [population(users, shards) for users in DAILY_USERS]
    heats = {p.users: heat_at(p, loads) for p in people}
    rows = []
    for p in people:
        for target in targets:
            rows.append(_heat_row(f"{p.users:,}", target, *hottest(heats[p.users], target)))
    worst = worst_cases(loads)
    for case in [*worst, *at_the_limit(loads)]:
        rows.append(_heat_row("any", case.target, case if case.write else None, case if case.read else None))
    top_users = people[-1].users
    at_top = max(heats[top_users], key=lambda heat: heat.share)
    section.data = {
        "footprints": {route: {f"{t} {k}": v for (t, k, _), v in load.items()} for route, load in loads.items()},
        "heat": {
            str(p.users): [heat.__dict__ for target in targets for heat in hottest(heats[p.users], target) if heat]
            for p in people
        },
        "worst_cases": [case.__dict__ for case in worst],
    }
    section.add(
        __doc__.split("\n\n", 1)[1].strip(),
        "**The workload.**",
        _workload(footprints, people, shards),
        "**Footprint of one call** (capacity units per call, by partition key kind; `<id>` a session's or a "
        "user's, `<n>` a DUE shard). The scheduled expiry ran over "
        f"{LISTED_SESSIONS} sessions of one owner at the due time their creation armed, then at their idle "
        "deadline, and is shown per session; its GSI3 queries read pages of many due sessions, so their reads "
        "are billed by bytes, the 4 KB rounding spread over the page.",
        table(
            ["route", "calls per session", *(f"{target} WCU" for target in targets), "RCU", "largest item written"],
            _footprint_rows(footprints, loads, targets),
        ),
        "**Heat in the peak hour**: the partition key taking the most write units and the one taking the most read "
        "units, of the table and of each index. A user's keys (such as `USER#`, `OWNER#`) carry the most "
        "active human user or the automated one, whichever is hotter; a session's carry one of its sessions; a "
        "DUE shard carries every session hashed to it, at the busiest shard's share. The rows marked `any` are "
        "the automated user's worst cases, left out of the target (all its messages in one session, or only the "
        "largest), and the most one user can put on one session of theirs at the write-rate limit "
        "(`UserWritesPerSecond`, messages weighed by the KB they store).",
        table(
            [
                "daily users",
                "where",
                "hottest write key",
                "WCU/s",
                f"% of {WRITE_LIMIT:,}",
                "hottest read key",
                "RCU/s",
                f"% of {READ_LIMIT:,}",
            ],
            rows,
        ),
        before_and_after(heats, targets),
        "**The DUE shards**, route by route: WCU / RCU per call on the session's shard, and per second on the "
        "busiest shard at each level (the appends' share is the per-message due-index write rate).",
        table(
            ["route", "per call", *(f"{p.users:,} users" for p in people)],
            _due_rows(loads, people),
        ),
        "One partition key's writes are taken to land on one partition: DynamoDB may split a hot key's items "
        "by sort key, but not writes that follow a growing sort key (a due time, an activity time). A human's "
        "session spreads its calls over its active minutes; the schedule's fixed cost (one query per shard per "
        "run, empty or not) is left out, a few RCU per run.",
    )
    missing = [route for route in PER_SESSION if route not in footprints]
    section.target(
        f"at {top_users // 1_000_000} M daily users at peak, no key above {TARGET_SHARE:.0%} of its partition "
        f"(with one automated user at {AUTOMATED_MESSAGES_PER_SECOND} msg/s)",
        None if missing else at_top.share <= TARGET_SHARE,
        f"worst: {at_top.target} `{at_top.key}` ({at_top.source}), {_units(at_top.write)} WCU/s "
        f"({at_top.write / WRITE_LIMIT:.1%}), {_units(at_top.read)} RCU/s ({at_top.read / READ_LIMIT:.1%})"
        + (f"; not measured: {', '.join(missing)}" if missing else ""),
    )
    section.summary.append(
        (
            f"Hottest partition key at {top_users:,} daily users, peak hour (an automated user at "
            f"{AUTOMATED_MESSAGES_PER_SECOND} msg/s)",
            f"{at_top.target} `{at_top.key}`: {at_top.share:.0%} of its partition",
            "—",
        )
    )
