"""A function's role, held to its calls: the S3 and DynamoDB requests a function makes are checked against the
statements `template.yaml` gives its role, and refused with AccessDenied as AWS would (moto allows anything).

Only identity policies, inline in the function's `Policies`, are read (no permission boundary, no resource
policy: a bucket's Deny for insecure transport cannot apply here). A statement's `Condition` is honoured for
`s3:prefix`; any other condition key is taken as met, so this errs on the side of allowing.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# The item action IAM authorises for each kind of TransactWriteItems entry.
_DYNAMODB_ITEM_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    prefixes: tuple[str, ...] | None  # StringLike s3:prefix, when the statement has one

    def covers(self, action: str, resource: str, prefix: str | None) -> bool:
        if not any(fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in self.actions):
            return False
        if not any(fnmatch.fnmatchcase(resource, pattern) for pattern in self.resources):
            return False
        return self.prefixes is None or any(fnmatch.fnmatchcase(prefix or "", pattern) for pattern in self.prefixes)


@dataclass(frozen=True)
class Request:
    action: str  # e.g. s3:GetObject
    resource: str  # the ARN it acts on
    prefix: str | None = None  # a listing's Prefix (s3:prefix)


def parse(raw: Iterable[Mapping[str, Any]]) -> list[Statement]:
    """A role's statements, as `template.FunctionSpec.policy_statements` holds them (resolved)."""
    found = []
    for statement in raw:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        prefixes = ((statement.get("Condition") or {}).get("StringLike") or {}).get("s3:prefix")
        found.append(
            Statement(
                statement["Effect"],
                tuple(actions),
                tuple(str(resource) for resource in resources),
                None if prefixes is None else tuple(prefixes if isinstance(prefixes, list) else [prefixes]),
            )
        )
    return found


def denied(granted: list[Statement], request: Request) -> bool:
    """IAM's rule: an explicit Deny wins, else some Allow must cover the request."""
    matching = [s for s in granted if s.covers(request.action, request.resource, request.prefix)]
    return any(s.effect == "Deny" for s in matching) or not any(s.effect == "Allow" for s in matching)


def requests(service: str, operation: str, params: dict[str, Any], *, region: str, account: str) -> Iterator[Request]:
    """What IAM authorises for one call (nothing for services not checked here)."""
    if service == "s3":
        yield from _s3(operation, params)
    elif service == "dynamodb":
        yield from _dynamodb(operation, params, f"arn:aws:dynamodb:{region}:{account}:table/")


def _s3(operation: str, params: dict[str, Any]) -> Iterator[Request]:
    bucket = f"arn:aws:s3:::{params.get('Bucket', '')}"
    key = f"{bucket}/{params.get('Key', '')}"
    match operation:
        case "GetObject" | "HeadObject":
            yield Request("s3:GetObjectVersion" if params.get("VersionId") else "s3:GetObject", key)
        case "PutObject" | "CreateMultipartUpload" | "UploadPart" | "CompleteMultipartUpload":
            yield Request("s3:PutObject", key)
            if params.get("Tagging"):
                yield Request("s3:PutObjectTagging", key)
        case "CopyObject":
            source = params["CopySource"]
            name = f"{source['Bucket']}/{source['Key']}" if isinstance(source, dict) else str(source).lstrip("/")
            yield Request("s3:GetObject", f"arn:aws:s3:::{name}")
            yield Request("s3:PutObject", key)
        case "AbortMultipartUpload":
            yield Request("s3:AbortMultipartUpload", key)
        case "PutObjectTagging":
            yield Request("s3:PutObjectTagging", key)
        case "DeleteObject":
            yield Request("s3:DeleteObjectVersion" if params.get("VersionId") else "s3:DeleteObject", key)
        case "DeleteObjects":
            for entry in params["Delete"]["Objects"]:
                action = "s3:DeleteObjectVersion" if entry.get("VersionId") else "s3:DeleteObject"
                yield Request(action, f"{bucket}/{entry['Key']}")
        case "ListObjectsV2" | "ListObjects":
            yield Request("s3:ListBucket", bucket, params.get("Prefix", ""))
        case "ListObjectVersions":
            yield Request("s3:ListBucketVersions", bucket, params.get("Prefix", ""))
        case _:
            yield Request(f"s3:{operation}", bucket if "Key" not in params else key)


def _dynamodb(operation: str, params: dict[str, Any], tables: str) -> Iterator[Request]:
    match operation:
        case "TransactWriteItems":  # authorised through the item actions it contains
            for entry in params["TransactItems"]:
                ((kind, item),) = entry.items()
                yield Request(f"dynamodb:{_DYNAMODB_ITEM_ACTIONS[kind]}", tables + item["TableName"])
        case "TransactGetItems":
            for entry in params["TransactItems"]:
                yield Request("dynamodb:GetItem", tables + entry["Get"]["TableName"])
        case "BatchGetItem" | "BatchWriteItem":
            for name in params["RequestItems"]:
                yield Request(f"dynamodb:{operation}", tables + name)
        case "Query" | "Scan" if params.get("IndexName"):
            yield Request(f"dynamodb:{operation}", f"{tables}{params['TableName']}/index/{params['IndexName']}")
        case _:
            yield Request(f"dynamodb:{operation}", tables + str(params.get("TableName", "")))


def enforce(current: Callable[[], list[Statement] | None], *, region: str, account: str) -> None:
    """Check every botocore call made while `current()` names a role (None: not inside a function)."""
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    original = BaseClient._make_api_call  # type: ignore[attr-defined]
    if getattr(original, "_checks_iam", False):
        return

    def checked(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        granted = current()
        if granted is not None:
            service = client.meta.service_model.service_name
            for request in requests(service, operation, params, region=region, account=account):
                if denied(granted, request):
                    message = f"not authorized to perform: {request.action} on resource: {request.resource}"
                    raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": message}}, operation)
        return original(client, operation, params)

    checked._checks_iam = True  # type: ignore[attr-defined]
    BaseClient._make_api_call = checked  # type: ignore[attr-defined]
