"""Your data through the local gateway: DELETE /me answers at once, the erasure worker (started by the
table's stream, as its event-source mapping says) purges, and the receipt says what went."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.e2e.conftest import ApiClient, RunningGateway


def wait_for(api: ApiClient, path: str, done: str, seconds: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = api.get(path)
        assert found.status_code == 200, found.text
        if found.json()["status"] == done:
            return found.json()
        time.sleep(0.2)
    raise AssertionError(f"{path} never became {done}")


def test_erase_everything_end_to_end(gateway: RunningGateway) -> None:
    user = f"erased-{uuid.uuid4().hex[:8]}"
    api, friend = gateway.as_user(user), gateway.as_user(f"friend-{uuid.uuid4().hex[:8]}")
    sid = api.post("/api/v1/sessions", json={"title": "to go"}).json()["session_id"]
    assert (
        api.post(f"/api/v1/sessions/{sid}/messages", json={"role": "user", "content": "€" * 100_000}).status_code == 201
    )
    assert (
        api.post(
            f"/api/v1/sessions/{sid}/share", json={"recipients": [friend.headers["X-Dev-User"]], "permissions": "view"}
        ).status_code
        == 201
    )
    kept = friend.post("/api/v1/sessions", json={"title": "kept"}).json()["session_id"]

    asked = api.delete("/api/v1/me")
    assert asked.status_code == 202, asked.text
    # Gone at once, for the owner and for the friend it was shared with
    assert api.get(f"/api/v1/sessions/{sid}").status_code == 404
    assert friend.get(f"/api/v1/sessions/{sid}").status_code == 404
    receipt = wait_for(api, asked.headers["Location"], "completed")
    assert receipt["sessions"] == 1 and receipt["objects_deleted"] == 1 and receipt["items_deleted"] >= 3
    assert api.get("/api/v1/sessions").json()["total"] == 0
    assert friend.get(f"/api/v1/sessions/{kept}").status_code == 200
