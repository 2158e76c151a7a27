"""What the scheduled function reads and deletes: due sessions (GSI3), a session's partition, its S3 prefix.

Nothing here scans: due sessions come from the sparse GSI3 (`DUE#<shard>`, due epoch seconds), a
session's items from its own partition, its objects from its own prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from sessions_api.dal import clients, keys, table
from sessions_api.settings import get_settings

BATCH_WRITE_MAX = 25
S3_DELETE_MAX = 1000


@dataclass
class DuePage:
    items: list[dict[str, Any]]
    next_key: dict[str, Any] | None


class PurgeRepo:
    def due(self, shard: int, now_epoch: int, *, limit: int, start_key: dict[str, Any] | None) -> DuePage:
        """Sessions of one shard due at or before `now_epoch`, oldest first (the index's projection only)."""
        request: dict[str, Any] = {
            "IndexName": "GSI3",
            "KeyConditionExpression": "GSI3PK = :pk AND GSI3SK <= :now",
            "ExpressionAttributeValues": {":pk": keys.due_gsi3pk(shard), ":now": now_epoch},
            "Limit": limit,
        }
        if start_key:
            request["ExclusiveStartKey"] = start_key
        response = table.query(**request)
        items = [{**item, "session_id": item["PK"].removeprefix(keys.session_pk(""))} for item in response["Items"]]
        return DuePage(items=items, next_key=response.get("LastEvaluatedKey"))

    def child_keys(self, session_id: str, *, limit: int) -> list[dict[str, str]]:
        """Keys of the session's items other than the session itself, whatever their kind (strongly
        consistent, so after a batch of deletes the next call starts with what is left)."""
        response = table.query(
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": keys.session_pk(session_id)},
            ProjectionExpression="PK, SK",
            ConsistentRead=True,
            Limit=limit + 1,  # the session's own item sorts first (`#SESSION`) and stays until the end
        )
        found = [{"PK": item["PK"], "SK": item["SK"]} for item in response["Items"] if item["SK"] != keys.SESSION_SK]
        # A create's idempotency record lives outside the partition; its pointer here names it.
        pointed = [record for item in found if (record := keys.pointed_idempotency_record(item["SK"]))]
        return found + pointed

    def delete_items(self, item_keys: list[dict[str, str]]) -> None:
        """Delete ≤ 25 items in one BatchWriteItem, retrying what DynamoDB leaves unprocessed."""
        assert len(item_keys) <= BATCH_WRITE_MAX
        table.batch_write([{"DeleteRequest": {"Key": key}} for key in item_keys])

    def delete_session_item(self, session_id: str) -> bool:
        """Remove a tombstoned session's own item, last; False if it is not (or no longer) a tombstone."""
        try:
            clients.dynamodb().delete_item(
                TableName=table.table_name(),
                Key=keys.session_key(session_id),
                ConditionExpression="attribute_exists(deleted_at)",
            )
        except ClientError as exc:
            if clients.error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def object_versions(self, prefix: str) -> list[dict[str, str]]:
        """Up to 1000 object versions (and delete markers) under `prefix`: the bucket is versioned, so a
        purge removes every version, not just the current one."""
        response = clients.s3().list_object_versions(
            Bucket=get_settings().bucket_name, Prefix=prefix, MaxKeys=S3_DELETE_MAX
        )
        found = [*response.get("Versions", []), *response.get("DeleteMarkers", [])]
        return [{"Key": entry["Key"], "VersionId": entry["VersionId"]} for entry in found][:S3_DELETE_MAX]

    def delete_objects(self, versions: list[dict[str, str]]) -> None:
        response = clients.s3().delete_objects(
            Bucket=get_settings().bucket_name, Delete={"Objects": versions, "Quiet": True}
        )
        if response.get("Errors"):
            first = response["Errors"][0]
            raise clients.RetryableError(f"S3 did not delete {first.get('Key')}: {first.get('Code')}")
