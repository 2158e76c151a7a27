"""local.websocket: API Gateway's WebSocket API around Lambda, as a WebSocket client and boto3 see it.

The gateway runs in-process on a free port, in front of small fake functions (the real ones run in worker
processes: tests/e2e/test_live_gateway.py); the template side is read from a small template of its own.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from local.runtime import Invocation
from local.template import TemplateError, WebSocketApiSpec, WebSocketRouteSpec, functions, load_stack, websocket_api
from local.websocket import MAX_FRAME_BYTES, MAX_MESSAGE_BYTES, LiveGateway

Handler = Callable[[dict[str, Any]], Any]


class FakeFunction:
    """A function the gateway invokes in-process: it records every event and answers with `handler`."""

    def __init__(self, handler: Handler | None = None) -> None:
        self.handler = handler or (lambda event: {"statusCode": 200})
        self.events: list[dict[str, Any]] = []
        self._arrived = threading.Condition()

    def invoke(self, event: Any, deadline: float | None = None) -> Invocation:
        with self._arrived:
            self.events.append(event)
            self._arrived.notify_all()
        try:
            return Invocation(str(uuid.uuid4()), result=self.handler(event))
        except Exception as error:
            return Invocation(str(uuid.uuid4()), error={"errorType": type(error).__name__, "errorMessage": str(error)})

    def wait_for(self, route_key: str, count: int = 1) -> list[dict[str, Any]]:
        """The events of `route_key`, once `count` of them came."""
        with self._arrived:
            assert self._arrived.wait_for(lambda: len(self.of(route_key)) >= count, timeout=5), self.events
            return self.of(route_key)

    def of(self, route_key: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["requestContext"]["routeKey"] == route_key]


def spec(
    *, custom: tuple[str, ...] = ("echo",), responds: tuple[str, ...] = (), default: bool = True
) -> WebSocketApiSpec:
    keys = ["$connect", "$disconnect", *custom, *(["$default"] if default else [])]
    routes = {
        key: WebSocketRouteSpec(key, "Live", authorized=key == "$connect", responds=key in responds) for key in keys
    }
    return WebSocketApiSpec("LiveApi", "abc123defg", "live", ("action",), routes)


class Running:
    def __init__(self, gateway: LiveGateway, port: int) -> None:
        self.gateway = gateway
        self.port = port
        self.url = f"ws://127.0.0.1:{port}/live"

    def connect(self, query: str = "", **kwargs: Any) -> ClientConnection:
        return connect(self.url + query, open_timeout=5, close_timeout=2, **kwargs)

    def management(self, stage: str = "live") -> Any:
        """The @connections API's client, as functions make it from LIVE_CONNECTIONS_URL."""
        return boto3.client(
            "apigatewaymanagementapi",
            endpoint_url=f"http://127.0.0.1:{self.port}/{stage}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@pytest.fixture
def serve() -> Iterator[Callable[..., Running]]:
    """`serve(function, api=spec(), dev_user="dev-user")`: a gateway on a free port, stopped after the test."""
    started: list[LiveGateway] = []

    def start(function: FakeFunction, api: WebSocketApiSpec | None = None, dev_user: str = "dev-user") -> Running:
        listener = socket.create_server(("127.0.0.1", 0))
        gateway = LiveGateway(api or spec(), {"Live": function}, dev_user)
        gateway.start(listener)
        started.append(gateway)
        return Running(gateway, listener.getsockname()[1])

    yield start
    for gateway in started:
        gateway.stop()


def connection_id_of(function: FakeFunction) -> str:
    return str(function.wait_for("$connect")[0]["requestContext"]["connectionId"])


# --- $connect ---------------------------------------------------------------------------------------


def test_connect_sends_the_event_api_gateway_sends(serve: Callable[..., Running]) -> None:
    # Given a gateway in front of a function
    function = FakeFunction()
    running = serve(function)

    # When a client connects as alice, with an email and a repeated query parameter
    with running.connect("?user=alice&email=alice@example.com&tag=a&tag=b", user_agent_header="tests/1"):
        event = function.wait_for("$connect")[0]

    # Then the function got API Gateway's CONNECT event, with the authorizer's context
    context = event["requestContext"]
    assert context["routeKey"] == "$connect"
    assert context["eventType"] == "CONNECT"
    assert context["messageDirection"] == "IN"
    assert context["stage"] == "live"
    assert context["apiId"] == "abc123defg"
    assert re.fullmatch(r"[A-Za-z0-9]{15}=", context["connectionId"])
    assert context["authorizer"] == {
        "principalId": "alice",
        "sub": "alice",
        "email": "alice@example.com",
        "integrationLatency": 0,
    }
    assert context["identity"] == {"sourceIp": "127.0.0.1", "userAgent": "tests/1"}
    assert context["domainName"] == f"127.0.0.1:{running.port}"
    assert abs(context["connectedAt"] - time.time() * 1000) < 5000
    assert context["requestTimeEpoch"] >= context["connectedAt"]
    assert context["requestId"] and context["extendedRequestId"]
    assert event["queryStringParameters"] == {"user": "alice", "email": "alice@example.com", "tag": "b"}
    assert event["multiValueQueryStringParameters"]["tag"] == ["a", "b"]
    assert event["headers"]["Sec-WebSocket-Version"] == "13"
    assert event["headers"]["X-Forwarded-For"] == "127.0.0.1"
    assert event["multiValueHeaders"]["Host"] == [f"127.0.0.1:{running.port}"]
    assert event["isBase64Encoded"] is False


def test_without_user_the_caller_is_dev_user_id_and_the_stage_path_is_optional(serve: Callable[..., Running]) -> None:
    function = FakeFunction()
    running = serve(function, dev_user="dev-user")

    with connect(f"ws://127.0.0.1:{running.port}", open_timeout=5):
        event = function.wait_for("$connect")[0]

    assert event["requestContext"]["authorizer"]["principalId"] == "dev-user"
    assert "email" not in event["requestContext"]["authorizer"]
    assert event["queryStringParameters"] is None


def test_without_a_caller_the_authorizer_refuses_with_401(serve: Callable[..., Running]) -> None:
    function = FakeFunction()
    running = serve(function, dev_user="")

    with pytest.raises(InvalidStatus) as refused:
        running.connect()

    assert refused.value.response.status_code == 401
    assert json.loads(refused.value.response.body) == {"message": "Unauthorized"}
    assert function.events == []


@pytest.mark.parametrize(
    ("handler", "status"),
    [
        (lambda event: {"statusCode": 403, "body": "not you"}, 403),
        (lambda event: {"statusCode": 400}, 400),
        (lambda event: 1 / 0, 500),
    ],
)
def test_a_connect_that_fails_refuses_the_upgrade(serve: Callable[..., Running], handler: Handler, status: int) -> None:
    # Given a $connect function that answers non-2xx (or fails)
    function = FakeFunction(handler)
    running = serve(function)

    # When a client connects, the upgrade is refused with that status, and no $disconnect follows
    with pytest.raises(InvalidStatus) as refused:
        running.connect("?user=alice")
    assert refused.value.response.status_code == status
    time.sleep(0.2)
    assert [event["requestContext"]["routeKey"] for event in function.events] == ["$connect"]


def test_a_wrong_stage_is_forbidden(serve: Callable[..., Running]) -> None:
    running = serve(FakeFunction())
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://127.0.0.1:{running.port}/prod", open_timeout=5)
    assert refused.value.response.status_code == 403


# --- messages ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "route_key"),
    [
        ('{"action": "echo", "x": 1}', "echo"),
        ('{"action": "subscribe"}', "$default"),
        ('{"action": "$connect"}', "$default"),
        ('{"no": "action"}', "$default"),
        ("not json", "$default"),
        ("[1, 2]", "$default"),
    ],
)
def test_a_message_runs_the_route_its_action_names(serve: Callable[..., Running], message: str, route_key: str) -> None:
    function = FakeFunction()
    running = serve(function)

    with running.connect("?user=alice") as client:
        client.send(message)
        event = function.wait_for(route_key)[0]

    context = event["requestContext"]
    assert context["eventType"] == "MESSAGE"
    assert context["connectionId"] == connection_id_of(function)
    assert context["authorizer"]["principalId"] == "alice"  # the connection's, on every message
    assert context["messageId"]
    assert event["body"] == message
    assert event["isBase64Encoded"] is False


