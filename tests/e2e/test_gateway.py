"""The local gateway as a client sees it: API Gateway's routing, authorizer, CORS and errors, Lambda's
runtime behaviour, and `python -m local.invoke`.

Most tests run a tiny stack of their own (written into a temporary directory), so they exercise the
gateway and not the application; one checks that X-Dev-User reaches the real sessions function.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import GatewayStarter, RunningGateway

REPO = Path(__file__).resolve().parents[2]

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Parameters:
  Greeting: {Type: String, Default: hello}
Globals:
  Function:
    Runtime: python3.13
    Handler: app.handler
    Timeout: 5
    MemorySize: 256
    Layers: [!Ref Shared]
    Environment:
      Variables:
        TABLE_NAME: !Ref Table
        GREETING: !Ref Greeting
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Jwt
        Authorizers:
          Jwt:
            IdentitySource: $request.header.Authorization
            JwtConfiguration: {issuer: "https://issuer.example.com", audience: [tests]}
      CorsConfiguration:
        AllowOrigins: ["https://app.example.com"]
        AllowMethods: [GET, POST]
        AllowHeaders: [Authorization, Content-Type]
        ExposeHeaders: [ETag]
        MaxAge: 600
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: PK, AttributeType: S}]
      KeySchema: [{AttributeName: PK, KeyType: HASH}]
  Shared:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: layer/}
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: echo/
      Policies:
        - Statement:
            - {Effect: Allow, Action: dynamodb:ListTables, Resource: "*"}
      Events:
        Item: {Type: HttpApi, Properties: {ApiId: !Ref Api, Path: "/items/{item_id}", Method: ANY}}
        Public: {Type: HttpApi, Properties: {ApiId: !Ref Api, Path: /public, Method: GET, Auth: {Authorizer: NONE}}}
  Behaviours:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: behaviours/
      Timeout: 1
      Events:
        Behave: {Type: HttpApi, Properties: {ApiId: !Ref Api, Path: "/behave/{what}", Method: ANY}}
"""

ECHO = """\
import json
import os

import boto3
import shared


def handler(event, context):
    names = ["GREETING", "TABLE_NAME", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "_HANDLER",
             "AWS_ENDPOINT_URL", "AWS_REGION", "LAMBDA_TASK_ROOT"]
    body = {
        "event": event,
        "context": {
            "function_name": context.function_name,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "invoked_function_arn": context.invoked_function_arn,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "aws_request_id": context.aws_request_id,
        },
        "environment": {name: os.environ.get(name) for name in names},
        "layer": shared.NAME,
        "tables": boto3.client("dynamodb").list_tables()["TableNames"],
    }
    headers = {"content-type": "application/json", "access-control-allow-origin": "*", "etag": '"1"'}
    return {"statusCode": 200, "headers": headers, "body": json.dumps(body)}
"""

BEHAVIOURS = """\
import base64
import os
import time

import version


def handler(event, context):
    what = event["pathParameters"]["what"]
    if what == "raise":
        raise ValueError("boom")
    if what == "crash":
        os._exit(3)
    if what == "timeout":
        time.sleep(3)
    if what == "sleep":
        time.sleep(0.6)
    if what == "plain":
        return {"hello": "world"}
    if what == "dev-only":
        import moto  # in the development virtualenv, never in a Lambda runtime
    if what == "runtime-sdk":
        import boto3
        return {"boto3": boto3.__version__}
    if what == "denied":  # this function's role grants nothing
        import boto3
        from botocore.exceptions import ClientError
        try:
            boto3.client("dynamodb").list_tables()
        except ClientError as error:
            return {"code": error.response["Error"]["Code"], "message": error.response["Error"]["Message"]}
        return {"code": None}
    if what == "cookies":
        return {"statusCode": 201, "cookies": ["a=1; Path=/", "b=2"], "body": "ok"}
    if what == "binary":
        data = base64.b64encode(bytes(range(256))).decode()
        headers = {"content-type": "application/octet-stream"}
        return {"statusCode": 200, "headers": headers, "isBase64Encoded": True, "body": data}
    return {"pid": os.getpid(), "version": version.VERSION}
"""


