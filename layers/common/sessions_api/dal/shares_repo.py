"""Share items: one per recipient in the session's partition, indexed on GSI2 under the recipient."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sessions_api.dal import keys, table
from sessions_api.dal.partition import page as partition_page
from sessions_api.dal.sessions_repo import Page

BATCH_GET_KEYS = 100  # BatchGetItem's limit per request


@dataclass
class Stream:
    """A page of one recipient's GSI2 entries, newest share first; `more` when the index holds older ones."""

    items: list[dict[str, Any]]
    more: bool


class SharesRepo:
    def grants(self, session_id: str, *, limit: int, start_key: dict[str, Any] | None) -> Page:
        return partition_page(session_id, keys.SHARE_PREFIX, limit=limit, start_key=start_key)

    def of_share(self, session_id: str, share_id: str) -> list[dict[str, Any]]:
        """Every recipient item of one share (≤ 50), read strongly from the session's partition."""
        return table.query_all(
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            FilterExpression="share_id = :share_id",
            ExpressionAttributeValues={
                ":pk": keys.session_pk(session_id),
                ":prefix": keys.SHARE_PREFIX,
                ":share_id": share_id,
            },
            ConsistentRead=True,
        )

    @staticmethod
    def delete(item: dict[str, Any]) -> dict[str, Any]:
        """A transaction operation removing one recipient's share item."""
        return {"Delete": {"Key": {"PK": item["PK"], "SK": item["SK"]}}}

    def shared_with(self, recipient: str, *, limit: int, before: str | None) -> Stream:
        """The recipient's share entries on GSI2, newest first, older than `before` (a GSI2SK) if given.

        The index is eventually consistent: callers confirm each entry against the share item itself.
        """
        condition = "GSI2PK = :pk" + (" AND GSI2SK < :before" if before else "")
        values: dict[str, Any] = {":pk": keys.shared_gsi2pk(recipient)}
        if before:
            values[":before"] = before
        response = table.query(
            IndexName="GSI2",
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ScanIndexForward=False,
            Limit=limit,
        )
        return Stream(items=response["Items"], more="LastEvaluatedKey" in response)

    def get_many(self, wanted: list[dict[str, str]]) -> list[dict[str, Any]]:
        """Strongly consistent reads of any number of keys, 100 per request."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(wanted), BATCH_GET_KEYS):
            found += table.batch_get(wanted[start : start + BATCH_GET_KEYS])
        return found
