"""Export records (`EXPORT#<exp_id>`) and their files in S3."""

from __future__ import annotations

from typing import Any

from sessions_api.dal import keys, objects, table
from sessions_api.dal.partition import page as partition_page
from sessions_api.dal.sessions_repo import Page


class ExportsRepo:
    def get(self, session_id: str, export_id: str) -> dict[str, Any] | None:
        return table.get(keys.export_key(session_id, export_id))

    def page(self, session_id: str, *, limit: int, start_key: dict[str, Any] | None) -> Page:
        """Newest first (export ids are time-ordered)."""
        return partition_page(session_id, keys.EXPORT_PREFIX, limit=limit, start_key=start_key, ascending=False)

    def store_file(self, key: str, body: bytes, *, content_type: str, content_disposition: str) -> None:
        # The tag lets the bucket's lifecycle rule expire exports; nothing else under the prefix carries it.
        objects.put(
            key, body, content_type=content_type, content_disposition=content_disposition, tags={"kind": "export"}
        )

    def delete_file(self, key: str) -> None:
        objects.delete_quietly(key)

    def download_url(self, key: str, *, expires_in: int, content_disposition: str, content_type: str) -> str:
        return objects.presigned_get(
            key, expires_in=expires_in, content_disposition=content_disposition, content_type=content_type
        )