def test_the_result_goes_back_only_on_a_route_with_a_route_response(serve: Callable[..., Running]) -> None:
    # Given a function answering every message, and an API where only `echo` is two-way
    function = FakeFunction(lambda event: {"statusCode": 200, "body": f"result of {event.get('body')}"})
    running = serve(function, spec(custom=("echo",), responds=("echo",)))

    with running.connect() as client:
        # When a message goes to $default, then one to echo
        client.send("to default")
        function.wait_for("$default")
        client.send('{"action": "echo"}')

        # Then only echo's result reaches the client
        assert client.recv(timeout=5) == 'result of {"action": "echo"}'
        with pytest.raises(TimeoutError):
            client.recv(timeout=0.3)


def test_a_failed_integration_is_reported_to_the_client(serve: Callable[..., Running]) -> None:
    function = FakeFunction(lambda event: 1 / 0 if event["requestContext"]["eventType"] == "MESSAGE" else None)
    running = serve(function)

    with running.connect() as client:
        client.send("hello")
        answer = json.loads(client.recv(timeout=5))

    assert answer["message"] == "Internal server error"
    assert answer["connectionId"] == connection_id_of(function)
    assert answer["requestId"] == function.wait_for("$default")[0]["requestContext"]["requestId"]


def test_without_a_matching_route_or_default_the_gateway_answers_forbidden(serve: Callable[..., Running]) -> None:
    function = FakeFunction()
    running = serve(function, spec(default=False))

    with running.connect() as client:
        client.send("hello")
        assert json.loads(client.recv(timeout=5))["message"] == "Forbidden"
        client.send('{"action": "echo"}')
        function.wait_for("echo")


