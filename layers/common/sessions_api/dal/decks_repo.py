"""The slide deck: one item per session (`DECK`), its body in S3 when too large for an item."""

from __future__ import annotations

from typing import Any

from sessions_api.dal import keys, objects, table


class DecksRepo:
    def get(self, session_id: str) -> dict[str, Any] | None:
        return table.get(keys.deck_key(session_id))

    def put_payload(self, key: str, body: bytes) -> None:
        objects.put(key, body, content_type="application/json")

    def get_payload(self, key: str) -> bytes:
        return objects.get(key)

    def delete_payload(self, key: str) -> None:
        objects.delete_quietly(key)
