"""A zip archive written straight into an S3 multipart upload, so its size never has to fit in memory.

`zipfile` writes to a stream it cannot seek (each member then carries a data descriptor after its data);
the stream keeps what it is given until it holds a part, uploads the part and forgets it. Memory holds at
most one part and the member being written, whatever the archive's size.
"""

from __future__ import annotations

import contextlib
import zipfile
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from botocore.exceptions import BotoCoreError, ClientError

from sessions_api.dal import clients
from sessions_api.settings import get_settings

# S3 refuses parts under 5 MiB (all but the last); 8 MiB parts allow archives of 80 GB (10,000 parts).
PART_SIZE = 8 * 1024 * 1024
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10_000
_MEMBER_CHUNK = 1024 * 1024  # a member is compressed and handed on a slice at a time
_ZIP64_AT = 1 << 31  # zipfile must know before a member's data whether its sizes need Zip64 fields


class ArchiveTooLarge(Exception):
    """The archive would need more parts than S3 allows in one upload."""


@dataclass(frozen=True)
class Uploaded:
    key: str
    size_bytes: int
    parts: int
    version_id: str | None


class _PartStream:
    """The file-like object zipfile writes to: bytes in, parts of `part_size` out to the upload."""

    def __init__(self, key: str, upload_id: str, part_size: int) -> None:
        self.key, self.upload_id, self.part_size = key, upload_id, part_size
        self.buffer = bytearray()
        self.parts: list[dict[str, Any]] = []
        self.written = 0
        self.discarded = False

    def write(self, data: bytes) -> int:
        if self.discarded:  # aborted: what zipfile still writes (closing) goes nowhere
            return len(data)
        self.buffer += data
        self.written += len(data)
        while len(self.buffer) >= self.part_size:
            self._upload(bytes(self.buffer[: self.part_size]))
            del self.buffer[: self.part_size]
        return len(data)

    def tell(self) -> int:
        return self.written

    def seek(self, *_: Any) -> int:
        raise OSError("an upload is written once, front to back")

    def flush(self) -> None:
        """zipfile flushes after every member: a part is uploaded only once it is full."""

    def close_parts(self) -> None:
        if self.buffer or not self.parts:  # the last part may be small; an upload needs at least one
            self._upload(bytes(self.buffer))
            self.buffer.clear()

    def _upload(self, body: bytes) -> None:
        number = len(self.parts) + 1
        if number > MAX_PARTS:
            raise ArchiveTooLarge(f"{self.key} would need more than {MAX_PARTS} parts")
        try:
            response = clients.s3().upload_part(
                Bucket=get_settings().bucket_name, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=body
            )
        except (BotoCoreError, ClientError) as exc:
            raise clients.RetryableError(f"S3 refused part {number} of {self.key}") from exc
        self.parts.append({"PartNumber": number, "ETag": response["ETag"]})


class ZipUpload:
    """One zip archive under `key`, tagged (the bucket's lifecycle rules go by tags), written member by member.

    `start` creates the multipart upload (its id is `upload_id`, to record where a crash can find it); `add`
    writes a member; `finish` writes the zip's directory and completes the upload; `abort` drops every part.
    """

    def __init__(self, key: str, upload_id: str, part_size: int) -> None:
        self.key, self.upload_id = key, upload_id
        self._stream = _PartStream(key, upload_id, part_size)
        self._zip = zipfile.ZipFile(self._stream, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6)  # type: ignore[call-overload]

    @classmethod
    def start(
        cls,
        key: str,
        *,
        tags: dict[str, str],
        content_type: str,
        content_disposition: str,
        part_size: int = PART_SIZE,
    ) -> ZipUpload:
        try:
            response = clients.s3().create_multipart_upload(
                Bucket=get_settings().bucket_name,
                Key=key,
                ContentType=content_type,
                ContentDisposition=content_disposition,
                Tagging="&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in tags.items()),
            )
        except (BotoCoreError, ClientError) as exc:
            raise clients.RetryableError(f"S3 refused to start {key}") from exc
        return cls(key, response["UploadId"], part_size)

    @property
    def size_bytes(self) -> int:
        """Bytes written so far (uploaded, or waiting in the part being filled)."""
        return self._stream.written

    def add(self, name: str, data: bytes, modified: datetime) -> None:
        info = zipfile.ZipInfo(name, date_time=modified.timetuple()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        info.file_size = len(data)
        view = memoryview(data)
        with self._zip.open(info, "w", force_zip64=len(data) >= _ZIP64_AT) as member:
            for start in range(0, len(data), _MEMBER_CHUNK):
                member.write(view[start : start + _MEMBER_CHUNK])

    def finish(self) -> Uploaded:
        self._zip.close()
        self._stream.close_parts()
        try:
            response = clients.s3().complete_multipart_upload(
                Bucket=get_settings().bucket_name,
                Key=self.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": self._stream.parts},
            )
        except (BotoCoreError, ClientError) as exc:
            raise clients.RetryableError(f"S3 refused to complete {self.key}") from exc
        return Uploaded(self.key, self._stream.written, len(self._stream.parts), response.get("VersionId"))

    def abort(self) -> None:
        self._stream.discarded = True
        self._stream.buffer.clear()
        with contextlib.suppress(ValueError):  # a member left open by the failure that led here
            self._zip.close()
        abort_upload(self.key, self.upload_id)


def abort_upload(key: str, upload_id: str) -> None:
    """Drop an unfinished upload's parts (the bucket's lifecycle rule would, a day later); gone already is fine."""
    try:
        clients.s3().abort_multipart_upload(Bucket=get_settings().bucket_name, Key=key, UploadId=upload_id)
    except ClientError as exc:
        if clients.error_code(exc) not in {"NoSuchUpload", "404"}:
            raise clients.RetryableError(f"S3 did not abort the upload of {key}") from exc
    except BotoCoreError as exc:
        raise clients.RetryableError(f"S3 did not abort the upload of {key}") from exc


def delete_version(key: str, version_id: str | None) -> None:
    """Remove one archive written by a job that may no longer have it: its version itself where the bucket
    keeps versions, so no older copy outlives it."""
    params: dict[str, Any] = {"Bucket": get_settings().bucket_name, "Key": key}
    if version_id:
        params["VersionId"] = version_id
    try:
        clients.s3().delete_object(**params)
    except (BotoCoreError, ClientError) as exc:
        raise clients.RetryableError(f"S3 did not delete {key}") from exc
