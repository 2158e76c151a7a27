"""The local gateway's WebSocket API as a client sees it, with the functions in Lambda worker processes.

A tiny stack of its own shows the plumbing (LIVE_CONNECTIONS_URL reaching the local @connections API from a
worker); the built template (`make local-build`) shows live streaming: a chat run's events pushed to its
subscribers by the chat worker, and nothing for a stranger.
"""

from __future__ import annotations

import json
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection

if TYPE_CHECKING:
    from tests.e2e.conftest import GatewayStarter, RunningGateway

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Globals:
  Function: {Runtime: python3.13, Handler: app.handler, Timeout: 10}
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
  Live:
    Type: AWS::ApiGatewayV2::Api
    Properties: {Name: live, ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.action}
  Integration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Live
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Echo.Arn}/invocations
  ConnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Live, RouteKey: $connect, AuthorizationType: CUSTOM, Target: !Sub "integrations/${Integration}"}
  DefaultRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Live, RouteKey: $default, Target: !Sub "integrations/${Integration}"}
  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties: {ApiId: !Ref Live, StageName: live}
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: echo/
      Environment:
        Variables:
          LIVE_CONNECTIONS_URL: !Sub https://${Live}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${Stage}
"""

ECHO = """\
import json
import os

import boto3


def handler(event, context):
    request = event["requestContext"]
    if request["routeKey"] == "$connect":
        return {"statusCode": 403} if request["authorizer"]["principalId"] == "mallory" else {"statusCode": 200}
    if request["routeKey"] == "$default":
        connections = boto3.client("apigatewaymanagementapi", endpoint_url=os.environ["LIVE_CONNECTIONS_URL"])
        described = connections.get_connection(ConnectionId=request["connectionId"])
        reply = {"echo": event["body"], "url": os.environ["LIVE_CONNECTIONS_URL"], "ip": described["Identity"]["SourceIp"]}
        connections.post_to_connection(ConnectionId=request["connectionId"], Data=json.dumps(reply).encode())
    return {"statusCode": 200}
"""


@pytest.fixture(scope="module")
def mini(start_gateway: GatewayStarter, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    directory = tmp_path_factory.mktemp("live-stack")
    (directory / "echo").mkdir()
    (directory / "template.yaml").write_text(TEMPLATE)
    (directory / "echo" / "app.py").write_text(textwrap.dedent(ECHO))
    with start_gateway(directory / "template.yaml") as running:
        yield running


def test_a_function_in_a_worker_talks_back_through_live_connections_url(mini: RunningGateway) -> None:
    # Given the gateway's WebSocket API on a port of its own
    assert mini.websocket_url is not None
    port = mini.websocket_url.split(":")[2].split("/")[0]

    # When a client sends a message, the function (a Lambda worker) answers through @connections
    with mini.live("alice") as client:
        client.send("hello")
        reply = json.loads(client.recv(timeout=30))

    # Then LIVE_CONNECTIONS_URL named the local gateway's @connections API
    assert reply == {"echo": "hello", "url": f"http://127.0.0.1:{port}/live", "ip": "127.0.0.1"}
    assert f"WebSocket API on {mini.websocket_url}" in mini.log()


def test_a_refused_connect_is_an_http_error(mini: RunningGateway) -> None:
    with pytest.raises(InvalidStatus) as refused:
        mini.live("mallory")
    assert refused.value.response.status_code == 403


# --- the live API of template.yaml ------------------------------------------------------------------


def frames_until_the_end(client: ClientConnection, seconds: float = 60) -> list[dict[str, Any]]:
    """What the socket receives, up to a run's last event (or a problem)."""
    frames: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while not frames or frames[-1].get("type") not in ("complete", "error", "problem"):
        frames.append(json.loads(client.recv(timeout=max(deadline - time.monotonic(), 0.1))))
    return frames


def start_chat(gateway: RunningGateway, user: str, message: str) -> str:
    with gateway.as_user(user) as api:
        session = api.post("/api/v1/sessions", json={"title": "live e2e"})
        assert session.status_code == 201, session.text
        accepted = api.post(f"/api/v1/sessions/{session.json()['session_id']}/chat/async", json={"message": message})
    assert accepted.status_code == 202, accepted.text
    return str(accepted.json()["request_id"])


def test_a_subscriber_receives_the_runs_events_and_a_stranger_none(gateway: RunningGateway) -> None:
    # Given alice's async chat, started over HTTP
    alice = f"alice-{uuid.uuid4().hex[:8]}"
    request_id = start_chat(gateway, alice, "hello [stream 30]")

    # When she subscribes over the WebSocket API
    with gateway.live(alice) as client:
        client.send(json.dumps({"action": "subscribe", "request_id": request_id, "after": 0}))
        frames = frames_until_the_end(client)

    # Then she receives the subscription, then every event of the run in order, ending with complete
    assert frames[0] == {"type": "subscribed", "request_id": request_id, "after": 0}
    events = frames[1:]
    assert all(event["request_id"] == request_id for event in events)
    assert [event["id"] for event in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] == "complete"
    text = "".join(event["delta"] for event in events if event["type"] == "assistant")
    assert text.startswith("Echo: hello")

    # And a stranger subscribing to it gets a problem, and no event
    with gateway.live(f"mallory-{uuid.uuid4().hex[:8]}") as stranger:
        stranger.send(json.dumps({"action": "subscribe", "request_id": request_id, "after": 0}))
        refused = json.loads(stranger.recv(timeout=30))
        with pytest.raises(TimeoutError):
            stranger.recv(timeout=2)
    assert refused["type"] == "problem"
    assert refused["request_id"] == request_id
    assert refused["problem"]["status"] == 404


def test_a_chat_over_the_socket_streams_its_events(gateway: RunningGateway) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    with gateway.as_user(user) as api:
        session_id = api.post("/api/v1/sessions", json={"title": "live chat"}).json()["session_id"]

    with gateway.live(user) as client:
        client.send(json.dumps({"action": "chat", "session_id": session_id, "message": "over the socket [stream 10]"}))
        frames = frames_until_the_end(client)

    accepted, subscribed, *events = frames
    assert (accepted["type"], accepted["session_id"]) == ("accepted", session_id)
    assert subscribed == {"type": "subscribed", "request_id": accepted["request_id"], "after": 0}
    assert [event["id"] for event in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] == "complete"


def test_a_message_that_is_not_json_gets_a_problem(gateway: RunningGateway) -> None:
    with gateway.live(None) as client:  # the gateway's DEV_USER_ID
        client.send("not json")
        problem = json.loads(client.recv(timeout=30))
    assert problem["type"] == "problem"
    assert problem["problem"]["status"] == 400


def test_the_live_api_is_printed_and_recorded(gateway: RunningGateway) -> None:
    assert gateway.websocket_url is not None and gateway.websocket_url.endswith("/live")
    assert json.loads(Path(gateway.state_file).read_text())["websocket_url"] == gateway.websocket_url