def write_stack(directory: Path) -> Path:
    files = {
        "template.yaml": TEMPLATE,
        "echo/app.py": ECHO,
        "behaviours/app.py": BEHAVIOURS,
        "behaviours/version.py": "VERSION = 1\n",
        "layer/shared.py": 'NAME = "from the layer"\n',
    }
    for name, text in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(textwrap.dedent(text))
    return directory / "template.yaml"


@pytest.fixture(scope="module")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("stack")
    write_stack(directory)
    return directory


@pytest.fixture(scope="module")
def mini(start_gateway: GatewayStarter, stack_dir: Path) -> Iterator[RunningGateway]:
    with start_gateway(stack_dir / "template.yaml") as running:
        yield running


@pytest.fixture(scope="module")
def anonymous(start_gateway: GatewayStarter, stack_dir: Path) -> Iterator[RunningGateway]:
    """The same stack with no default caller, and a function variable overridden from the shell."""
    with start_gateway(stack_dir / "template.yaml", {"DEV_USER_ID": "", "GREETING": "overridden"}) as running:
        yield running


def echo(gateway: RunningGateway, path: str, user: str | None = None, **kwargs: Any) -> dict[str, Any]:
    with gateway.as_user(user) as client:
        response = client.request(kwargs.pop("method", "GET"), path, **kwargs)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- API Gateway ------------------------------------------------------------------------------------


def test_an_unknown_route_is_the_gateways_own_404(mini: RunningGateway) -> None:
    with mini.as_user("alice") as client:
        unknown = client.get("/nowhere")
        wrong_method = client.post("/public")

    for response in (unknown, wrong_method):
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"message": "Not Found"}
        assert response.headers["apigw-requestid"]


def test_the_event_is_what_api_gateway_sends(mini: RunningGateway) -> None:
    # When a request with an encoded path parameter, repeated query keys and cookies comes in
    body = echo(
        mini,
        "/items/a%2Fb?tag=x&tag=y",
        user="alice",
        headers={"X-Dev-Email": "alice@example.com", "Cookie": "theme=dark; lang=en", "X-Custom": "1"},
    )

    # Then the function gets the payload 2.0 event with the local authorizer's claims
    event = body["event"]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "ANY /items/{item_id}"
    assert event["pathParameters"] == {"item_id": "a/b"}
    assert event["rawQueryString"] == "tag=x&tag=y"
    assert event["queryStringParameters"] == {"tag": "x,y"}
    assert event["cookies"] == ["theme=dark", "lang=en"]
    assert event["headers"]["x-custom"] == "1"
    assert "cookie" not in event["headers"]
    assert event["requestContext"]["http"]["method"] == "GET"
    claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    assert (claims["sub"], claims["email"]) == ("alice", "alice@example.com")


def test_without_x_dev_user_the_caller_is_dev_user_id(mini: RunningGateway) -> None:
    event = echo(mini, "/items/1")["event"]
    assert event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] == "dev-user"


def test_a_route_without_authorizer_gets_no_claims(mini: RunningGateway) -> None:
    event = echo(mini, "/public", user="alice")["event"]
    assert "authorizer" not in event["requestContext"]


def test_a_binary_body_arrives_base64_encoded(mini: RunningGateway) -> None:
    data = bytes(range(256))
    headers = {"Content-Type": "application/octet-stream"}
    event = echo(mini, "/items/1", method="POST", data=data, headers=headers)["event"]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == data


def test_without_a_caller_the_authorizer_answers_401(anonymous: RunningGateway) -> None:
    with anonymous.as_user(None) as client:
        response = client.get("/items/1")
        public = client.get("/public")
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}
    assert public.status_code == 200
    assert (
        echo(anonymous, "/items/1", user="bob")["event"]["requestContext"]["authorizer"]["jwt"]["claims"]["sub"]
        == "bob"
    )


