"""local/iam.py: what IAM authorises for each call, and its rule (an explicit Deny wins, else an Allow must cover)."""

from __future__ import annotations

import pytest

from local import iam

BUCKET = "arn:aws:s3:::b"
TABLE = "arn:aws:dynamodb:us-east-1:1:table/"


def requests(service: str, operation: str, **params: object) -> list[tuple[str, str, str | None]]:
    found = iam.requests(service, operation, params, region="us-east-1", account="1")
    return [(r.action, r.resource, r.prefix) for r in found]


def test_each_call_is_the_actions_iam_checks() -> None:
    assert requests("s3", "GetObject", Bucket="b", Key="k") == [("s3:GetObject", f"{BUCKET}/k", None)]
    assert requests("s3", "PutObject", Bucket="b", Key="k", Tagging="a=1") == [
        ("s3:PutObject", f"{BUCKET}/k", None),
        ("s3:PutObjectTagging", f"{BUCKET}/k", None),
    ]
    objects = {"Objects": [{"Key": "a"}, {"Key": "b", "VersionId": "1"}]}
    assert requests("s3", "DeleteObjects", Bucket="b", Delete=objects) == [
        ("s3:DeleteObject", f"{BUCKET}/a", None),
        ("s3:DeleteObjectVersion", f"{BUCKET}/b", None),
    ]
    assert requests("s3", "ListObjectVersions", Bucket="b", Prefix="p/") == [("s3:ListBucketVersions", BUCKET, "p/")]
    items = [{"Put": {"TableName": "T"}}, {"ConditionCheck": {"TableName": "T"}}]
    assert requests("dynamodb", "TransactWriteItems", TransactItems=items) == [
        ("dynamodb:PutItem", f"{TABLE}T", None),
        ("dynamodb:ConditionCheckItem", f"{TABLE}T", None),
    ]
    assert requests("dynamodb", "Query", TableName="T", IndexName="GSI1") == [
        ("dynamodb:Query", f"{TABLE}T/index/GSI1", None)
    ]
    assert requests("sqs", "SendMessage", QueueUrl="q") == []


ROLE = iam.parse(
    [
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": f"{BUCKET}/sessions/*/payloads/run_*",
        },
        {
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": BUCKET,
            "Condition": {"StringLike": {"s3:prefix": "sessions/*"}},
        },
        {"Effect": "Allow", "Action": "dynamodb:*", "Resource": f"{TABLE}T"},
        {"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": "*"},
    ]
)


@pytest.mark.parametrize(
    ("action", "resource", "prefix", "refused"),
    [
        ("s3:GetObject", f"{BUCKET}/sessions/u/s/payloads/run_1.json", None, False),
        ("s3:GetObject", f"{BUCKET}/sessions/u/s/payloads/msg_1.json", None, True),  # another prefix
        ("s3:DeleteObject", f"{BUCKET}/sessions/u/s/payloads/run_1.json", None, True),  # another action
        ("s3:ListBucket", BUCKET, "sessions/u/", False),
        ("s3:ListBucket", BUCKET, "users/u/", True),  # the condition's prefix
        ("dynamodb:Query", f"{TABLE}T", None, False),
        ("dynamodb:Query", f"{TABLE}T/index/GSI1", None, True),  # an index is a resource of its own
        ("dynamodb:DeleteItem", f"{TABLE}T", None, True),  # an explicit Deny wins
    ],
)
def test_a_request_is_refused_unless_an_allow_covers_it_and_no_deny_does(
    action: str, resource: str, prefix: str | None, refused: bool
) -> None:
    assert iam.denied(ROLE, iam.Request(action, resource, prefix)) is refused
