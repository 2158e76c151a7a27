"""Shared fixtures: a moto AWS built from template.yaml, and the API called in-process."""

from __future__ import annotations

import os
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
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture
def aws() -> Iterator[None]:
    """A fresh moto account with the template's table and bucket; cached clients rebound inside it."""
    from sessions_api.dal import clients

    with mock_aws():
        clients.reset()
        template.create_aws_resources(support.stack(), boto3.client("dynamodb"), boto3.client("s3"))
        yield
        clients.reset()


@pytest.fixture
def api(aws: None) -> support.Api:
    return support.Api()


@pytest.fixture
def table(aws: None) -> Any:
    return boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


@pytest.fixture
def ddb_calls(aws: None) -> Iterator[list[str]]:
    """The DynamoDB operations made, in order (one entry per API call, retries not counted twice)."""
    from sessions_api.dal import clients

    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
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
