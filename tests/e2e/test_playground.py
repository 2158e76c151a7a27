"""The playground as a person uses it: headless Chromium (driven over WebDriver, as in test_swagger_ui.py) opens
/api/v1/playground on the local gateway, starts a session, watches a long reply grow and stops it, then has
the slides agent write a deck, sees its slides and exports it as PPTX; it finds, renames and deletes sessions;
and it still gets replies, by polling, when the WebSocket cannot connect or says nothing. Everything the page
loads comes from the API itself; a screenshot of the chat goes to $CI_ARTIFACTS (else .local/artifacts/).

The reply arrives over the WebSocket API when config.json names one on this machine (the page's transcript
says which way each event came: data-transport and its counters), else by polling. `[stream 2000]`: at the
local model's default pace (4 words per 50 ms chunk) that is about 25 s, time enough to watch it and stop it.
"""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.e2e import test_swagger_ui
from tests.e2e.conftest import REPO, RunningGateway
from tests.e2e.test_swagger_ui import Browser

browser = test_swagger_ui.browser  # the fixture: Chromium through chromedriver, skipped (failed under CI) without it

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C WebDriver key of an element reference
MARKUP_TITLE = '<img src=x onerror="window.__xss=1">Tides <b>log</b>'
LAST_REPLY = "const all = document.querySelectorAll('[data-testid=transcript] .message.assistant .content');"


class Page:
    """The playground in the browser: its elements found by data-testid, clicked and typed into as a user does."""

    def __init__(self, driven: Browser) -> None:
        self.browser = driven

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        response = requests.request(method, f"{self.browser.url}{path}", json=payload, timeout=60)
        assert response.ok, response.text
        return response.json()["value"]

    def element(self, selector: str) -> str:
        found = self._call("POST", "/element", {"using": "css selector", "value": selector})
        return str(found[ELEMENT])

    def click(self, testid: str) -> None:
        self._call("POST", f"/element/{self.element(f'[data-testid={testid}]')}/click", {})

    def type(self, testid: str, text: str) -> None:
        self._call("POST", f"/element/{self.element(f'[data-testid={testid}]')}/value", {"text": text})

    def choose(self, testid: str, value: str) -> None:
        self._call("POST", f"/element/{self.element(f'[data-testid={testid}] option[value={value}]')}/click", {})

    def text(self, testid: str) -> str:
        return str(self.browser.run(f"return document.querySelector('[data-testid={testid}]').innerText;"))

    def reply_length(self) -> int:
        return int(self.browser.run(LAST_REPLY + "return all.length ? all[all.length - 1].textContent.length : 0;"))

    def idle(self) -> bool:
        return bool(self.browser.run("return document.getElementById('composer').dataset.run === 'idle';"))

    def before_every_page(self, script: str) -> None:
        """Runs `script` in each page before its own scripts (chromedriver's DevTools passthrough)."""
        self._call(
            "POST", "/goog/cdp/execute", {"cmd": "Page.addScriptToEvaluateOnNewDocument", "params": {"source": script}}
        )

    def resize(self, width: int, height: int) -> None:
        self._call("POST", "/window/rect", {"width": width, "height": height})

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self._call("GET", "/screenshot")))


@pytest.fixture
def page(browser: Browser) -> Page:
    return Page(browser)


def artifacts_dir() -> Path:
    return Path(os.environ.get("CI_ARTIFACTS") or REPO / ".local" / "artifacts")


