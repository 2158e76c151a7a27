"""The docs page as a person uses it: Debian's headless Chromium (driven through chromedriver's WebDriver HTTP
API, no extra package) loads /api/v1/docs from the local gateway, runs "Try it out" on `GET /sessions`,
and reads the rendered response. Everything the page loads comes from the API itself.

Without Chromium the test fails under CI (CI=true; .ci/run installs it) and skips elsewhere.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.e2e.conftest import RunningGateway

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,2000",
]
MARKUP_TITLE = '<img src=x onerror="window.__xss=1">Quarterly <b>plan</b>'


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Browser:
    """The few WebDriver commands this test needs, spoken over HTTP to chromedriver."""

    def __init__(self, driver_url: str, session_id: str) -> None:
        self.url = f"{driver_url}/session/{session_id}"

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        response = requests.request(method, f"{self.url}{path}", json=payload, timeout=60)
        body = response.json()
        assert response.ok, body
        return body["value"]

    def open(self, url: str) -> None:
        self._call("POST", "/url", {"url": url})

    def run(self, script: str, *args: Any) -> Any:
        return self._call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait_for(self, script: str, *args: Any, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.run(script, *args)
            if value:
                return value
            time.sleep(0.2)
        html = self.run("return document.body ? document.body.innerText.slice(0, 2000) : ''")
        pytest.fail(f"timed out waiting for: {script}\npage text:\n{html}")


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not (CHROMIUM and CHROMEDRIVER):
        reason = "Chromium and chromedriver are needed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: CI must run the browser test")
        pytest.skip(reason)
    port = _free_port()
    driver = subprocess.Popen([CHROMEDRIVER, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    driver_url = f"http://127.0.0.1:{port}"
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(f"{driver_url}/status", timeout=2).json()["value"]["ready"]:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail("chromedriver did not start")
            time.sleep(0.1)
        options = {"binary": CHROMIUM, "args": [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]}
        capabilities = {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}
        created = requests.post(f"{driver_url}/session", json={"capabilities": capabilities}, timeout=60).json()
        assert "sessionId" in created["value"], created
        session_id = created["value"]["sessionId"]
        yield Browser(driver_url, session_id)
        requests.delete(f"{driver_url}/session/{session_id}", timeout=30)
    finally:
        driver.terminate()
        driver.wait(timeout=15)
        shutil.rmtree(profile, ignore_errors=True)


# The operation block of GET /api/v1/sessions, as `op` (Swagger UI inserts zero-width spaces into paths).
LIST_OPERATION = """
const op = Array.from(document.querySelectorAll('.opblock.opblock-get')).find(block => {
  const path = block.querySelector('.opblock-summary-path');
  return path && path.innerText.replace(/\\u200b/g, '').trim() === '/api/v1/sessions';
});
"""


def on_list_operation(script: str) -> str:
    return LIST_OPERATION + "if (!op) { return null; }\n" + script


def test_try_it_out_lists_my_sessions_without_a_token(gateway: RunningGateway, browser: Browser) -> None:
    # Given the dev user (the local gateway's caller when no token is sent) has a session titled with markup
    dev = gateway.as_user(None)
    created = dev.post("/api/v1/sessions", json={"title": MARKUP_TITLE})
    assert created.status_code == 201, created.text

    # When they open the docs, expand GET /api/v1/sessions, press "Try it out" and "Execute"
    browser.open(f"{gateway.base_url}/api/v1/docs")
    browser.wait_for("return document.querySelector('.swagger-ui .info .title') !== null")
    assert browser.run("return document.querySelector('.btn.authorize') !== null"), "no Authorize button"
    browser.wait_for(on_list_operation("return true;"))
    browser.run(on_list_operation("op.querySelector('.opblock-summary-control').click();"))
    browser.wait_for(on_list_operation("return op.querySelector('.try-out__btn') !== null;"))
    browser.run(on_list_operation("op.querySelector('.try-out__btn').click();"))
    browser.wait_for(on_list_operation("return op.querySelector('.execute') !== null;"))
    browser.run(on_list_operation("op.querySelector('.execute').click();"))

    # Then the page shows the live 200 response with the session, its title as text, never as markup
    status = browser.wait_for(
        on_list_operation(
            "const cell = op.querySelector('.live-responses-table .response .response-col_status');"
            "return cell ? cell.innerText.trim() : null;"
        )
    )
    assert status.startswith("200"), status
    body = browser.run(
        on_list_operation("return op.querySelector('.live-responses-table .response-col_description pre').innerText;")
    )
    assert created.json()["session_id"] in body
    assert "onerror" in body  # the title, shown as text
    assert browser.run("return window.__xss === undefined"), "a title was rendered as markup"
    assert browser.run("return document.querySelectorAll('img[onerror]').length") == 0
    # And nothing came from anywhere but the API (no CDN): every loaded resource is same-origin
    origins = browser.run("return performance.getEntriesByType('resource').map(entry => new URL(entry.name).origin);")
    assert origins and set(origins) == {gateway.base_url}, origins


def test_service_endpoints_through_the_gateway(gateway: RunningGateway) -> None:
    # Public: no caller needed; `$default` answers unknown paths with our problem, not API Gateway's 404
    anonymous = gateway.as_user(None)
    anonymous.headers.pop("X-Dev-User", None)
    health = anonymous.get("/api/v1/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    unknown = anonymous.get("/api/v1/no/such/path")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert unknown.json()["request_id"] == unknown.headers["apigw-requestid"]
    bundle = anonymous.get("/api/v1/docs/swagger-ui-bundle.js", headers={"Accept-Encoding": "gzip"})
    assert bundle.status_code == 200 and bundle.headers["content-encoding"] == "gzip"
    assert bundle.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "SwaggerUIBundle" in bundle.text  # requests decodes the gzip
