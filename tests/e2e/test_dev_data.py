"""`make dev` keeps its data across a restart (`--data-dir`, `.local/data`), and `make dev-reset` forgets it."""

from __future__ import annotations

import shutil
from pathlib import Path

import requests

from tests.e2e.conftest import GatewayStarter

BUILT_TEMPLATE = Path(__file__).resolve().parents[2] / ".local" / "build" / "template.yaml"
API = "/api/v1"


def test_a_restart_keeps_sessions_messages_decks_and_exported_files(
    start_gateway: GatewayStarter, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    arguments = ["--data-dir", str(data)]
    # Given a session with a message, a deck and an exported file, when the gateway stops
    with start_gateway(BUILT_TEMPLATE, {"ModelProvider": "local"}, arguments) as first, first.as_user("alice") as api:
        session_id = api.post(f"{API}/sessions", json={"title": "Kept", "prompt": "héllo 字"}).json()["session_id"]
        session = f"{API}/sessions/{session_id}"
        assert api.put(f"{session}/slides", json={"slides": [{"slide_id": "a", "html": "<h1>A</h1>"}]}).ok
        export = api.post(f"{session}/export", json={"format": "markdown"}).json()
        exported = requests.get(export["download_url"], timeout=10).content
    assert (data / "items.jsonl").is_file() and not (tmp_path / "data.saving").exists()
    # Then the next start serves all of it, the file included
    with start_gateway(BUILT_TEMPLATE, {"ModelProvider": "local"}, arguments) as second, second.as_user("alice") as api:
        assert api.get(session).json()["title"] == "Kept"
        assert [m["content"] for m in api.get(f"{session}/messages").json()["messages"]] == ["héllo 字"]
        assert api.get(f"{session}/slides").json()["slide_deck"]["slides"][0]["slide_id"] == "a"
        again = api.get(f"{session}/exports/{export['export_id']}").json()
        assert requests.get(again["download_url"], timeout=10).content == exported
        assert api.get(f"{API}/sessions", params={"limit": 10}).json()["total"] == 1
    # And with the data directory gone (make dev-reset), a start is empty
    shutil.rmtree(data)
    with start_gateway(BUILT_TEMPLATE, {"ModelProvider": "local"}, arguments) as third, third.as_user("alice") as api:
        assert api.get(session).status_code == 404
