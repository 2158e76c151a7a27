"""The streaming zip writer: an archive written straight into an S3 multipart upload, a part at a time."""

from __future__ import annotations

import io
import os
import random
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import moto.s3.models
import pytest

from sessions_api.dal import archive, clients

PART = 64 * 1024
MOMENT = datetime(2025, 1, 2, 3, 4, 6, tzinfo=UTC)  # zip times count in 2 s steps


def bucket() -> str:
    return os.environ["BUCKET_NAME"]


@pytest.fixture
def parts(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The size of each part uploaded, in order (S3's 5 MiB minimum lowered to the test's part size)."""
    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", PART)
    sizes: list[int] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sizes.append(len(params["Body"]))

    clients.s3().meta.events.register("provide-client-params.s3.UploadPart", record)
    yield sizes


def noise(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)  # incompressible: the archive is as large as its members


def stored(key: str) -> bytes:
    return boto3.client("s3").get_object(Bucket=bucket(), Key=key)["Body"].read()


def test_members_stream_out_in_parts_and_read_back_whole(parts: list[int]) -> None:
    # Given an upload with 64 KiB parts
    upload = archive.ZipUpload.start(
        "users/u/takeout/a.zip",
        tags={"kind": "export"},
        content_type="application/zip",
        content_disposition="attachment",
        part_size=PART,
    )
    members = {f"sessions/s{n}.json": noise(50_000 + n * 20_000, n) for n in range(6)}
    for name, data in members.items():
        # When each member is added
        upload.add(name, data, MOMENT)
        # Then no more than one part's worth waits in memory: the rest is uploaded already
        assert upload.size_bytes - sum(parts) < PART
    uploaded = upload.finish()
    # And every part but the last is exactly a part; the object is the parts, and a valid zip
    assert parts[:-1] == [PART] * (len(parts) - 1) and 0 < parts[-1] <= PART
    assert uploaded.parts == len(parts) > 5 and uploaded.size_bytes == sum(parts)
    body = stored("users/u/takeout/a.zip")
    assert len(body) == uploaded.size_bytes
    with zipfile.ZipFile(io.BytesIO(body)) as read:
        assert read.testzip() is None
        assert read.namelist() == list(members)
        assert {name: read.read(name) for name in members} == members
        assert read.getinfo("sessions/s0.json").date_time == (2025, 1, 2, 3, 4, 6)
    tags = boto3.client("s3").get_object_tagging(Bucket=bucket(), Key="users/u/takeout/a.zip")["TagSet"]
    assert tags == [{"Key": "kind", "Value": "export"}]


def test_an_archive_smaller_than_a_part_is_one_part(parts: list[int]) -> None:
    upload = archive.ZipUpload.start("k.zip", tags={}, content_type="application/zip", content_disposition="x")
    upload.add("index.json", b"{}", MOMENT)
    upload.finish()
    assert len(parts) == 1
    with zipfile.ZipFile(io.BytesIO(stored("k.zip"))) as read:
        assert read.read("index.json") == b"{}"


def test_an_empty_archive_is_a_valid_zip(parts: list[int]) -> None:
    archive.ZipUpload.start("e.zip", tags={}, content_type="application/zip", content_disposition="x").finish()
    assert zipfile.ZipFile(io.BytesIO(stored("e.zip"))).namelist() == []


def test_members_that_need_zip64_fields_get_them(parts: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive, "_ZIP64_AT", 1000)
    upload = archive.ZipUpload.start("z.zip", tags={}, content_type="application/zip", content_disposition="x")
    upload.add("big.bin", noise(5000, 1), MOMENT)
    upload.add("small.txt", b"hi", MOMENT)
    upload.finish()
    with zipfile.ZipFile(io.BytesIO(stored("z.zip"))) as read:
        assert read.read("big.bin") == noise(5000, 1) and read.read("small.txt") == b"hi"


def test_an_aborted_upload_leaves_nothing(parts: list[int]) -> None:
    upload = archive.ZipUpload.start(
        "a.zip", tags={}, content_type="application/zip", content_disposition="x", part_size=PART
    )
    upload.add("one.bin", noise(3 * PART, 2), MOMENT)
    assert len(parts) >= 2
    upload.abort()
    s3 = boto3.client("s3")
    assert s3.list_multipart_uploads(Bucket=bucket()).get("Uploads", []) == []
    assert s3.list_object_versions(Bucket=bucket()).get("Versions", []) == []
    archive.abort_upload("a.zip", upload.upload_id)  # twice is fine


def test_an_archive_over_the_part_limit_is_refused(parts: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive, "MAX_PARTS", 2)
    upload = archive.ZipUpload.start(
        "l.zip", tags={}, content_type="application/zip", content_disposition="x", part_size=PART
    )
    with pytest.raises(archive.ArchiveTooLarge):
        upload.add("one.bin", noise(3 * PART + 10, 3), MOMENT)
    upload.abort()


def test_the_production_part_size_is_one_s3_takes() -> None:
    assert archive.MIN_PART_SIZE == 5 * 1024 * 1024 <= archive.PART_SIZE
    assert archive.PART_SIZE * archive.MAX_PARTS >= 50 * 1024**3
