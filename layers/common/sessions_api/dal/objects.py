"""S3 objects of a session (large payloads, exported files), all under the session's prefix.

Storage failures become `clients.RetryableError`, which the HTTP edge answers with 503 + Retry-After.
"""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import quote

from botocore.exceptions import BotoCoreError, ClientError

from sessions_api.dal import clients
from sessions_api.settings import get_settings


class ObjectMissing(Exception):
    """The object is not (or no longer) there."""


def _bucket() -> str:
    return get_settings().bucket_name


def put(
    key: str,
    body: bytes,
    *,
    content_type: str,
    content_disposition: str | None = None,
    tags: dict[str, str] | None = None,
) -> None:
    params: dict[str, Any] = {"Bucket": _bucket(), "Key": key, "Body": body, "ContentType": content_type}
    if content_disposition:
        params["ContentDisposition"] = content_disposition
    if tags:
        params["Tagging"] = "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in tags.items())
    try:
        clients.s3().put_object(**params)
    except (BotoCoreError, ClientError) as exc:
        raise clients.RetryableError(f"S3 refused to store {key}") from exc


def get(key: str) -> bytes:
    try:
        return clients.s3().get_object(Bucket=_bucket(), Key=key)["Body"].read()
    except ClientError as exc:
        if clients.error_code(exc) in {"NoSuchKey", "404"}:
            raise ObjectMissing(key) from exc
        raise clients.RetryableError(f"S3 did not return {key}") from exc
    except BotoCoreError as exc:
        raise clients.RetryableError(f"S3 did not return {key}") from exc


def delete_quietly(key: str) -> None:
    """Best effort: what is left behind is purged with the session's prefix anyway."""
    with contextlib.suppress(BotoCoreError, ClientError):
        clients.s3().delete_object(Bucket=_bucket(), Key=key)


def presigned_get(key: str, *, expires_in: int, content_disposition: str, content_type: str) -> str:
    """A URL that downloads the object for `expires_in` seconds; the response headers survive any proxy."""
    return clients.s3().generate_presigned_url(
        "get_object",
        Params={
            "Bucket": _bucket(),
            "Key": key,
            "ResponseContentDisposition": content_disposition,
            "ResponseContentType": content_type,
        },
        ExpiresIn=expires_in,
    )
