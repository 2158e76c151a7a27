"""What every measure shares: the stack from template.yaml in moto, a DynamoDB request meter, seeding."""

from __future__ import annotations

import json
import os
import statistics
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from local import template
from tests import support

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": template.REGION,
    "AWS_REGION": template.REGION,
}
WRITE_OPERATIONS = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}


def function_environment() -> dict[str, str]:
    """The functions' environment from the template plus fake credentials, as the tests use it (chats answer
    with the local provider: moto has no Bedrock)."""
    return {**support.function_environment(), **FAKE_AWS, "POWERTOOLS_DEV": "false", "MODEL_PROVIDER": "local"}


def configure_process() -> None:
    """Set this process up like a function under test (before anything reads the settings)."""
    os.environ.update(function_environment())
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(name, None)


def table_name() -> str:
    return os.environ["TABLE_NAME"]


def has_route(method: str, path: str) -> bool:
    """Whether template.yaml has a route (other than $default) that would take this request."""
    try:
        _, route, _ = support.route_for(method, path)
    except LookupError:
        return False
    return route.path != "$default"


def function_specs() -> list[template.FunctionSpec]:
    return list(support.function_specs().values())


# --- the DynamoDB meter ------------------------------------------------------------------------------
@dataclass
class Call:
    operation: str
    request_bytes: int
    items_written: int
    items_read: int = 0
    response_bytes: int = 0


def _items_written(operation: str, body: dict[str, Any]) -> int:
    if operation in {"PutItem", "UpdateItem", "DeleteItem"}:
        return 1
    if operation == "TransactWriteItems":
        return sum(1 for entry in body.get("TransactItems", []) if "ConditionCheck" not in entry)
    if operation == "BatchWriteItem":
        return sum(len(requests) for requests in body.get("RequestItems", {}).values())
    return 0


def _items_read(parsed: dict[str, Any]) -> int:
    """Items DynamoDB read to answer (a query's ScannedCount counts what a filter dropped)."""
    if "ScannedCount" in parsed:
        return int(parsed["ScannedCount"])
    if "Item" in parsed:
        return 1
    responses = parsed.get("Responses")
    if isinstance(responses, dict):  # BatchGetItem
        return sum(len(items) for items in responses.values())
    if isinstance(responses, list):  # TransactGetItems
        return sum(1 for response in responses if response.get("Item"))
    return 0


@dataclass
class Meter:
    """Every DynamoDB request of the clients it watches, from botocore's own events (one per HTTP request)."""

    calls: list[Call] = field(default_factory=list)

    def watch(self, client: Any) -> Any:
        events = client.meta.events
        events.register("request-created.dynamodb", self._on_request, unique_id=f"bench-meter-req-{id(self)}")
        events.register("after-call.dynamodb", self._on_response, unique_id=f"bench-meter-resp-{id(self)}")
        return client

    def _on_request(self, request: Any, operation_name: str, **_: Any) -> None:
        raw = request.body or b""
        raw = raw.encode() if isinstance(raw, str) else bytes(raw)
        body = json.loads(raw) if raw else {}
        self.calls.append(Call(operation_name, len(raw), _items_written(operation_name, body)))

    def _on_response(self, http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        for call in reversed(self.calls):
            if call.operation == model.name:
                call.items_read = _items_read(parsed)
                call.response_bytes = len(getattr(http_response, "content", b"") or b"")
                break

    def reset(self) -> None:
        self.calls.clear()

    @contextmanager
    def window(self) -> Iterator[list[Call]]:
        """The calls made inside the block."""
        start = len(self.calls)
        window: list[Call] = []
        try:
            yield window
        finally:
            window.extend(self.calls[start:])


@dataclass(frozen=True)
class Work:
    """The DynamoDB work of one request (or one run)."""

    requests: int
    operations: str
    items_read: int
    items_written: int
    bytes_written: int
    scans: int

    @classmethod
    def of(cls, calls: list[Call]) -> Work:
        counts = Counter(call.operation for call in calls)
        return cls(
            requests=len(calls),
            operations=", ".join(f"{name} ×{n}" if n > 1 else name for name, n in counts.items()) or "—",
            items_read=sum(call.items_read for call in calls),
            items_written=sum(call.items_written for call in calls),
            bytes_written=sum(call.request_bytes for call in calls if call.operation in WRITE_OPERATIONS),
            scans=counts.get("Scan", 0),
        )


@dataclass
class Stack:
    """The template's table and bucket in moto (in-process), the API called in-process, a meter on our clients."""

    api: support.Api
    meter: Meter
    table: Any
    s3: Any
    dynamodb: Any

    def watch_ours(self) -> None:
        from sessions_api.dal import clients

        self.meter.watch(clients.dynamodb())
        self.meter.watch(clients.dynamodb_wire())


@contextmanager
def moto_stack() -> Iterator[Stack]:
    import boto3
    from moto import mock_aws

    configure_process()
    from sessions_api.dal import clients

    with mock_aws():
        clients.reset()
        dynamodb, s3 = boto3.client("dynamodb"), boto3.client("s3")
        template.create_aws_resources(support.stack(), dynamodb, s3)
        stack = Stack(support.Api(), Meter(), boto3.resource("dynamodb").Table(table_name()), s3, dynamodb)
        stack.watch_ours()
        try:
            yield stack
        finally:
            clients.reset()


_SINK: Any = None


@contextmanager
def quiet() -> Iterator[None]:
    """Powertools prints a metrics line per invocation to stdout: keep it out of the report. The sink stays
    open: a Powertools logger created inside keeps writing to the stream it found."""
    import contextlib

    global _SINK
    if _SINK is None:
        _SINK = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    with contextlib.redirect_stdout(_SINK):
        yield


# --- numbers -----------------------------------------------------------------------------------------
def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}×" if base else "—"


def kib(n: int) -> str:
    return f"{n / 1024:,.1f} KiB"


# --- seeding (straight into the table, through a client the meter does not watch) --------------------
def seed_messages(table: Any, session_id: str, count: int, *, content: str = "seeded message", start: int = 0) -> None:
    """`count` message items in the session's partition, and the session's counters to match."""
    from sessions_api import timeutil
    from sessions_api.dal import items, keys

    at = timeutil.now_iso()
    with table.batch_writer() as batch:
        for number in range(start, start + count):
            role = "user" if number % 2 == 0 else "assistant"
            batch.put_item(Item=items.new_message(session_id, role=role, content=f"{content} {number}", at=at))
    table.update_item(
        Key=keys.session_key(session_id),
        UpdateExpression="ADD message_count :n",
        ExpressionAttributeValues={":n": count},
    )