def test_cors_preflight_is_answered_by_the_gateway(mini: RunningGateway) -> None:
    with mini.as_user(None) as client:
        response = client.options(
            "/public",
            headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"},
        )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "https://app.example.com"
    assert response.headers["access-control-allow-methods"] == "GET,POST"
    assert response.headers["access-control-allow-headers"] == "authorization,content-type"
    assert response.headers["access-control-max-age"] == "600"


def test_cors_headers_come_from_the_api_not_the_function(mini: RunningGateway) -> None:
    with mini.as_user(None) as client:
        allowed = client.get("/public", headers={"Origin": "https://app.example.com"})
        foreign = client.get("/public", headers={"Origin": "https://evil.example.com"})
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert allowed.headers["access-control-expose-headers"] == "etag"
    assert "access-control-allow-origin" not in foreign.headers


# --- Lambda -----------------------------------------------------------------------------------------


def test_the_function_runs_with_its_own_environment_layer_and_aws(mini: RunningGateway) -> None:
    body = echo(mini, "/public")
    environment = body["environment"]
    assert environment["GREETING"] == "hello"
    assert environment["TABLE_NAME"] == "sessions-api-local-Table"
    assert environment["AWS_LAMBDA_FUNCTION_NAME"] == "sessions-api-local-Echo"
    assert environment["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert environment["_HANDLER"] == "app.handler"
    assert environment["AWS_ENDPOINT_URL"] == mini.moto_url
    assert environment["AWS_REGION"] == "us-east-1"
    assert environment["LAMBDA_TASK_ROOT"].endswith("echo")
    assert body["layer"] == "from the layer"
    assert body["tables"] == ["sessions-api-local-Table"]
    context = body["context"]
    assert context["function_name"] == "sessions-api-local-Echo"
    assert context["memory_limit_in_mb"] == "256"
    assert context["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:sessions-api-local-Echo"
    assert 0 < context["remaining_ms"] <= 5000
    assert context["aws_request_id"]


def test_a_shell_variable_overrides_the_functions_variable(anonymous: RunningGateway) -> None:
    assert echo(anonymous, "/public")["environment"]["GREETING"] == "overridden"


def test_results_become_http_responses(mini: RunningGateway) -> None:
    with mini.as_user("alice") as client:
        plain = client.get("/behave/plain")
        cookies = client.get("/behave/cookies")
        binary = client.get("/behave/binary")

    assert (plain.status_code, plain.headers["content-type"], plain.json()) == (
        200,
        "application/json",
        {"hello": "world"},
    )
    assert cookies.status_code == 201
    assert cookies.raw.headers.getlist("set-cookie") == ["a=1; Path=/", "b=2"]
    assert cookies.text == "ok"
    assert binary.content == bytes(range(256))


def test_a_function_sees_the_lambda_runtime_not_the_development_virtualenv(mini: RunningGateway) -> None:
    # What runs locally is what Lambda would run: the runtime's boto3 at its pinned version, and no package
    # only the developer has installed (a missing dependency fails here as it would in AWS)
    pinned = (REPO / "local" / "runtime-requirements.txt").read_text()
    with mini.as_user("alice") as client:
        sdk = client.get("/behave/runtime-sdk")
        dev_only = client.get("/behave/dev-only")
    assert sdk.status_code == 200 and f"boto3=={sdk.json()['boto3']}" in pinned
    assert dev_only.status_code == 500
    assert "No module named 'moto'" in mini.log()


def test_a_function_is_held_to_its_role(mini: RunningGateway) -> None:
    # Echo's role in the template grants dynamodb:ListTables; Behaviours' grants nothing
    with mini.as_user("alice") as client:
        granted = client.get("/items/1")
        refused = client.get("/behave/denied")
    assert granted.status_code == 200 and isinstance(granted.json()["tables"], list)
    assert refused.json() == {
        "code": "AccessDeniedException",
        "message": "not authorized to perform: dynamodb:ListTables on resource: "
        "arn:aws:dynamodb:us-east-1:123456789012:table/",
    }


@pytest.mark.parametrize(("what", "log_line"), [("raise", "[ERROR] ValueError: boom"), ("timeout", "Task timed out")])
def test_a_failed_invocation_is_a_500_and_is_logged(mini: RunningGateway, what: str, log_line: str) -> None:
    with mini.as_user("alice") as client:
        response = client.get(f"/behave/{what}")
        after = client.get("/behave/pid")
    assert response.status_code == 500
    assert response.json() == {"message": "Internal Server Error"}
    assert log_line in mini.log()
    assert after.status_code == 200


def test_a_crashed_worker_is_replaced(mini: RunningGateway) -> None:
    with mini.as_user("alice") as client:
        crashed = client.get("/behave/crash")
        after = client.get("/behave/pid")
    assert crashed.status_code == 500
    assert "Runtime exited with error: exit status 3" in mini.log()
    assert after.status_code == 200


def test_concurrent_requests_run_in_parallel_workers(mini: RunningGateway) -> None:
    def call(_: int) -> dict[str, Any]:
        return echo(mini, "/behave/sleep", user="alice")

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(call, range(4)))  # the workers' cold starts
        started = time.monotonic()
        results = list(pool.map(call, range(4)))
        elapsed = time.monotonic() - started

    assert all(result["version"] == 1 for result in results)
    assert len({result["pid"] for result in results}) == 4
    assert elapsed < 4 * 0.6


def test_changed_code_is_picked_up_without_a_restart(mini: RunningGateway, stack_dir: Path) -> None:
    version = stack_dir / "behaviours" / "version.py"
    assert echo(mini, "/behave/pid")["version"] == 1
    version.write_text("VERSION = 2\n")
    os.utime(version, (time.time() + 5, time.time() + 5))
    assert echo(mini, "/behave/pid")["version"] == 2


# --- python -m local.invoke -------------------------------------------------------------------------


def invoke(*arguments: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "local.invoke", *arguments],
        cwd=REPO,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_invoke_runs_a_function_once_on_a_moto_of_its_own(tmp_path: Path) -> None:
    template = write_stack(tmp_path)
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pathParameters": {"what": "plain"}}))

    result = invoke("Behaviours", "-e", str(event), "--template", str(template))

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"hello": "world"}
    assert "starting a moto server" in result.stderr