def test_chat_stop_slides_and_export_in_the_browser(gateway: RunningGateway, page: Page) -> None:
    browser = page.browser
    dev = gateway.as_user(None)  # the page sends no token, so the gateway calls it its dev user, as here
    config = dev.get("/api/v1/playground/config.json").json()
    # Only a WebSocket API on this machine (the local gateway's) can be expected to answer here.
    live = urlsplit(config["websocket_url"]).hostname in ("127.0.0.1", "localhost")
    # Given the dev user already has a session titled with markup
    assert dev.post("/api/v1/sessions", json={"title": MARKUP_TITLE}).status_code == 201

    # When they open the playground, it lists it as text and asks for no token (the gateway lets them in)
    page.resize(1440, 900)
    browser.open(f"{gateway.base_url}/api/v1/playground")
    browser.wait_for("return !document.getElementById('app').hidden;")
    browser.wait_for("return document.querySelector('[data-testid=session-list] .session') !== null;")
    assert "Tides <b>log</b>" in page.text("session-list")
    assert browser.run("return document.getElementById('auth').hidden;")

    # And start a new session and ask for a long answer
    page.click("new-session")
    session_id = browser.wait_for(
        "const chosen = document.querySelector('[data-testid=session-list] [aria-current=true]');"
        "return chosen && chosen.innerText.startsWith('New chat') && chosen.dataset.sessionId;"
    )
    page.type("message-input", "Tell me about <b>tides</b> [stream 2000]")
    page.click("send")

    # Then the reply grows while the run is going
    browser.wait_for("return document.getElementById('composer').dataset.run === 'running';")
    browser.wait_for(LAST_REPLY + "return all.length > 0 && all[all.length - 1].textContent.includes('word');")
    first = page.reply_length()
    browser.wait_for(f"{LAST_REPLY} return all[all.length - 1].textContent.length > {first};")
    second = page.reply_length()
    assert second > first and not page.idle()

    # When they press stop, the partial reply stays, marked stopped, and the run is cancelled
    page.click("stop")
    browser.wait_for("return document.getElementById('composer').dataset.run === 'idle';")
    browser.wait_for(
        "const replies = document.querySelectorAll('[data-testid=transcript] .message.assistant');"
        "return replies.length === 1 && replies[0].innerText.includes('stopped');"
    )
    kept = browser.run(LAST_REPLY + "return all[all.length - 1].textContent;")
    assert len(kept) >= second and "word1 " in kept and "word2000" not in kept
    assert "Echo: Tell me about <b>tides</b>" in kept  # the markup, as text
    assert browser.run("return document.querySelectorAll('[data-testid=transcript] b').length") == 0
    runs = dev.get(f"/api/v1/sessions/{session_id}/runs").json()["runs"]
    assert [run["status"] for run in runs] == ["cancelled"]
    transport = browser.run("return document.querySelector('[data-testid=transcript]').dataset;")
    if live:
        assert int(transport["websocketEvents"]) > 0, transport
    else:
        assert transport["transport"] == "polling" and int(transport["pollingEvents"]) > 0, transport

    # When they pick the slides agent and ask for a deck
    page.choose("agent", "slides")
    page.type("message-input", "Make 3 slides about tides")
    page.click("send")

    # Then the deck shows three slides, each in a sandboxed frame (its markup can run nothing)
    browser.wait_for("return document.querySelector('[data-testid=deck]').dataset.slideCount === '3';", timeout=60)
    browser.wait_for("return document.getElementById('composer').dataset.run === 'idle';", timeout=60)
    frames = browser.run(
        "return Array.from(document.querySelectorAll('[data-testid=deck] iframe'))"
        ".map(frame => [frame.getAttribute('sandbox'), frame.srcdoc]);"
    )
    assert len(frames) == 3 and all(sandbox == "" for sandbox, _ in frames)
    assert "<h1>Tides</h1>" in frames[0][1] and "#1f4e79" in frames[0][1]  # the slide with the deck's CSS

    # When they export the deck as PPTX, the download starts and the page stays
    page.click("export-pptx")
    browser.wait_for("return document.querySelector('[data-testid=export-status] a') !== null;")
    assert urlsplit(browser.run("return location.href;")).path == "/api/v1/playground"

    # Then the session has a PPTX export
    exports = dev.get(f"/api/v1/sessions/{session_id}/exports").json()["exports"]
    assert [export["format"] for export in exports] == ["pptx"]

    # And nothing ran from a title or a message, and everything came from this API (or its WebSocket API)
    assert browser.run("return window.__xss === undefined;"), "a title was rendered as markup"
    origins = browser.run("return performance.getEntriesByType('resource').map(entry => new URL(entry.name).origin);")
    assert origins and set(origins) == {gateway.base_url}, origins
    time.sleep(0.5)  # let the slide frames paint before the picture
    page.screenshot(artifacts_dir() / "playground.png")