def test_messages_run_concurrently(serve: Callable[..., Running]) -> None:
    # Given a function that takes a while on a message
    release = threading.Event()
    function = FakeFunction(lambda event: release.wait(5) if event.get("body") == "slow" else None)
    running = serve(function)

    with running.connect() as client:
        # When a slow message is followed by a quick one, the quick one does not wait
        client.send("slow")
        client.send("quick")
        events = function.wait_for("$default", count=2)
        release.set()
    assert [event["body"] for event in events] == ["slow", "quick"]


# --- limits -----------------------------------------------------------------------------------------


def test_a_message_over_128_kb_closes_the_connection_with_1009(serve: Callable[..., Running]) -> None:
    function = FakeFunction()
    running = serve(function)

    with running.connect() as client:
        # A message of 32 KB frames up to 128 KB in all is taken
        text = "x" * MAX_MESSAGE_BYTES
        client.send([text[start : start + MAX_FRAME_BYTES] for start in range(0, len(text), MAX_FRAME_BYTES)])
        assert len(function.wait_for("$default")[0]["body"]) == MAX_MESSAGE_BYTES
        # One byte more closes the connection (maybe while the client still sends)
        with contextlib.suppress(ConnectionClosed):
            client.send([text[:MAX_FRAME_BYTES]] * 4 + ["y"])
        with pytest.raises(ConnectionClosed):
            client.recv(timeout=5)
    assert client.close_code == 1009
    assert function.wait_for("$disconnect")[0]["requestContext"]["disconnectStatusCode"] == 1009


def test_a_frame_over_32_kb_closes_the_connection_with_1009(serve: Callable[..., Running]) -> None:
    running = serve(FakeFunction())
    with running.connect() as client:
        client.send("x" * (MAX_FRAME_BYTES + 1))
        with pytest.raises(ConnectionClosed):
            client.recv(timeout=5)
    assert client.close_code == 1009


def test_a_binary_frame_closes_the_connection_with_1003(serve: Callable[..., Running]) -> None:
    function = FakeFunction()
    running = serve(function)
    with running.connect() as client:
        client.send(b"\x00\x01")
        with pytest.raises(ConnectionClosed):
            client.recv(timeout=5)
    assert client.close_code == 1003
    assert function.of("$default") == []


# --- $disconnect ------------------------------------------------------------------------------------


