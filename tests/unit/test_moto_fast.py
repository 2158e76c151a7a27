"""The local stack's cheaper transaction rollback answers exactly like moto's own."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb import models

from local import moto_fast


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
