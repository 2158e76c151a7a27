"""The sample events in events/ are what API Gateway sends for our routes, and every handler takes them."""

from __future__ import annotations

import json

import pytest

from tests.support import EVENTS, Api, route_for

HTTP_EVENTS = sorted(path for path in EVENTS.glob("*.json") if json.loads(path.read_text()).get("version") == "2.0")


def test_there_is_an_event_for_every_route() -> None:
    from tests.support import function_specs

    covered = {json.loads(path.read_text())["routeKey"] for path in HTTP_EVENTS}
    routes = {route.key for spec in function_specs().values() for route in spec.routes if route.method != "OPTIONS"}
    assert routes - covered == set(), "add an events/<group>_<route>.json for these routes"


@pytest.mark.parametrize("path", HTTP_EVENTS, ids=[path.stem for path in HTTP_EVENTS])
def test_sample_event_matches_its_route_and_is_answered(api: Api, path: object) -> None:
    event = json.loads(path.read_text())  # type: ignore[attr-defined]
    logical_id, route, params = route_for(event["requestContext"]["http"]["method"], event["rawPath"])
    assert event["routeKey"] == event["requestContext"]["routeKey"] == route.key
    assert event.get("pathParameters", {}) == params
    result = api.invoke(logical_id, event)
    assert result.status < 500, result.body
    if result.status >= 400:
        assert result.headers["Content-Type"] == "application/problem+json"