def test_a_client_close_runs_disconnect(serve: Callable[..., Running]) -> None:
    function = FakeFunction()
    running = serve(function)

    with running.connect("?user=bob") as client:
        connection_id = connection_id_of(function)
        client.close(code=4000, reason="bye")

    event = function.wait_for("$disconnect")[0]
    context = event["requestContext"]
    assert context["eventType"] == "DISCONNECT"
    assert context["connectionId"] == connection_id
    assert (context["disconnectStatusCode"], context["disconnectReason"]) == (4000, "bye")
    assert context["authorizer"]["principalId"] == "bob"


def test_stopping_the_gateway_closes_connections_with_1001_and_runs_disconnect(serve: Callable[..., Running]) -> None:
    function = FakeFunction()
    running = serve(function)
    with running.connect() as client:
        connection_id_of(function)
        running.gateway.stop()
        with pytest.raises(ConnectionClosed):
            client.recv(timeout=5)
    assert client.close_code == 1001
    assert function.wait_for("$disconnect")[0]["requestContext"]["disconnectStatusCode"] == 1001


# --- @connections -----------------------------------------------------------------------------------


def test_a_function_talks_back_through_connections(serve: Callable[..., Running]) -> None:
    # Given a function that answers each message by posting to its connection, as the live function does
    endpoint: list[Any] = []

    def handler(event: dict[str, Any]) -> Any:
        context = event["requestContext"]
        if context["eventType"] == "MESSAGE":
            reply = json.dumps({"echo": event["body"]}).encode()
            endpoint[0].post_to_connection(ConnectionId=context["connectionId"], Data=reply)
        return {"statusCode": 200}

    function = FakeFunction(handler)
    running = serve(function)
    endpoint.append(running.management())

    with running.connect() as client:
        # When a message comes in, its reply arrives as one text frame
        client.send("hi")
        assert json.loads(client.recv(timeout=5)) == {"echo": "hi"}

        # And anyone with the endpoint may post too
        running.management().post_to_connection(ConnectionId=connection_id_of(function), Data=b"\xe2\x9c\x93")
        assert client.recv(timeout=5) == "✓"


def test_get_connection_describes_it(serve: Callable[..., Running]) -> None:
    function = FakeFunction()
    running = serve(function)
    with running.connect(user_agent_header="tests/2"):
        described = running.management().get_connection(ConnectionId=connection_id_of(function))

    assert described["Identity"] == {"SourceIp": "127.0.0.1", "UserAgent": "tests/2"}
    assert abs(described["ConnectedAt"].timestamp() - time.time()) < 5
    assert described["LastActiveAt"] >= described["ConnectedAt"]


def test_delete_connection_closes_it_and_runs_disconnect(serve: Callable[..., Running]) -> None:
    function = FakeFunction()
    running = serve(function)
    management = running.management()

    with running.connect() as client:
        connection_id = connection_id_of(function)
        management.delete_connection(ConnectionId=connection_id)
        with pytest.raises(ConnectionClosed):
            client.recv(timeout=5)

    assert function.wait_for("$disconnect")[0]["requestContext"]["connectionId"] == connection_id
    with pytest.raises(management.exceptions.GoneException):
        management.post_to_connection(ConnectionId=connection_id, Data=b"too late")


@pytest.mark.parametrize("operation", ["post_to_connection", "get_connection", "delete_connection"])
def test_an_unknown_connection_is_gone(serve: Callable[..., Running], operation: str) -> None:
    management = serve(FakeFunction()).management()
    arguments: dict[str, Any] = {"ConnectionId": "Nope0123456789A="}
    if operation == "post_to_connection":
        arguments["Data"] = b"{}"

    with pytest.raises(management.exceptions.GoneException) as gone:
        getattr(management, operation)(**arguments)
    assert gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410


def test_a_post_over_128_kb_is_too_large(serve: Callable[..., Running]) -> None:
    function = FakeFunction()
    running = serve(function)
    management = running.management()
    with running.connect(), pytest.raises(management.exceptions.PayloadTooLargeException):
        management.post_to_connection(ConnectionId=connection_id_of(function), Data=b"x" * (MAX_MESSAGE_BYTES + 1))


def test_connections_of_another_stage_are_forbidden(serve: Callable[..., Running]) -> None:
    management = serve(FakeFunction()).management(stage="prod")
    with pytest.raises(management.exceptions.ForbiddenException):
        management.get_connection(ConnectionId="Nope0123456789A=")


