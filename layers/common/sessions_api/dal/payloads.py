"""Message contents, and chat runs' inputs, too large for their item, kept in S3 under the session's prefix.

The object is written before the transaction that stores its item: an object whose transaction
failed is an orphan purged with the session, whereas an item pointing at nothing would be data loss.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sessions_api.dal import keys, objects

# Well below DynamoDB's 400 KB item limit, so a message item with its other attributes always fits,
# and a 25-message batch stays far inside a transaction's 4 MB.
INLINE_LIMIT_BYTES = 64 * 1024
# A run's item is rewritten at every flush of its reply (a few a second): its input stays inline only while
# that costs a few write units. Larger (up to two 100,000-character fields), it could not even fit an item.
RUN_INPUT_INLINE_BYTES = 4 * 1024
_PARALLEL_READS = 8


def needs_s3(content: str) -> bool:
    return len(content.encode("utf-8")) > INLINE_LIMIT_BYTES


def store(owner: str, session_id: str, message_id: str, content: str) -> str:
    """Write the content to S3 and return its key."""
    key = keys.message_payload_s3_key(owner, session_id, message_id)
    body = json.dumps({"message_id": message_id, "content": content}, ensure_ascii=False).encode("utf-8")
    objects.put(key, body, content_type="application/json")
    return key


def load(key: str) -> str:
    content: str = json.loads(objects.get(key))["content"]
    return content


def resolve(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items with every S3-held content read back in place (in parallel: a page may hold several)."""
    pending = [item for item in items if "payload_key" in item and "content" not in item]
    if not pending:
        return items
    if len(pending) == 1:
        contents = [load(pending[0]["payload_key"])]
    else:
        with ThreadPoolExecutor(max_workers=min(_PARALLEL_READS, len(pending))) as pool:
            contents = list(pool.map(load, [item["payload_key"] for item in pending]))
    loaded = {id(item): content for item, content in zip(pending, contents, strict=True)}
    return [{**item, "content": loaded[id(item)]} if id(item) in loaded else item for item in items]


def run_input(
    owner: str, session_id: str, request_id: str, *, message: str, slide_context: dict[str, Any] | None
) -> dict[str, Any]:
    """A run's input as its item holds it: the fields themselves when small, else the key of the S3 object
    they were just written to."""
    fields = {"message": message, "slide_context": slide_context}
    body = json.dumps(fields, ensure_ascii=False).encode("utf-8")
    if len(body) <= RUN_INPUT_INLINE_BYTES:
        return fields
    key = keys.run_input_s3_key(owner, session_id, request_id)
    objects.put(key, body, content_type="application/json")
    return {"input_key": key}


def with_run_input(run: dict[str, Any]) -> dict[str, Any]:
    """The run item with its input read back from S3 when it is kept there."""
    if "input_key" not in run:
        return run
    fields: dict[str, Any] = json.loads(objects.get(run["input_key"]))
    return {**run, **fields}


def discard(keys_: list[str]) -> None:
    """Best effort: remove objects whose message was never stored (an orphan would cost only storage)."""
    for key in keys_:
        objects.delete_quietly(key)
