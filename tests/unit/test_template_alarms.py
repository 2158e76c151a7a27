"""The template's alarms are wired: each notifies the alarm topic, covers every function and queue, and none
stays red on a quiet stack. Read through the local stack loader, so conditions and parameters apply."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from local.template import Stack, load_stack

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
ONCALL = "arn:aws:sns:us-east-1:123456789012:oncall"


def stack(**overrides: str) -> Stack:
    return load_stack(TEMPLATE, overrides=overrides)


def alarms(of: Stack) -> dict[str, dict[str, Any]]:
    return {logical_id: of.properties(logical_id) for logical_id in of.resources("AWS::CloudWatch::Alarm")}


def metric_dimensions(alarm: dict[str, Any]) -> list[Any]:
    """Every dimension value the alarm's metrics name (a plain metric or the queries of a metric-math one)."""
    metrics = [alarm] + [query["MetricStat"]["Metric"] for query in alarm.get("Metrics", []) if "MetricStat" in query]
    return [dimension["Value"] for metric in metrics for dimension in metric.get("Dimensions", [])]


@pytest.mark.parametrize(
    ("overrides", "topic"),
    [({}, "own"), ({"AlarmTopicArn": ONCALL}, ONCALL)],
    ids=["the stack's topic", "a topic of yours"],
)
def test_every_alarm_notifies_the_alarm_topic_on_alarm_and_on_recovery(overrides: dict[str, str], topic: str) -> None:
    of = stack(**overrides)
    expected = of.resolve({"Ref": "AlarmTopic"}) if topic == "own" else ONCALL
    assert ("AlarmTopic" in of.resources("AWS::SNS::Topic")) is (topic == "own")
    assert len(alarms(of)) >= 8
    for logical_id, alarm in alarms(of).items():
        assert of.resolve(alarm["AlarmActions"]) == [expected], logical_id
        assert of.resolve(alarm["OKActions"]) == [expected], logical_id


def test_the_alarm_email_is_subscribed_only_when_given() -> None:
    assert not stack().resources("AWS::SNS::Subscription")
    subscribed = stack(AlarmEmail="oncall@example.com")
    (subscription,) = subscribed.resources("AWS::SNS::Subscription")
    properties = subscribed.properties(subscription)
    assert (properties["Protocol"], subscribed.resolve(properties["Endpoint"])) == ("email", "oncall@example.com")
    assert subscribed.resolve(properties["TopicArn"]) == subscribed.resolve({"Ref": "AlarmTopic"})
    # Encrypted topic: CloudWatch may use the key to publish
    key_policy = subscribed.properties("EncryptionKey")["KeyPolicy"]["Statement"]
    assert any("cloudwatch" in str(statement["Principal"]) for statement in key_policy)


@pytest.mark.parametrize("alarm", ["FunctionErrorsAlarm", "FunctionThrottlesAlarm"])
def test_every_function_is_watched_for_errors_and_throttles(alarm: str) -> None:
    of = stack()
    watched = metric_dimensions(alarms(of)[alarm])
    for function in of.resources("AWS::Serverless::Function"):
        assert {"Ref": function} in watched, f"{alarm} does not watch {function}"


def test_every_queue_and_the_api_have_an_alarm() -> None:
    of = stack()
    watched = [value for alarm in alarms(of).values() for value in metric_dimensions(alarm)]
    for queue in of.resources("AWS::SQS::Queue"):
        assert {"Fn::GetAtt": [queue, "QueueName"]} in watched, f"no alarm watches {queue}"
    assert watched.count({"Ref": "HttpApi"}) >= 3  # 5xx and request count (the rate), latency


def test_no_alarm_stays_red_on_a_quiet_stack() -> None:
    # Only "the schedule has not run at all" may count missing data, over a whole day (the longest schedule)
    for logical_id, alarm in alarms(stack()).items():
        if alarm.get("TreatMissingData") == "breaching":
            assert logical_id == "ExpiryNotRunningAlarm"
            assert alarm["Period"] * alarm["DatapointsToAlarm"] >= 24 * 3600
        else:
            assert alarm.get("TreatMissingData") == "notBreaching", logical_id


def test_each_function_holds_only_the_rights_and_secrets_its_routes_use() -> None:
    of = stack()
    pagers = {"SessionsFunction", "MessagesFunction", "SharingFunction", "ExportsFunction"}
    for function in of.resources("AWS::Serverless::Function"):
        properties = of.properties(function)
        variables = (properties.get("Environment") or {}).get("Variables") or {}
        assert ("CURSOR_SECRET" in variables) is (function in pagers), (
            f"{function}: the cursor key where cursors are made"
        )
        statements = [s for policy in properties.get("Policies") or [] for s in policy.get("Statement", [])]
        for statement in statements:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            assert "dynamodb:DescribeTable" not in actions, function
            assert all("/index/*" not in str(resource) for resource in resources), f"{function}: name its indexes"
            if any(action.startswith("s3:Put") for action in actions):
                prefixes = [str(resource) for resource in resources]
                written = ("/exports/", "/payloads/", "/takeout/")
                assert all(any(part in p for part in written) for p in prefixes), f"{function} writes {prefixes}"
    assert "CURSOR_SECRET" not in of.template["Globals"]["Function"]["Environment"]["Variables"]


@pytest.mark.parametrize(("mode", "granted"), [("Disabled", False), ("Active", True)])
def test_x_ray_rights_only_when_tracing_is_on(mode: str, granted: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # SAM's own transform of the template: it grants X-Ray writes unless it can resolve Tracing to Disabled
    import copy
    import json

    from samtranslator.translator.transform import transform

    from local.template import load_template

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    template = copy.deepcopy(load_template(TEMPLATE))
    for resource in template["Resources"].values():
        for uri in ("CodeUri", "ContentUri"):
            if uri in (resource.get("Properties") or {}):
                resource["Properties"][uri] = "s3://bucket/code.zip"  # what `sam package` leaves there

    class Policies:
        def load(self) -> dict[str, str]:
            return {"AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"}

    roles = {
        logical_id: resource
        for logical_id, resource in transform(template, {"TracingMode": mode}, Policies())["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role"
    }
    functions = [
        resource for resource in template["Resources"].values() if resource["Type"] == "AWS::Serverless::Function"
    ]
    assert len(roles) == len(functions) == 13
    for logical_id, role in roles.items():
        assert ("AWSXrayWriteOnlyAccess" in json.dumps(role)) is granted, logical_id
