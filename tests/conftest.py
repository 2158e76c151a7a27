"""Shared fixtures: a moto AWS built from template.yaml, and the API called in-process."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local import template
from tests import support

os.environ.update(
    {
        **support.function_environment(),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": template.REGION,
        "AWS_REGION": template.REGION,
        "POWERTOOLS_DEV": "false",
        # Tests never reach a real model: chats answer with the local echo (the e2e gateway is started
        # with ModelProvider=local, like `make dev`); the Bedrock provider is tested with botocore's Stubber.
        "MODEL_PROVIDER": "local",
        # Streamed replies come in chunks 5 ms apart: slow enough that a cancel lands mid-reply, fast for a suite.
        "LOCAL_STREAM_DELAY_MS": "5",
        # Tests seed big sessions through the API faster than any user may write; the rate limit's own tests
        # (tests/integration/test_rate_limits.py) run with the template's default.
        "USER_WRITES_PER_SECOND": "1000000",
        "SESSION_WRITES_PER_SECOND": "1000000",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(autouse=True, scope="session")
def moto_as_the_local_stack_runs_it() -> Iterator[None]:
    """In-process moto as the local stack's server runs it (local/aws.py): one request at a time, and a failed
    transaction restoring only its own items (local/moto_fast.py). The chat worker runs on threads of its own;
    moto's backends do not lock, and its own rollback would also rewind the table's stream."""
    from moto.core.botocore_stubber import BotocoreStubber

    from local import moto_fast

    lock = threading.RLock()
    original = BotocoreStubber.process_request

    def serialized(self: Any, request: Any) -> Any:
        with lock:
            return original(self, request)

    BotocoreStubber.process_request = serialized  # type: ignore[method-assign]
    with moto_fast.installed():
        yield
    BotocoreStubber.process_request = original  # type: ignore[method-assign]


@pytest.fixture(autouse=True, scope="session")
def workers_run_with_their_roles() -> None:
    """Every function's S3 and DynamoDB calls held to its role in template.yaml (local/iam.py)."""
    support.entry_points_in_their_roles()


@pytest.fixture
def aws() -> Iterator[None]:
    """A fresh moto account with the template's table and bucket; cached clients rebound inside it."""
    from sessions_api.dal import clients

    with mock_aws():
        clients.reset()
        template.create_aws_resources(support.stack(), boto3.client("dynamodb"), boto3.client("s3"))
        worker = support.start_chat_worker()
        try:
            yield
        finally:
            worker.stop()
            clients.reset()


@pytest.fixture
def no_chat_worker(aws: None) -> None:
    """The stream's runs are left for the test to hand to the worker itself (fault injection)."""
    support.stop_chat_workers()


@pytest.fixture
def api(aws: None) -> support.Api:
    return support.Api()


@pytest.fixture
def table(aws: None) -> Any:
    return boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


@pytest.fixture
def ddb_calls(aws: None) -> Iterator[list[str]]:
    """The DynamoDB operations the test's own thread made, in order (one entry per API call, retries not counted
    twice): the chat worker's, on the stream poller's threads, are counted by the tests that measure it."""
    from sessions_api.dal import clients

    calls: list[str] = []
    mine = threading.current_thread()

    def record(model: Any, **_: Any) -> None:
        if threading.current_thread() is mine:
            calls.append(model.name)

    for client in (clients.dynamodb(), clients.dynamodb_wire()):
        client.meta.events.register("before-call.dynamodb", record)
    yield calls


def all_items(table: Any) -> list[dict[str, Any]]:
    items, kwargs = [], {}
    while True:
        page = table.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