def test_invoke_uses_the_running_stack(mini: RunningGateway, stack_dir: Path) -> None:
    state_file = mini.state_file
    event = json.dumps({"version": "2.0", "requestContext": {}})

    result = invoke(
        "Echo",
        "-",
        "--template",
        str(stack_dir / "template.yaml"),
        "--state-file",
        str(state_file),
        stdin=event,
    )

    assert result.returncode == 0, result.stderr
    body = json.loads(json.loads(result.stdout)["body"])
    assert body["environment"]["AWS_ENDPOINT_URL"] == mini.moto_url
    assert "starting a moto server" not in result.stderr


def test_invoke_reports_a_failure_like_lambda(tmp_path: Path) -> None:
    template = write_stack(tmp_path)
    event = json.dumps({"pathParameters": {"what": "raise"}})

    result = invoke("Behaviours", "-e", "-", "--template", str(template), stdin=event)

    assert result.returncode == 1
    error = json.loads(result.stdout)
    assert (error["errorType"], error["errorMessage"]) == ("ValueError", "boom")
    assert "Traceback" in result.stderr


# --- the real stack ---------------------------------------------------------------------------------


def test_x_dev_user_reaches_the_sessions_function(gateway: RunningGateway) -> None:
    with gateway.as_user("alice-e2e") as alice, gateway.as_user("bob-e2e") as bob:
        created = alice.post("/api/v1/sessions", json={"title": "Alice's"})
        assert created.status_code == 201, created.text
        session_id = created.json()["session_id"]

        assert created.json()["created_by"] == "alice-e2e"
        assert session_id in [session["session_id"] for session in alice.get("/api/v1/sessions").json()["sessions"]]
        assert session_id not in [session["session_id"] for session in bob.get("/api/v1/sessions").json()["sessions"]]
