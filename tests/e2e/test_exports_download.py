"""Exports through the local gateway and its moto server: real HTTP all the way to the downloaded file.

What a user does with the README's lines:

    curl -X PUT -H 'Content-Type: application/json' -d @deck.json http://127.0.0.1:3000/api/v1/sessions/$SID/slides
    curl -L -OJ "http://127.0.0.1:3000/api/v1/sessions/$SID/export?format=pptx"
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import pypdf
import pytest
import requests
from pptx import Presentation

if TYPE_CHECKING:
    from tests.e2e.conftest import ApiClient, RunningGateway

DECK = {
    "slides": [
        {"slide_id": "intro", "html": "<h1>Café — plan €</h1><ul><li>One</li><li>Two</li></ul>"},
        {
            "slide_id": "table",
            "html": "<h1>Numbers</h1><table><tr><th>A</th><th>B</th></tr><tr><td>1</td><td>2</td></tr></table>",
        },
    ],
    "css": "",
    "scripts": [],
}


def filename_of(content_disposition: str) -> str:
    """What a browser saves as: `filename*` (RFC 8187) when present, else `filename`."""
    extended = re.search(r"filename\*=UTF-8''([^;]+)", content_disposition)
    if extended:
        return unquote(extended.group(1))
    match = re.search(r'filename="([^"]+)"', content_disposition)
    assert match, content_disposition
    return match.group(1)


@pytest.fixture
def session_id(api: ApiClient) -> str:
    created = api.post("/api/v1/sessions", json={"title": "Café — plan"})
    assert created.status_code == 201, created.text
    session_id: str = created.json()["session_id"]
    stored = api.put(f"/api/v1/sessions/{session_id}/slides", json=DECK)
    assert stored.status_code == 200, stored.text
    return session_id


def test_the_download_link_serves_the_same_bytes_over_http(
    api: ApiClient, session_id: str, gateway: RunningGateway
) -> None:
    created = api.post(f"/api/v1/sessions/{session_id}/export", json={"format": "pdf"})
    assert created.status_code == 201, created.text
    export = created.json()
    # The presigned URL points at the local moto server, on loopback, and downloads over real HTTP.
    assert export["download_url"].startswith(gateway.moto_url + "/")
    download = requests.get(export["download_url"], timeout=30)  # a plain client: the link is the credential
    assert download.status_code == 200
    assert hashlib.sha256(download.content).hexdigest() == export["sha256"]
    assert len(download.content) == export["size_bytes"]
    assert download.headers["Content-Type"] == "application/pdf"
    assert filename_of(download.headers["Content-Disposition"]) == "Café — plan.pdf"
    pages = pypdf.PdfReader(io.BytesIO(download.content)).pages
    assert len(pages) == 2 and "Café — plan €" in pages[0].extract_text()


def test_get_export_redirects_to_the_file_and_a_client_that_follows_saves_it(api: ApiClient, session_id: str) -> None:
    # What `curl -L -OJ ".../export?format=pptx"` does: follow the 303, name the file from the response.
    response = api.get(f"/api/v1/sessions/{session_id}/export", params={"format": "pptx"}, allow_redirects=True)
    assert response.status_code == 200
    assert [step.status_code for step in response.history] == [303]
    assert filename_of(response.headers["Content-Disposition"]) == "Café — plan.pptx"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="Cafe - plan.pptx"')
    slides = list(Presentation(io.BytesIO(response.content)).slides)
    assert [slide.shapes.title.text for slide in slides] == ["Café — plan €", "Numbers"]
    # The same content asked again is the same file
    again = api.get(f"/api/v1/sessions/{session_id}/export", params={"format": "pptx"}, allow_redirects=False)
    assert again.status_code == 303 and urlsplit(again.headers["Location"]).path == urlsplit(response.url).path


def test_post_with_download_true_is_a_303_too(api: ApiClient, session_id: str) -> None:
    response = api.post(f"/api/v1/sessions/{session_id}/export?format=markdown&download=true", allow_redirects=True)
    assert response.status_code == 200 and response.history[0].status_code == 303
    assert response.content.decode().startswith("# Café — plan\n")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_saves_the_file_under_its_name(
    api: ApiClient, gateway: RunningGateway, session_id: str, tmp_path: Path
) -> None:
    # curl -J takes the plain `filename` (it does not decode `filename*`): the title's ASCII spelling.
    url = f"{gateway.base_url}/api/v1/sessions/{session_id}/export?format=pptx"
    completed = subprocess.run(
        ["curl", "-sS", "-f", "-L", "-OJ", "-H", f"X-Dev-User: {api.headers['X-Dev-User']}", url],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    saved = list(tmp_path.iterdir())
    assert [path.name for path in saved] == ["Cafe - plan.pptx"]
    assert len(Presentation(str(saved[0])).slides) == 2


def test_someone_elses_export_routes_are_404(gateway: RunningGateway, session_id: str) -> None:
    with gateway.as_user("mallory-e2e") as mallory:
        for method, path in [
            ("POST", f"/api/v1/sessions/{session_id}/export"),
            ("GET", f"/api/v1/sessions/{session_id}/export?format=pdf"),
            ("GET", f"/api/v1/sessions/{session_id}/exports"),
            ("GET", f"/api/v1/sessions/{session_id}/slides"),
        ]:
            response = mallory.request(method, path, allow_redirects=False)
            assert response.status_code == 404 and response.json()["code"] == "session_not_found"
