"""A session's results: one item (`RESULTS`) holding the document as JSON text, or its S3 key when large.

JSON text rather than a map keeps any document exactly (DynamoDB maps refuse floats, empty keys and
nesting deeper than 32 levels).
"""

from __future__ import annotations

from typing import Any

from sessions_api.dal import keys, objects, table

# Well below DynamoDB's 400 KB item limit, leaving room for the item's other attributes.
INLINE_LIMIT_BYTES = 300 * 1024


class ResultsRepo:
    def get(self, session_id: str) -> dict[str, Any] | None:
        return table.get(keys.results_key(session_id))

    def put_payload(self, key: str, body: bytes) -> None:
        objects.put(key, body, content_type="application/json")

    def get_payload(self, key: str) -> bytes:
        return objects.get(key)
