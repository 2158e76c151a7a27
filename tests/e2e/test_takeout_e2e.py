"""Export everything through the local gateway: POST /me/export answers at once, the takeout worker (started by
the table's stream, as its event-source mapping says) streams the zip to S3, and the job's link downloads it."""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from tests.e2e.conftest import RunningGateway


def test_export_everything_end_to_end(gateway: RunningGateway) -> None:
    api = gateway.as_user(f"takeout-{uuid.uuid4().hex[:8]}")
    sid = api.post("/api/v1/sessions", json={"title": "Café plan"}).json()["session_id"]
    large = "€" * 100_000  # over the item limit: its content lives in S3
    for content in ("hello", large):
        assert (
            api.post(f"/api/v1/sessions/{sid}/messages", json={"role": "user", "content": content}).status_code == 201
        )

    asked = api.post("/api/v1/me/export")
    assert asked.status_code == 202, asked.text
    assert api.post("/api/v1/me/export").status_code == 409  # one at a time
    job = wait_for_completed(api, asked.headers["Location"])
    assert job["sessions"] == job["sessions_done"] == 1
    assert job["download_url"].startswith(gateway.moto_url + "/")

    download = requests.get(job["download_url"], timeout=30)  # a plain client: the link is the credential
    assert download.status_code == 200 and len(download.content) == job["size_bytes"]
    archive = zipfile.ZipFile(io.BytesIO(download.content))
    assert sorted(archive.namelist()) == ["index.json", "index.md", f"sessions/{sid}.json", f"sessions/{sid}.md"]
    document = json.loads(archive.read(f"sessions/{sid}.json"))
    assert [message["content"] for message in document["messages"]] == ["hello", large]
    assert large in archive.read(f"sessions/{sid}.md").decode()


def wait_for_completed(api: Any, path: str, seconds: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = api.get(path)
        assert found.status_code == 200, found.text
        if found.json()["status"] not in ("queued", "running"):
            assert found.json()["status"] == "completed", found.json()
            return found.json()
        time.sleep(0.2)
    raise AssertionError(f"{path} never completed")