def test_search_rename_and_delete_sessions(gateway: RunningGateway, page: Page) -> None:
    # Given the dev user has two sessions
    browser, dev = page.browser, gateway.as_user(None)
    marker = f"Harbour {time.monotonic_ns()}"
    for title in (f"{marker} pilots", f"{marker} cranes"):
        assert dev.post("/api/v1/sessions", json={"title": title}).status_code == 201
    browser.open(f"{gateway.base_url}/api/v1/playground")
    browser.wait_for("return !document.getElementById('app').hidden;")

    # When they search, only the matching one is listed; they open it and rename it
    page.type("session-search", f"{marker} cr")
    titles = "return Array.from(document.querySelectorAll('[data-testid=session-list] .session-title')).map(t => t.textContent);"
    browser.wait_for(
        f"const shown = (() => {{ {titles} }})(); return shown.length === 1 && shown[0].endsWith('cranes');"
    )
    browser.run("document.querySelector('[data-testid=session-list] .session').click();")
    browser.wait_for(f"return document.querySelector('[data-testid=session-title]').textContent === '{marker} cranes';")
    page.click("rename")
    browser.run("document.querySelector('[data-testid=rename-input]').value = '';")
    page.type("rename-input", f"{marker} cranes and gantries\n")
    browser.wait_for("return document.querySelector('[data-testid=session-title]').textContent.endsWith('gantries');")
    session_id = browser.run(
        "return document.querySelector('[data-testid=session-list] [aria-current=true]').dataset.sessionId;"
    )
    assert dev.get(f"/api/v1/sessions/{session_id}").json()["title"] == f"{marker} cranes and gantries"

    # And delete it (two presses: the first only arms the button)
    page.click("delete")
    assert dev.get(f"/api/v1/sessions/{session_id}").status_code == 200
    page.click("delete")
    browser.wait_for(
        "return document.querySelector('[data-testid=session-title]').textContent === 'No session selected';"
    )
    assert dev.get(f"/api/v1/sessions/{session_id}").status_code == 404
    browser.wait_for("return document.querySelectorAll('[data-testid=session-list] .session').length === 0;")


# WebSockets the page cannot use: one that never connects, one that connects but delivers nothing.
BROKEN_SOCKETS = {
    "unreachable": "window.WebSocket = class extends WebSocket { constructor() { super('ws://127.0.0.1:9/'); } };",
    "silent": (
        "window.WebSocket = class extends WebSocket { addEventListener(type, listener, options) {"
        " if (type !== 'message') { super.addEventListener(type, listener, options); } } };"
    ),
}


@pytest.mark.parametrize("socket", BROKEN_SOCKETS)
def test_the_reply_comes_by_polling_when_the_websocket_fails(gateway: RunningGateway, page: Page, socket: str) -> None:
    # Given a browser whose WebSocket is unreachable or silent
    browser = page.browser
    page.before_every_page(BROKEN_SOCKETS[socket])
    browser.open(f"{gateway.base_url}/api/v1/playground")
    browser.wait_for("return !document.getElementById('app').hidden;")

    # When they start a session and send a message
    page.click("new-session")
    browser.wait_for(
        "const chosen = document.querySelector('[data-testid=session-list] [aria-current=true]');"
        "return chosen && chosen.innerText.startsWith('New chat');"
    )
    page.type("message-input", "Short one [stream 40]")
    page.click("send")

    # Then the whole reply arrives anyway, by polling
    browser.wait_for(LAST_REPLY + "return all.length > 0 && all[all.length - 1].textContent.includes('word40');")
    browser.wait_for("return document.getElementById('composer').dataset.run === 'idle';")
    transport = browser.run("return document.querySelector('[data-testid=transcript]').dataset;")
    assert transport["websocketEvents"] == "0" and int(transport["pollingEvents"]) > 0, transport


def test_the_page_is_static_and_locked_down(gateway: RunningGateway) -> None:
    anonymous = gateway.as_user(None)
    page = anonymous.get("/api/v1/playground", params={"q": "<script>alert(1)</script>"})
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert "<script>alert" not in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
    config = anonymous.get("/api/v1/playground/config.json").json()
    websocket = urlsplit(config["websocket_url"])
    assert config["websocket_url"] == "" or websocket.scheme in ("ws", "wss")
    if websocket.netloc:
        assert f"connect-src 'self' {websocket.scheme}://{websocket.netloc};" in csp
    script = anonymous.get("/api/v1/playground/playground.js", headers={"Accept-Encoding": "gzip"})
    assert script.status_code == 200 and script.headers["content-encoding"] == "gzip"
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert anonymous.get("/api/v1/playground/index.html").status_code == 404