# --- the template -----------------------------------------------------------------------------------

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Globals:
  Function: {Runtime: python3.13, Handler: app.handler}
Resources:
  Live:
    Type: AWS::ApiGatewayV2::Api
    Properties: {Name: live, ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.action}
  Authorizer:
    Type: AWS::ApiGatewayV2::Authorizer
    Properties:
      ApiId: !Ref Live
      AuthorizerType: REQUEST
      IdentitySource: [route.request.querystring.token]
      AuthorizerUri: !Sub arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${AuthorizerFunction.Arn}/invocations
  Integration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Live
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${LiveFunction.Arn}/invocations
  EchoIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties: {ApiId: !Ref Live, IntegrationType: AWS_PROXY, IntegrationUri: !GetAtt EchoFunction.Arn}
  ConnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Live
      RouteKey: $connect
      AuthorizationType: CUSTOM
      AuthorizerId: !Ref Authorizer
      Target: !Sub integrations/${Integration}
  DefaultRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Live, RouteKey: $default, Target: !Sub "integrations/${Integration}"}
  EchoRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Live, RouteKey: echo, Target: !Sub "integrations/${EchoIntegration}"}
  EchoRouteResponse:
    Type: AWS::ApiGatewayV2::RouteResponse
    Properties: {ApiId: !Ref Live, RouteId: !Ref EchoRoute, RouteResponseKey: $default}
  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties: {ApiId: !Ref Live, StageName: live}
  LiveFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: live/
      Environment:
        Variables:
          LIVE_CONNECTIONS_URL: !Sub https://${Live}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${Stage}
          LIVE_URL: !Sub wss://${Live}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${Stage}
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: echo/}
  AuthorizerFunction:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: authorizer/}
"""


@pytest.fixture
def template_path(tmp_path: Path) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE)
    return path


def test_the_websocket_api_is_read_from_the_template(template_path: Path) -> None:
    api = websocket_api(load_stack(template_path, overrides={}))

    assert api is not None
    assert (api.logical_id, api.stage, api.selection_path) == ("Live", "live", ("action",))
    assert api.routes == {
        "$connect": WebSocketRouteSpec("$connect", "LiveFunction", authorized=True, responds=False),
        "$default": WebSocketRouteSpec("$default", "LiveFunction", authorized=False, responds=False),
        "echo": WebSocketRouteSpec("echo", "EchoFunction", authorized=False, responds=True),
    }


def test_a_template_without_a_websocket_api_has_none(template_path: Path) -> None:
    template_path.write_text(
        textwrap.dedent("""\
        Resources:
          Http:
            Type: AWS::ApiGatewayV2::Api
            Properties: {Name: http, ProtocolType: HTTP}
    """)
    )
    assert websocket_api(load_stack(template_path, overrides={})) is None


def test_an_unsupported_route_selection_expression_is_an_error(template_path: Path) -> None:
    template_path.write_text(TEMPLATE.replace("$request.body.action", "$request.header.kind"))
    with pytest.raises(TemplateError, match="RouteSelectionExpression"):
        websocket_api(load_stack(template_path, overrides={}))


def test_the_apis_urls_resolve_to_the_local_gateway(template_path: Path) -> None:
    # Given the stack with its WebSocket API served on this machine
    stack = load_stack(template_path, overrides={})
    stack.local_apis["Live"] = "127.0.0.1:3001"

    # Then a function's execute-api URLs of it point there, over http and ws
    environment = {spec.logical_id: spec.environment for spec in functions(stack)}["LiveFunction"]
    assert environment["LIVE_CONNECTIONS_URL"] == "http://127.0.0.1:3001/live"
    assert environment["LIVE_URL"] == "ws://127.0.0.1:3001/live"


def test_without_a_local_gateway_the_urls_are_aws_shaped(template_path: Path) -> None:
    environment = {spec.logical_id: spec.environment for spec in functions(load_stack(template_path, overrides={}))}
    assert re.fullmatch(
        r"https://[0-9a-f]{10}\.execute-api\.us-east-1\.amazonaws\.com/live",
        environment["LiveFunction"]["LIVE_CONNECTIONS_URL"],
    )
