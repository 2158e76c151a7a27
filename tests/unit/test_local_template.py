"""local.template: the template read and resolved the way CloudFormation and SAM would."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from local.schedule import Job, Rate, ScheduleError, Scheduler, parse_schedule, scheduled_event
from local.template import (
    Cors,
    Stack,
    TemplateError,
    create_aws_resources,
    functions,
    http_api,
    load_stack,
    load_template,
)

TEMPLATE = """\
AWSTemplateFormatVersion: 2010-09-09
Transform: AWS::Serverless-2016-10-31

Parameters:
  Stage:
    Type: String
    Default: dev
    AllowedValues: [dev, prod]
  IdleTimeoutMinutes:
    Type: Number
    Default: 1440
  ExpiryRate:
    Type: String
    Default: 5 minutes
  CorsOrigins:
    Type: CommaDelimitedList
    Default: "http://localhost:5173,https://app.example.com"
  CursorSecretName:
    Type: AWS::SSM::Parameter::Value<String>
    Default: /sessions-api/cursor-secret

Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  IsNotProd: !Not [!Equals [!Ref Stage, prod]]

Globals:
  Function:
    Runtime: python3.13
    Timeout: 10
    MemorySize: 512
    Handler: app.lambda_handler
    Layers: [!Ref CommonLayer]
    Environment:
      Variables:
        TABLE_NAME: !Ref Table
        BUCKET_NAME: !Ref Bucket
        POWERTOOLS_SERVICE_NAME: sessions-api
        LOG_LEVEL: !If [IsProd, INFO, DEBUG]

Resources:
  HttpApi:
    Type: AWS::Serverless::HttpApi
    Properties:
      CorsConfiguration:
        AllowOrigins: !Ref CorsOrigins
        AllowMethods: [get, POST, OPTIONS]
        AllowHeaders: [Content-Type, Authorization, Idempotency-Key]
        ExposeHeaders: [ETag, Location]
        MaxAge: 600
      Auth:
        DefaultAuthorizer: JwtAuth
        Authorizers:
          JwtAuth:
            IdentitySource: $request.header.Authorization
            JwtConfiguration:
              issuer: https://issuer.example.com
              audience: [sessions-api]

  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: PK, AttributeType: S}
        - {AttributeName: SK, AttributeType: S}
        - {AttributeName: GSI1PK, AttributeType: S}
        - {AttributeName: GSI1SK, AttributeType: S}
        - {AttributeName: GSI3PK, AttributeType: S}
        - {AttributeName: GSI3SK, AttributeType: S}
      KeySchema:
        - {AttributeName: PK, KeyType: HASH}
        - {AttributeName: SK, KeyType: RANGE}
      GlobalSecondaryIndexes:
        - IndexName: GSI1
          KeySchema:
            - {AttributeName: GSI1PK, KeyType: HASH}
            - {AttributeName: GSI1SK, KeyType: RANGE}
          Projection: {ProjectionType: ALL}
        - IndexName: GSI3
          KeySchema:
            - {AttributeName: GSI3PK, KeyType: HASH}
            - {AttributeName: GSI3SK, KeyType: RANGE}
          Projection:
            ProjectionType: INCLUDE
            NonKeyAttributes: [status, created_by]
      TimeToLiveSpecification: {AttributeName: ttl, Enabled: true}
      StreamSpecification: {StreamViewType: NEW_AND_OLD_IMAGES}
      PointInTimeRecoverySpecification:
        PointInTimeRecoveryEnabled: !If [IsProd, true, !Ref AWS::NoValue]

  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      LifecycleConfiguration:
        Rules:
          - {Id: expire-exports, Status: Enabled, Prefix: exports/, ExpirationInDays: 7}

  ProdOnlyQueue:
    Type: AWS::SQS::Queue
    Condition: IsProd

  CommonLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layers/common/
      CompatibleRuntimes: [python3.13]

  SessionsFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/sessions/
      Timeout: 29
      Environment:
        Variables:
          IDLE_TIMEOUT_MINUTES: !Ref IdleTimeoutMinutes
          CURSOR_SECRET: "{{resolve:secretsmanager:sessions-api/cursor:SecretString:key}}"
          TABLE_ARN: !GetAtt Table.Arn
          OPTIONAL: !If [IsProd, yes-prod, !Ref AWS::NoValue]
      Events:
        Sessions:
          Type: HttpApi
          Properties: {ApiId: !Ref HttpApi, Path: /api/v1/sessions, Method: ANY}
        Session:
          Type: HttpApi
          Properties: {ApiId: !Ref HttpApi, Path: "/api/v1/sessions/{session_id}", Method: get}
        Health:
          Type: HttpApi
          Properties:
            ApiId: !Ref HttpApi
            Path: /api/v1/health
            Method: GET
            Auth: {Authorizer: NONE}

  DocsFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/docs/
      Events:
        Fallback:
          Type: HttpApi
          Properties: {ApiId: !Ref HttpApi, Auth: {Authorizer: NONE}}

  ExpiryFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/expiry/
      Handler: expiry.handler
      Timeout: 300
      Events:
        Every:
          Type: Schedule
          Properties:
            Schedule: !Sub rate(${ExpiryRate})
        Nightly:
          Type: Schedule
          Properties:
            Schedule: cron(0 3 * * ? *)
            Enabled: false

