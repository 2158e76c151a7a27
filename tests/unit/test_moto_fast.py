"""The local stack's cheaper transaction rollback answers exactly like moto's own, on the moto it was written for."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import boto3
import moto
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb import models

from local import moto_fast

REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements-dev.txt"


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.setattr(models, "copy", models.copy)
    monkeypatch.setattr(models.DynamoDBBackend, "transact_write_items", models.DynamoDBBackend.transact_write_items)
    moto_fast.install()
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="t",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "PK", "AttributeType": "S"},
                {"AttributeName": "SK", "AttributeType": "S"},
            ],
        )
        dynamodb.put_item(TableName="t", Item={"PK": {"S": "a"}, "SK": {"S": "1"}, "n": {"N": "1"}})
        yield dynamodb


def test_a_cancelled_transaction_leaves_every_item_as_it_was(client: object) -> None:
    # Given a transaction whose first two writes apply before its last condition fails
    with pytest.raises(ClientError, match="TransactionCanceled"):
        client.transact_write_items(  # type: ignore[attr-defined]
            TransactItems=[
                {
                    "Update": {
                        "TableName": "t",
                        "Key": {"PK": {"S": "a"}, "SK": {"S": "1"}},
                        "UpdateExpression": "SET n = :two",
                        "ExpressionAttributeValues": {":two": {"N": "2"}},
                    }
                },
                {"Put": {"TableName": "t", "Item": {"PK": {"S": "b"}, "SK": {"S": "1"}}}},
                {
                    "ConditionCheck": {
                        "TableName": "t",
                        "Key": {"PK": {"S": "c"}, "SK": {"S": "1"}},
                        "ConditionExpression": "attribute_exists(PK)",
                    }
                },
            ]
        )
    # Then the updated item is back and the new one is gone
    items = client.scan(TableName="t")["Items"]  # type: ignore[attr-defined]
    assert items == [{"PK": {"S": "a"}, "SK": {"S": "1"}, "n": {"N": "1"}}]


def test_a_successful_transaction_applies(client: object) -> None:
    client.transact_write_items(  # type: ignore[attr-defined]
        TransactItems=[{"Put": {"TableName": "t", "Item": {"PK": {"S": "b"}, "SK": {"S": "1"}}}}]
    )
    assert len(client.scan(TableName="t")["Items"]) == 2  # type: ignore[attr-defined]


def test_a_moto_it_was_not_written_for_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a moto other than the tested one
    monkeypatch.setattr(moto, "__version__", "5.9.0")
    unpatched = models.DynamoDBBackend.transact_write_items

    # Then installing names both versions and what to do, and leaves moto as it is
    with pytest.raises(moto_fast.UntestedMotoVersion) as refused:
        moto_fast.install()
    message = str(refused.value)
    assert "5.9.0" in message
    assert all(version in message for version in moto_fast.TESTED_MOTO_VERSIONS)
    assert "TESTED_MOTO_VERSIONS" in message
    assert models.DynamoDBBackend.transact_write_items is unpatched


def test_the_pinned_moto_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the moto requirements-dev.txt pins
    pinned = re.search(r"^moto\[server\]==(\S+)$", REQUIREMENTS.read_text(), re.MULTILINE)
    assert pinned, "requirements-dev.txt no longer pins moto"
    monkeypatch.setattr(moto, "__version__", pinned[1])
    monkeypatch.setattr(models, "copy", models.copy)
    monkeypatch.setattr(models.DynamoDBBackend, "transact_write_items", models.DynamoDBBackend.transact_write_items)

    # Then the shortcut installs
    moto_fast.install()
    assert models.DynamoDBBackend.transact_write_items is moto_fast._transact_write_items