Outputs:
  ApiUrl:
    Value: !Sub https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/
  TableStream:
    Value: !GetAtt Table.StreamArn
  BucketObjects:
    Value: !Sub "${Bucket.Arn}/*"
"""


@pytest.fixture
def template_path(tmp_path: Path) -> Path:
    (tmp_path / "layers" / "common").mkdir(parents=True)
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE)
    return path


@pytest.fixture
def stack(template_path: Path) -> Stack:
    return load_stack(template_path, overrides={})


def output(stack: Stack, name: str) -> Any:
    return stack.resolve(stack.template["Outputs"][name]["Value"])


def test_short_form_tags_become_long_form(template_path: Path) -> None:
    # When the template is loaded
    template = load_template(template_path)

    # Then short forms are CloudFormation's long forms, and the unquoted date stays a string
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"
    assert template["Conditions"]["IsNotProd"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "Stage"}, "prod"]}]}
    assert template["Outputs"]["TableStream"]["Value"] == {"Fn::GetAtt": ["Table", "StreamArn"]}
    assert template["Outputs"]["BucketObjects"]["Value"] == {"Fn::Sub": "${Bucket.Arn}/*"}
    variables = template["Resources"]["SessionsFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["OPTIONAL"] == {"Fn::If": ["IsProd", "yes-prod", {"Ref": "AWS::NoValue"}]}


def test_a_short_form_tag_template_yaml_does_not_use_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text("Outputs:\n  Picked:\n    Value: !Select [0, [a, b]]\n")
    with pytest.raises(yaml.YAMLError, match="!Select"):
        load_template(path)


def test_join_joins_resolved_values(stack: Stack) -> None:
    assert stack.resolve({"Fn::Join": [",", ["a", {"Fn::If": ["IsProd", "b", "c"]}]]}) in ("a,b", "a,c")


def test_parameters_come_from_defaults_and_overrides(template_path: Path) -> None:
    # Given overrides named like the parameters
    stack = load_stack(template_path, overrides={"IdleTimeoutMinutes": "5", "Stage": "prod", "OTHER": "x"})

    # Then they win over the defaults, lists are split and SSM parameter types get a placeholder
    assert stack.parameters["IdleTimeoutMinutes"] == "5"
    assert stack.parameters["Stage"] == "prod"
    assert stack.parameters["ExpiryRate"] == "5 minutes"
    assert stack.parameters["CorsOrigins"] == ["http://localhost:5173", "https://app.example.com"]
    assert stack.parameters["CursorSecretName"] == "local-placeholder:ssm:/sessions-api/cursor-secret"


def test_parameter_outside_allowed_values_is_refused(template_path: Path) -> None:
    with pytest.raises(TemplateError, match="Stage"):
        load_stack(template_path, overrides={"Stage": "qa"})


def test_parameter_overrides_default_to_the_environment(template_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IdleTimeoutMinutes", "2")
    assert load_stack(template_path).parameters["IdleTimeoutMinutes"] == "2"


def test_conditions_are_evaluated(template_path: Path, stack: Stack) -> None:
    # Given the default stage (dev)
    assert stack.condition("IsProd") is False
    assert stack.condition("IsNotProd") is True
    # Then resources behind a false condition do not exist
    assert "ProdOnlyQueue" not in stack.resources()

    prod = load_stack(template_path, overrides={"Stage": "prod"})
    assert prod.condition("IsProd") is True
    assert "ProdOnlyQueue" in prod.resources("AWS::SQS::Queue")


def test_physical_names_refs_and_attributes(stack: Stack) -> None:
    assert stack.physical_name("Table") == "sessions-api-local-Table"
    assert stack.physical_name("Bucket") == "sessions-api-local-bucket"
    assert stack.resolve({"Ref": "Table"}) == "sessions-api-local-Table"
    assert stack.resolve({"Fn::GetAtt": ["Table", "Arn"]}) == (
        "arn:aws:dynamodb:us-east-1:123456789012:table/sessions-api-local-Table"
    )
    assert output(stack, "TableStream").startswith(
        "arn:aws:dynamodb:us-east-1:123456789012:table/sessions-api-local-Table/stream/"
    )
    assert stack.resolve({"Fn::GetAtt": ["Bucket", "Arn"]}) == "arn:aws:s3:::sessions-api-local-bucket"
    assert stack.resolve({"Fn::GetAtt": ["SessionsFunction", "Arn"]}) == (
        "arn:aws:lambda:us-east-1:123456789012:function:sessions-api-local-SessionsFunction"
    )
    assert stack.resolve({"Ref": "CommonLayer"}).startswith("arn:aws:lambda:us-east-1:123456789012:layer:")
    assert stack.resolve({"Ref": "ProdOnlyQueue"}) == (
        "https://sqs.us-east-1.amazonaws.com/123456789012/sessions-api-local-ProdOnlyQueue"
    )
    assert stack.resolve({"Fn::GetAtt": ["ProdOnlyQueue", "QueueName"]}) == "sessions-api-local-ProdOnlyQueue"


def test_explicit_resource_names_win() -> None:
    template = {
        "Resources": {
            "Table": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {"TableName": {"Fn::Sub": "${AWS::StackName}-t"}},
            }
        }
    }
    assert Stack(template, Path("."), {}).physical_name("Table") == "sessions-api-local-t"


def test_unknown_logical_id_is_an_error(stack: Stack) -> None:
    with pytest.raises(TemplateError, match="Nope"):
        stack.resolve({"Ref": "Nope"})


def test_intrinsic_functions(stack: Stack) -> None:
    api_id = stack.resolve({"Ref": "HttpApi"})
    assert output(stack, "ApiUrl") == f"https://{api_id}.execute-api.us-east-1.amazonaws.com/"
    assert output(stack, "BucketObjects") == "arn:aws:s3:::sessions-api-local-bucket/*"
    assert stack.resolve({"Ref": "AWS::Partition"}) == "aws"
    assert stack.resolve({"Ref": "AWS::AccountId"}) == "123456789012"
    assert stack.resolve({"Ref": "AWS::StackName"}) == "sessions-api-local"
    assert stack.resolve({"Fn::If": ["IsProd", "a", "b"]}) == "b"
    # AWS::NoValue removes the property it is the value of
    assert stack.resolve({"A": 1, "B": {"Fn::If": ["IsProd", 2, {"Ref": "AWS::NoValue"}]}}) == {"A": 1}
    assert stack.resolve(["x", {"Ref": "AWS::NoValue"}]) == ["x"]


@pytest.mark.parametrize(
    "value",
    [
        {"Fn::Select": [0, ["a", "b"]]},
        {"Fn::Sub": ["${Name}", {"Name": "x"}]},
        {"Fn::GetAtt": ["Bucket", "DomainName"]},
    ],
    ids=["a function", "a form of one", "an attribute"],
)
def test_what_template_yaml_does_not_use_is_refused(stack: Stack, value: dict[str, Any]) -> None:
    with pytest.raises(TemplateError, match="not supported locally"):
        stack.resolve(value)


def test_dynamic_references_get_a_deterministic_placeholder(stack: Stack) -> None:
    assert stack.resolve("{{resolve:ssm:/app/key:3}}") == "local-placeholder:ssm:/app/key:3"
    assert stack.resolve({"Fn::Sub": "k={{resolve:secretsmanager:s:SecretString:k}}"}) == (
        "k=local-placeholder:secretsmanager:s:SecretString:k"
    )


@mock_aws
def test_create_aws_resources_builds_the_table_and_bucket_from_the_template(stack: Stack) -> None:
    # Given moto clients
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    s3 = boto3.client("s3", region_name="us-east-1")

    # When the resources are created (twice: it is idempotent)
    created = create_aws_resources(stack, dynamodb, s3)
    create_aws_resources(stack, dynamodb, s3)

    # Then the table is exactly the template's
    assert created == {"Table": "sessions-api-local-Table", "Bucket": "sessions-api-local-bucket"}
    table = dynamodb.describe_table(TableName="sessions-api-local-Table")["Table"]
    assert table["KeySchema"] == [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    indexes = {index["IndexName"]: index for index in table["GlobalSecondaryIndexes"]}
    assert indexes["GSI1"]["Projection"] == {"ProjectionType": "ALL"}
    assert indexes["GSI3"]["Projection"] == {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": ["status", "created_by"],
    }
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    ttl = dynamodb.describe_time_to_live(TableName="sessions-api-local-Table")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}
    # And the bucket exists with its lifecycle
    rules = s3.get_bucket_lifecycle_configuration(Bucket="sessions-api-local-bucket")["Rules"]
    assert rules[0]["ID"] == "expire-exports"
    assert rules[0]["Expiration"] == {"Days": 7}


def test_functions_merge_globals_and_resolve_everything(template_path: Path, stack: Stack) -> None:
    specs = {spec.logical_id: spec for spec in functions(stack)}
    sessions = specs["SessionsFunction"]

    assert sessions.name == "sessions-api-local-SessionsFunction"
    assert sessions.code_dir == template_path.parent / "functions" / "sessions"
    assert sessions.handler == "app.lambda_handler"
    assert sessions.layer_dirs == (template_path.parent / "layers" / "common",)
    assert sessions.runtime == "python3.13"
    assert (sessions.timeout, sessions.memory_size) == (29, 512)
    assert sessions.environment == {
        "TABLE_NAME": "sessions-api-local-Table",
        "BUCKET_NAME": "sessions-api-local-bucket",
        "POWERTOOLS_SERVICE_NAME": "sessions-api",
        "LOG_LEVEL": "DEBUG",
        "IDLE_TIMEOUT_MINUTES": "1440",
        "CURSOR_SECRET": "local-placeholder:secretsmanager:sessions-api/cursor:SecretString:key",
        "TABLE_ARN": "arn:aws:dynamodb:us-east-1:123456789012:table/sessions-api-local-Table",
    }
    assert specs["ExpiryFunction"].handler == "expiry.handler"
    assert specs["ExpiryFunction"].timeout == 300
    assert specs["DocsFunction"].timeout == 10


def test_function_environment_is_overridden_by_the_shell(template_path: Path) -> None:
    stack = load_stack(template_path, overrides={"IDLE_TIMEOUT_MINUTES": "2", "UNRELATED": "x"})
    sessions = next(spec for spec in functions(stack) if spec.logical_id == "SessionsFunction")
    assert sessions.environment["IDLE_TIMEOUT_MINUTES"] == "2"
    assert "UNRELATED" not in sessions.environment


def test_http_routes_and_their_authorizers(stack: Stack) -> None:
    specs = {spec.logical_id: spec for spec in functions(stack)}

    routes = {route.key: route.authorizer for route in specs["SessionsFunction"].routes}
    assert routes == {
        "ANY /api/v1/sessions": "JwtAuth",
        "GET /api/v1/sessions/{session_id}": "JwtAuth",
        "GET /api/v1/health": None,
    }
    (fallback,) = specs["DocsFunction"].routes
    assert (fallback.key, fallback.authorizer, fallback.api) == ("$default", None, "HttpApi")
    assert specs["ExpiryFunction"].routes == ()


def test_schedules(stack: Stack) -> None:
    expiry = next(spec for spec in functions(stack) if spec.logical_id == "ExpiryFunction")
    every, nightly = expiry.schedules
    assert (every.name, every.expression, every.enabled) == ("Every", "rate(5 minutes)", True)
    assert every.rule_arn.startswith("arn:aws:events:us-east-1:123456789012:rule/")
    assert (nightly.expression, nightly.enabled) == ("cron(0 3 * * ? *)", False)


def test_http_api_cors_and_default_authorizer(stack: Stack) -> None:
    api = http_api(stack)
    assert api.logical_id == "HttpApi"
    assert api.stage == "$default"
    assert api.default_authorizer == "JwtAuth"
    assert api.cors == Cors(
        allow_origins=("http://localhost:5173", "https://app.example.com"),
        allow_methods=("GET", "POST", "OPTIONS"),
        allow_headers=("content-type", "authorization", "idempotency-key"),
        expose_headers=("etag", "location"),
        allow_credentials=False,
        max_age=600,
    )


def test_http_api_globals_apply_and_cors_true_allows_everything() -> None:
    template = {
        "Globals": {"HttpApi": {"CorsConfiguration": True}},
        "Resources": {"Api": {"Type": "AWS::Serverless::HttpApi"}},
    }
    api = http_api(Stack(template, Path("."), {}))
    assert api.cors == Cors(allow_origins=("*",), allow_methods=("*",), allow_headers=("*",))


def test_an_http_event_without_api_id_is_refused() -> None:
    # SAM's implicit API is not supported: template.yaml names its HttpApi in every event
    template = {
        "Resources": {
            "Fn": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "CodeUri": "src/",
                    "Handler": "app.handler",
                    "Events": {"Get": {"Type": "HttpApi", "Properties": {"Path": "/x", "Method": "get"}}},
                },
            }
        },
    }
    with pytest.raises(TemplateError, match="ApiId"):
        functions(Stack(template, Path("."), {}))


# --- schedule expressions (local.schedule runs the template's Schedule events) ----------------------


@pytest.mark.parametrize(
    ("expression", "period"),
    [
        ("rate(1 minute)", timedelta(minutes=1)),
        ("rate(5 minutes)", timedelta(minutes=5)),
        ("rate(2 days)", timedelta(days=2)),
    ],
)
def test_rate_expressions(expression: str, period: timedelta) -> None:
    start = datetime(2024, 1, 15, 10, 30, 12, tzinfo=UTC)
    assert parse_schedule(expression).next_after(start) == start + period


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("cron(0 3 * * ? *)", "2024-01-15T10:30:00", "2024-01-16T03:00:00"),
        ("cron(0/15 * * * ? *)", "2024-01-15T10:30:00", "2024-01-15T10:45:00"),
        ("cron(0 9 ? * MON-FRI *)", "2024-01-19T10:00:00", "2024-01-22T09:00:00"),  # Friday → Monday
        ("cron(0 12 1 JAN,JUL ? *)", "2024-01-15T00:00:00", "2024-07-01T12:00:00"),
        ("cron(30 8 ? * 1 *)", "2024-01-15T00:00:00", "2024-01-21T08:30:00"),  # 1 is Sunday
    ],
)
def test_cron_expressions(expression: str, after: str, expected: str) -> None:
    moment = datetime.fromisoformat(after).replace(tzinfo=UTC)
    assert parse_schedule(expression).next_after(moment) == datetime.fromisoformat(expected).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "expression",
    ["rate(0 minutes)", "rate(5 weeks)", "cron(0 3 * *)", "cron(0 25 * * ? *)", "cron(0 3 L * ? *)"],
)
def test_invalid_or_unsupported_schedules_are_refused(expression: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(expression)


def test_scheduled_event_has_the_eventbridge_shape() -> None:
    event = scheduled_event("arn:aws:events:us-east-1:123456789012:rule/r", datetime(2024, 1, 15, 3, tzinfo=UTC))
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["time"] == "2024-01-15T03:00:00Z"
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/r"]
    assert (event["version"], event["account"], event["region"], event["detail"]) == (
        "0",
        "123456789012",
        "us-east-1",
        {},
    )


def test_the_scheduler_fires_each_job_on_time_until_stopped() -> None:
    # Given a job every 50 ms
    fired: list[datetime] = []
    scheduler = Scheduler([Job("fast", Rate(timedelta(milliseconds=50)), fired.append)])

    # When it runs for a while and is stopped
    scheduler.start()
    time.sleep(0.3)
    scheduler.stop()
    count = len(fired)
    time.sleep(0.1)

    # Then it fired at the job's pace, and no more after stop()
    assert 3 <= count <= 7
    assert len(fired) == count
    assert all(later - earlier == timedelta(milliseconds=50) for earlier, later in itertools.pairwise(fired))
