"""template.yaml read the way CloudFormation and SAM read it, resolved for a local stack.

`load_stack()` gives a `Stack` (parameters, conditions, local physical names, intrinsic resolution);
`create_aws_resources()` creates its tables and buckets in moto; `functions()`, `http_api()` and
`websocket_api()` describe what the local gateway has to serve. Only the intrinsic functions and resource
kinds template.yaml uses are supported: anything else is a TemplateError (an unknown short-form tag, a YAML
error).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
STACK_NAME = "sessions-api-local"

NO_AUTHORIZER = "NONE"

URL_SUFFIX = "amazonaws.com"

_PSEUDO_PARAMETERS: dict[str, Any] = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT_ID,
    "AWS::StackName": STACK_NAME,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": URL_SUFFIX,
}


class TemplateError(Exception):
    """The template asks for something that cannot be resolved locally."""


# --- YAML with CloudFormation short-form tags -------------------------------------------------------


class _CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader plus the short-form tags template.yaml uses; dates stay strings, as CloudFormation reads them."""


_CloudFormationLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

_SHORT_FORM_FUNCTIONS = ("Sub", "GetAtt", "If", "Equals", "Not", "Join")


def _construct_node(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


def _add_short_form(tag: str, key: str) -> None:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        value = _construct_node(loader, node)
        if key == "Fn::GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {key: value}

    _CloudFormationLoader.add_constructor(tag, construct)


_add_short_form("!Ref", "Ref")
for _name in _SHORT_FORM_FUNCTIONS:
    _add_short_form(f"!{_name}", f"Fn::{_name}")


def load_template(path: str | os.PathLike[str] = "template.yaml") -> dict[str, Any]:
    """The template as a dict, every short-form tag turned into its long form (`{"Fn::Sub": ...}`)."""
    with open(path, encoding="utf-8") as stream:
        template = yaml.load(stream, Loader=_CloudFormationLoader)  # noqa: S506 - a SafeLoader subclass  # nosec B506
    if not isinstance(template, dict):
        raise TemplateError(f"{path} is not a CloudFormation template")
    return template


# --- the stack: parameters, conditions, names, intrinsic functions ----------------------------------


class _NoValue:
    """`AWS::NoValue`: removes the property (or list item) that resolves to it."""


_NO_VALUE = _NoValue()
_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")
_DYNAMIC_REFERENCE = re.compile(r"\{\{resolve:([a-z-]+):([^}]*)\}\}")

_NAME_PROPERTY = {
    "AWS::DynamoDB::Table": "TableName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::Serverless::Function": "FunctionName",
    "AWS::Serverless::LayerVersion": "LayerName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
}
_ARN_FORMAT = {
    "AWS::DynamoDB::Table": "arn:aws:dynamodb:{region}:{account}:table/{name}",
    "AWS::S3::Bucket": "arn:aws:s3:::{name}",
    "AWS::Serverless::Function": "arn:aws:lambda:{region}:{account}:function:{name}",
    "AWS::Serverless::LayerVersion": "arn:aws:lambda:{region}:{account}:layer:{name}:1",
    "AWS::SQS::Queue": "arn:aws:sqs:{region}:{account}:{name}",
    "AWS::SNS::Topic": "arn:aws:sns:{region}:{account}:{name}",
    "AWS::Logs::LogGroup": "arn:aws:logs:{region}:{account}:log-group:{name}:*",
}


def _to_str(value: Any) -> str:
    """A scalar as CloudFormation passes it on: booleans lower-case, numbers as written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _dynamic_placeholder(service: str, reference: str) -> str:
    return f"local-placeholder:{service}:{reference}"


def _replace_dynamic_references(text: str) -> str:
    # {{resolve:ssm:...}} / {{resolve:secretsmanager:...}} need the real account: a stable stand-in lets
    # the function start; code that truly needs the secret has to be given one through the environment.
    return _DYNAMIC_REFERENCE.sub(lambda match: _dynamic_placeholder(match[1], match[2]), text)


def _fake_api_id(logical_id: str) -> str:
    return hashlib.sha256(logical_id.encode()).hexdigest()[:10]


def _execute_api_host(logical_id: str) -> str:
    """The API's default domain in AWS (`<api id>.execute-api.<region>.amazonaws.com`)."""
    return f"{_fake_api_id(logical_id)}.execute-api.{REGION}.{URL_SUFFIX}"


@dataclass
class Stack:
    """A template deployed "locally": nothing is created, but every name and intrinsic has a value."""

    template: dict[str, Any]
    base_dir: Path
    overrides: Mapping[str, str]
    parameters: dict[str, Any] = field(init=False)
    # APIs served on this machine, by logical id: "127.0.0.1:3001". Their execute-api URLs resolve there, so
    # a function given `https://${LiveApi}.execute-api...` reaches the local gateway (plain http and ws).
    local_apis: dict[str, str] = field(init=False, default_factory=dict)
    _conditions: dict[str, bool] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.parameters = {
            name: self._parameter_value(name, spec) for name, spec in (self.template.get("Parameters") or {}).items()
        }

    def _parameter_value(self, name: str, spec: dict[str, Any]) -> Any:
        raw = self.overrides.get(name, spec.get("Default"))
        if raw is None:
            raise TemplateError(f"parameter {name} has no Default: set {name} in the environment")
        kind = str(spec.get("Type", "String"))
        if kind.startswith("AWS::SSM::Parameter::Value<"):
            return _dynamic_placeholder("ssm", _to_str(raw))
        if kind == "CommaDelimitedList" or kind.startswith("List<"):
            items = raw if isinstance(raw, list) else _to_str(raw).split(",")
            return [_to_str(item).strip() for item in items]
        value = _to_str(raw)
        allowed = [_to_str(item) for item in spec.get("AllowedValues", [])]
        if allowed and value not in allowed:
            raise TemplateError(f"parameter {name}={value!r} is not one of {allowed}")
        return value

    # Resources ---------------------------------------------------------------------------------------

    def resources(self, resource_type: str | None = None) -> dict[str, dict[str, Any]]:
        """Resources whose condition holds (all of them, or those of one type), by logical id."""
        return {
            logical_id: resource
            for logical_id, resource in (self.template.get("Resources") or {}).items()
            if (resource_type is None or resource.get("Type") == resource_type)
            and ("Condition" not in resource or self.condition(resource["Condition"]))
        }

    def resource_type(self, logical_id: str) -> str:
        resource = (self.template.get("Resources") or {}).get(logical_id)
        if resource is None:
            raise TemplateError(f"unknown logical id {logical_id!r}")
        return str(resource["Type"])

    def properties(self, logical_id: str) -> dict[str, Any]:
        """The resource's Properties, unresolved."""
        resource = (self.template.get("Resources") or {}).get(logical_id) or {}
        return resource.get("Properties") or {}

    def physical_name(self, logical_id: str) -> str:
        """The name the resource gets locally: its own name property if set, else stack + logical id."""
        resource_type = self.resource_type(logical_id)
        name_property = _NAME_PROPERTY.get(resource_type)
        explicit = self.properties(logical_id).get(name_property) if name_property else None
        if explicit is not None:
            return _to_str(self.resolve(explicit))
        name = f"{STACK_NAME}-{logical_id}"
        return name.lower() if resource_type == "AWS::S3::Bucket" else name

    def arn(self, logical_id: str) -> str:
        resource_type = self.resource_type(logical_id)
        service = resource_type.split("::")[1].lower()
        generic = f"arn:aws:{service}:{{region}}:{{account}}:{resource_type.split('::')[-1].lower()}/{{name}}"
        return _ARN_FORMAT.get(resource_type, generic).format(
            region=REGION, account=ACCOUNT_ID, name=self.physical_name(logical_id)
        )

    # Conditions --------------------------------------------------------------------------------------

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions = self.template.get("Conditions") or {}
            if name not in conditions:
                raise TemplateError(f"unknown condition {name!r}")
            self._conditions[name] = self._evaluate(conditions[name])
        return self._conditions[name]

    def _evaluate(self, expression: Any) -> bool:
        if not (isinstance(expression, dict) and len(expression) == 1):
            raise TemplateError(f"not a condition: {expression!r}")
        ((function, argument),) = expression.items()
        match function:
            case "Fn::Equals":
                left, right = (self.resolve(item) for item in argument)
                return _to_str(left) == _to_str(right)
            case "Fn::Not":
                return not self._evaluate(argument[0])
        raise TemplateError(f"unsupported condition function {function}")

    # Intrinsic functions -----------------------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        """`value` with every intrinsic function, pseudo parameter and dynamic reference replaced."""
        resolved = self._resolve(value)
        return None if resolved is _NO_VALUE else resolved

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            if len(value) == 1:
                ((key, argument),) = value.items()
                if key == "Ref" or key.startswith("Fn::"):
                    return self._call(key, argument)
            resolved = {key: self._resolve(item) for key, item in value.items()}
            return {key: item for key, item in resolved.items() if item is not _NO_VALUE}
        if isinstance(value, list):
            return [item for item in map(self._resolve, value) if item is not _NO_VALUE]
        if isinstance(value, str):
            return _replace_dynamic_references(value)
        return value

    def _call(self, function: str, argument: Any) -> Any:
        match function:
            case "Ref":
                return self._ref(argument)
            case "Fn::Sub" if isinstance(argument, str):
                return self._sub(argument)
            case "Fn::GetAtt" if isinstance(argument, list):
                logical_id, attribute = argument
                return self.get_att(logical_id, attribute)
            case "Fn::If":
                name, if_true, if_false = argument
                return self._resolve(if_true if self.condition(name) else if_false)
            case "Fn::Join" if isinstance(argument, list):
                delimiter, values = argument
                return delimiter.join(_to_str(item) for item in self._resolve(values))
        raise TemplateError(f"{function} {argument!r} is not supported locally")

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in _PSEUDO_PARAMETERS:
            return _PSEUDO_PARAMETERS[name]
        if name in self.parameters:
            return self.parameters[name]
        resource_type = self.resource_type(name)
        if resource_type == "AWS::ApiGatewayV2::Stage":
            return _to_str(self.resolve(self.properties(name)["StageName"]))
        if resource_type == "AWS::Serverless::HttpApi" or resource_type.startswith("AWS::ApiGatewayV2::"):
            return _fake_api_id(name)  # an API's, integration's, route's or authorizer's id
        if resource_type in ("AWS::Serverless::LayerVersion", "AWS::SNS::Topic"):
            return self.arn(name)
        if resource_type == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{self.physical_name(name)}"
        return self.physical_name(name)

    def get_att(self, logical_id: str, attribute: str) -> str:
        """A plausible value for `!GetAtt logical_id.attribute`."""
        match attribute:
            case "Arn":
                return self.arn(logical_id)
            case "StreamArn":
                return f"{self.arn(logical_id)}/stream/1970-01-01T00:00:00.000"
            case "QueueName":
                return self.physical_name(logical_id)
        raise TemplateError(f"!GetAtt {logical_id}.{attribute} is not supported locally")

    def _sub(self, text: str) -> str:
        def substitute(match: re.Match[str]) -> str:
            name = match[1].strip()
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return _to_str(self._ref(name))

        return self._localized(_replace_dynamic_references(_SUB_VARIABLE.sub(substitute, text)))

    def _localized(self, text: str) -> str:
        """`text` with the URLs of locally served APIs pointing at them: https → http, wss → ws."""
        for logical_id, address in self.local_apis.items():
            host = _execute_api_host(logical_id)
            text = text.replace(f"https://{host}", f"http://{address}").replace(f"wss://{host}", f"ws://{address}")
        return text


def load_stack(path: str | os.PathLike[str] = "template.yaml", overrides: Mapping[str, str] | None = None) -> Stack:
    """The stack of the template at `path`.

    `overrides` (default: the process environment) overrides parameters of the same name and, in
    `functions()`, a function's environment variables of the same name.
    """
    return Stack(load_template(path), Path(path).resolve().parent, os.environ if overrides is None else overrides)


# --- moto resources ---------------------------------------------------------------------------------


def _as_bool(value: Any) -> bool:
    return _to_str(value).lower() == "true"


def _throughput(value: dict[str, Any]) -> dict[str, int]:
    return {key: int(value[key]) for key in ("ReadCapacityUnits", "WriteCapacityUnits")}


def _index_request(index: dict[str, Any], provisioned: bool) -> dict[str, Any]:
    request = {key: index[key] for key in ("IndexName", "KeySchema", "Projection")}
    if provisioned:
        request["ProvisionedThroughput"] = _throughput(index["ProvisionedThroughput"])
    return request


def _table_request(name: str, properties: dict[str, Any]) -> dict[str, Any]:
    """The CreateTable request for a resolved `AWS::DynamoDB::Table`'s properties."""
    billing_mode = properties.get("BillingMode", "PROVISIONED")
    provisioned = billing_mode == "PROVISIONED"
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": properties["KeySchema"],
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "BillingMode": billing_mode,
    }
    if provisioned:
        request["ProvisionedThroughput"] = _throughput(properties["ProvisionedThroughput"])
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if properties.get(key):
            # LSIs share the table's throughput, so only GSIs carry their own.
            request[key] = [
                _index_request(index, provisioned and key == "GlobalSecondaryIndexes") for index in properties[key]
            ]
    stream = properties.get("StreamSpecification")
    if stream:
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    return request


def _lifecycle_filter(rule: dict[str, Any]) -> dict[str, Any]:
    prefix = rule.get("Prefix", "")
    tags = [{"Key": tag["Key"], "Value": tag["Value"]} for tag in rule.get("TagFilters") or ()]
    if not tags:
        return {"Prefix": prefix}
    if len(tags) == 1 and not prefix:
        return {"Tag": tags[0]}
    return {"And": {"Prefix": prefix, "Tags": tags}}


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A lifecycle rule in CloudFormation's flattened shape, in the S3 API's shape."""
    converted: dict[str, Any] = {
        "ID": rule.get("Id", "rule"),
        "Status": rule["Status"],
        "Filter": _lifecycle_filter(rule),
    }
    expiration: dict[str, Any] = {}
    if "ExpirationInDays" in rule:
        expiration["Days"] = int(rule["ExpirationInDays"])
    if _as_bool(rule.get("ExpiredObjectDeleteMarker", False)):
        expiration["ExpiredObjectDeleteMarker"] = True
    if expiration:
        converted["Expiration"] = expiration
    noncurrent_days = (rule.get("NoncurrentVersionExpiration") or {}).get(
        "NoncurrentDays", rule.get("NoncurrentVersionExpirationInDays")
    )
    if noncurrent_days is not None:
        converted["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(noncurrent_days)}
    if "AbortIncompleteMultipartUpload" in rule:
        days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        converted["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    return converted


def create_aws_resources(stack: Stack, dynamodb_client: Any, s3_client: Any) -> dict[str, str]:
    """Create the stack's tables and buckets (idempotently); returns physical names by logical id."""
    created: dict[str, str] = {}
    for logical_id, resource in stack.resources("AWS::DynamoDB::Table").items():
        name = stack.physical_name(logical_id)
        properties = stack.resolve(resource.get("Properties") or {})
        with contextlib.suppress(dynamodb_client.exceptions.ResourceInUseException):
            dynamodb_client.create_table(**_table_request(name, properties))
        ttl = properties.get("TimeToLiveSpecification")
        if ttl and _as_bool(ttl.get("Enabled", False)):
            dynamodb_client.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
        created[logical_id] = name
    for logical_id, resource in stack.resources("AWS::S3::Bucket").items():
        name = stack.physical_name(logical_id)
        properties = stack.resolve(resource.get("Properties") or {})
        with contextlib.suppress(s3_client.exceptions.BucketAlreadyOwnedByYou):
            s3_client.create_bucket(Bucket=name)
        versioning = properties.get("VersioningConfiguration")
        if versioning:
            s3_client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning["Status"]})
        rules = (properties.get("LifecycleConfiguration") or {}).get("Rules")
        if rules:
            s3_client.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration={"Rules": [_lifecycle_rule(rule) for rule in rules]}
            )
        created[logical_id] = name
    return created


# --- what the gateway serves ------------------------------------------------------------------------


@dataclass(frozen=True)
class Cors:
    allow_origins: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    allow_credentials: bool = False
    max_age: int | None = None


@dataclass(frozen=True)
class HttpApiSpec:
    logical_id: str
    api_id: str
    stage: str
    cors: Cors | None
    default_authorizer: str | None
    authorizers: tuple[str, ...]


@dataclass(frozen=True)
class RouteSpec:
    method: str  # upper case, "ANY" for any method
    path: str  # "/api/v1/sessions/{session_id}", or "$default"
    api: str  # logical id of the HttpApi
    authorizer: str | None

    @property
    def key(self) -> str:
        """API Gateway's route key: `"ANY /api/v1/sessions/{session_id}"` or `"$default"`."""
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"


@dataclass(frozen=True)
class ScheduleSpec:
    name: str  # the event's name in the function's Events
    expression: str  # "rate(5 minutes)" or "cron(0 3 * * ? *)"
    enabled: bool
    input: str | None  # the event to send instead of the Scheduled Event, as JSON text
    rule_arn: str


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    layer_dirs: tuple[Path, ...]
    runtime: str | None
    timeout: int
    memory_size: int
    environment: Mapping[str, str]
    log_format: str  # LoggingConfig.LogFormat: "Text" or "JSON"
    application_log_level: str | None  # LoggingConfig.ApplicationLogLevel
    routes: tuple[RouteSpec, ...]
    schedules: tuple[ScheduleSpec, ...]
    # The statements of its inline `Policies`, resolved: what local/iam.py holds its calls to.
    policy_statements: tuple[Mapping[str, Any], ...] = ()


def _is_intrinsic(value: Any) -> bool:
    if not (isinstance(value, dict) and len(value) == 1):
        return False
    key = next(iter(value))
    return key == "Ref" or key.startswith("Fn::")


def _merge_globals(global_properties: Any, properties: Any) -> Any:
    """SAM's Globals rule: maps merge, lists add up (globals first), anything else the resource wins."""
    if properties is None:
        return global_properties
    if isinstance(global_properties, dict) and isinstance(properties, dict):
        if _is_intrinsic(global_properties) or _is_intrinsic(properties):
            return properties
        merged = dict(global_properties)
        for key, value in properties.items():
            merged[key] = _merge_globals(global_properties.get(key), value)
        return merged
    if isinstance(global_properties, list) and isinstance(properties, list):
        return global_properties + properties
    return properties


def _global_properties(stack: Stack, section: str) -> dict[str, Any]:
    return (stack.template.get("Globals") or {}).get(section) or {}


def _cors(value: Any) -> Cors | None:
    if not value:
        return None
    if value is True or _to_str(value) == "true":
        return Cors(allow_origins=("*",), allow_methods=("*",), allow_headers=("*",))

    def items(key: str) -> tuple[str, ...]:
        return tuple(_to_str(item) for item in value.get(key) or ())

    max_age = value.get("MaxAge")
    return Cors(
        allow_origins=items("AllowOrigins"),
        allow_methods=tuple(method.upper() for method in items("AllowMethods")),
        allow_headers=tuple(header.lower() for header in items("AllowHeaders")),
        expose_headers=tuple(header.lower() for header in items("ExposeHeaders")),
        allow_credentials=_as_bool(value.get("AllowCredentials", False)),
        max_age=None if max_age is None else int(max_age),
    )


def _http_api_spec(stack: Stack, logical_id: str, properties: dict[str, Any]) -> HttpApiSpec:
    resolved = stack.resolve(_merge_globals(_global_properties(stack, "HttpApi"), properties))
    auth = resolved.get("Auth") or {}
    return HttpApiSpec(
        logical_id=logical_id,
        api_id=_fake_api_id(logical_id),
        stage=_to_str(resolved.get("StageName", "$default")),
        cors=_cors(resolved.get("CorsConfiguration")),
        default_authorizer=auth.get("DefaultAuthorizer"),
        authorizers=tuple(auth.get("Authorizers") or ()),
    )


def http_apis(stack: Stack) -> dict[str, HttpApiSpec]:
    """The stack's HTTP APIs by logical id."""
    return {
        logical_id: _http_api_spec(stack, logical_id, resource.get("Properties") or {})
        for logical_id, resource in stack.resources("AWS::Serverless::HttpApi").items()
    }


def http_api(stack: Stack) -> HttpApiSpec:
    """The stack's single HTTP API (the local gateway serves one)."""
    apis = http_apis(stack)
    if len(apis) != 1:
        raise TemplateError(f"expected exactly one HTTP API, found {sorted(apis) or 'none'}")
    return next(iter(apis.values()))


@dataclass(frozen=True)
class WebSocketRouteSpec:
    key: str  # "$connect", "$disconnect", "$default", or a custom route key such as "subscribe"
    function: str  # logical id of the function its Lambda proxy integration invokes
    authorized: bool  # an authorizer guards it (API Gateway allows one on $connect only)
    responds: bool  # a RouteResponse makes it two-way: the function's result goes back to the client


@dataclass(frozen=True)
class WebSocketApiSpec:
    logical_id: str
    api_id: str
    stage: str
    selection_path: tuple[str, ...]  # RouteSelectionExpression `$request.body.action` → ("action",)
    routes: Mapping[str, WebSocketRouteSpec]  # by route key


_SELECTION_EXPRESSION = re.compile(r"^\$\{?request\.body\.([A-Za-z0-9_.]+)\}?$")
_INTEGRATION_FUNCTION = re.compile(r"/functions/(arn:[^/]+)/invocations$")


def _by_api(stack: Stack, resource_type: str, api: str) -> dict[str, dict[str, Any]]:
    """The resources of one type that belong to the API (`ApiId: !Ref <api>`), unresolved, by logical id."""
    return {
        logical_id: resource.get("Properties") or {}
        for logical_id, resource in stack.resources(resource_type).items()
        if (resource.get("Properties") or {}).get("ApiId") == {"Ref": api}
    }


def _integration_function(stack: Stack, api: str, target: str) -> str:
    """The logical id of the function behind a route's `Target: integrations/<integration id>`."""
    integrations = {
        _fake_api_id(logical_id): properties
        for logical_id, properties in _by_api(stack, "AWS::ApiGatewayV2::Integration", api).items()
    }
    properties = integrations.get(target.removeprefix("integrations/"))
    if properties is None or properties.get("IntegrationType") != "AWS_PROXY":
        raise TemplateError(f"{api}: only routes with a Lambda proxy integration run locally, not {target!r}")
    uri = _to_str(stack.resolve(properties["IntegrationUri"]))
    match = _INTEGRATION_FUNCTION.search(uri)
    functions_by_arn = {
        stack.arn(logical_id): logical_id for logical_id in stack.resources("AWS::Serverless::Function")
    }
    function = functions_by_arn.get(match[1] if match else uri)
    if function is None:
        raise TemplateError(f"{api}: the integration {uri!r} names no function of the template")
    return function


def websocket_api(stack: Stack) -> WebSocketApiSpec | None:
    """The stack's WebSocket API (`AWS::ApiGatewayV2::Api`, `ProtocolType: WEBSOCKET`), if it has one."""
    apis = {
        logical_id: resource.get("Properties") or {}
        for logical_id, resource in stack.resources("AWS::ApiGatewayV2::Api").items()
        if (resource.get("Properties") or {}).get("ProtocolType") == "WEBSOCKET"
    }
    if not apis:
        return None
    if len(apis) > 1:
        raise TemplateError(f"expected one WebSocket API, found {sorted(apis)}")
    ((logical_id, properties),) = apis.items()
    expression = _to_str(stack.resolve(properties.get("RouteSelectionExpression", "")))
    selection = _SELECTION_EXPRESSION.match(expression)
    if selection is None:
        raise TemplateError(f"{logical_id}: RouteSelectionExpression {expression!r} is not played locally")
    stages = _by_api(stack, "AWS::ApiGatewayV2::Stage", logical_id)
    if len(stages) != 1:
        raise TemplateError(f"{logical_id}: expected one stage, found {sorted(stages) or 'none'}")
    two_way = {
        _to_str((properties.get("RouteId") or {}).get("Ref"))
        for properties in _by_api(stack, "AWS::ApiGatewayV2::RouteResponse", logical_id).values()
    }
    routes = {}
    for route_id, route in _by_api(stack, "AWS::ApiGatewayV2::Route", logical_id).items():
        key = _to_str(stack.resolve(route["RouteKey"]))
        routes[key] = WebSocketRouteSpec(
            key=key,
            function=_integration_function(stack, logical_id, _to_str(stack.resolve(route.get("Target", "")))),
            authorized=_to_str(stack.resolve(route.get("AuthorizationType", "NONE"))) != "NONE",
            responds=route_id in two_way,
        )
    return WebSocketApiSpec(
        logical_id=logical_id,
        api_id=_fake_api_id(logical_id),
        stage=_to_str(stack.resolve({"Ref": next(iter(stages))})),
        selection_path=tuple(selection[1].split(".")),
        routes=routes,
    )


def _event_api(event_properties: dict[str, Any]) -> str:
    api = event_properties.get("ApiId")
    if isinstance(api, dict) and "Ref" in api:
        return str(api["Ref"])
    # Without ApiId SAM would create an implicit API, which template.yaml never asks for.
    raise TemplateError(f"an HttpApi event's ApiId must be a !Ref to an HttpApi, not {api!r}")


def _function_properties(stack: Stack) -> dict[str, dict[str, Any]]:
    """Every function's Properties with Globals.Function merged in, unresolved, by logical id."""
    return {
        logical_id: _merge_globals(_global_properties(stack, "Function"), resource.get("Properties") or {})
        for logical_id, resource in stack.resources("AWS::Serverless::Function").items()
    }


def _http_events(properties: dict[str, Any]) -> list[dict[str, Any]]:
    """The unresolved Properties of a function's `Type: HttpApi` events."""
    return [
        event.get("Properties") or {}
        for event in (properties.get("Events") or {}).values()
        if event.get("Type") == "HttpApi"
    ]


def _routes(stack: Stack, properties: dict[str, Any], apis: dict[str, HttpApiSpec]) -> tuple[RouteSpec, ...]:
    routes = []
    for event in _http_events(properties):
        resolved = stack.resolve(event)
        api = _event_api(event)
        authorizer = (resolved.get("Auth") or {}).get("Authorizer", apis[api].default_authorizer)
        routes.append(
            RouteSpec(
                method=_to_str(resolved.get("Method", "ANY")).upper(),
                path=resolved.get("Path", "$default"),
                api=api,
                authorizer=None if authorizer == NO_AUTHORIZER else authorizer,
            )
        )
    return tuple(routes)


def _schedules(stack: Stack, logical_id: str, events: dict[str, Any]) -> tuple[ScheduleSpec, ...]:
    schedules = []
    for event_name, event in events.items():
        if event.get("Type") != "Schedule":
            continue
        properties = stack.resolve(event.get("Properties") or {})
        rule_name = f"{STACK_NAME}-{logical_id}{event_name}"
        schedules.append(
            ScheduleSpec(
                name=event_name,
                expression=_to_str(properties["Schedule"]),
                enabled=_as_bool(properties.get("Enabled", True)),
                input=properties.get("Input"),
                rule_arn=f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{rule_name}",
            )
        )
    return tuple(schedules)


def _layer_dir(stack: Stack, layer: Any) -> Path | None:
    """The local directory of a layer given as `!Ref SomeLayer`; None for ARNs of published layers."""
    if not (isinstance(layer, dict) and "Ref" in layer):
        return None
    properties = stack.properties(layer["Ref"])
    content = stack.resolve(properties.get("ContentUri"))
    if not isinstance(content, str):
        return None
    directory = (stack.base_dir / content).resolve()
    # A layer already laid out for Lambda keeps its Python code under python/ (mounted at /opt/python).
    return directory / "python" if (directory / "python").is_dir() else directory


def functions(stack: Stack) -> list[FunctionSpec]:
    """Every `AWS::Serverless::Function`, Globals merged in and everything resolved."""
    apis = http_apis(stack)
    specs = []
    for logical_id, properties in _function_properties(stack).items():
        code_uri = stack.resolve(properties.get("CodeUri"))
        if not isinstance(code_uri, str):
            raise TemplateError(f"{logical_id}: only a local CodeUri directory can run locally, not {code_uri!r}")
        environment = {
            key: _to_str(value)
            for key, value in (stack.resolve((properties.get("Environment") or {}).get("Variables")) or {}).items()
        }
        environment.update({key: stack.overrides[key] for key in environment if key in stack.overrides})
        logging_config = stack.resolve(properties.get("LoggingConfig")) or {}
        specs.append(
            FunctionSpec(
                logical_id=logical_id,
                name=stack.physical_name(logical_id),
                arn=stack.arn(logical_id),
                code_dir=(stack.base_dir / code_uri).resolve(),
                handler=_to_str(stack.resolve(properties["Handler"])),
                layer_dirs=tuple(
                    directory
                    for directory in (_layer_dir(stack, layer) for layer in properties.get("Layers") or ())
                    if directory is not None
                ),
                runtime=stack.resolve(properties.get("Runtime")),
                timeout=int(stack.resolve(properties.get("Timeout", 3))),
                memory_size=int(stack.resolve(properties.get("MemorySize", 128))),
                environment=environment,
                log_format=_to_str(logging_config.get("LogFormat", "Text")),
                application_log_level=logging_config.get("ApplicationLogLevel"),
                routes=_routes(stack, properties, apis),
                schedules=_schedules(stack, logical_id, properties.get("Events") or {}),
                policy_statements=tuple(
                    statement
                    for policy in stack.resolve(properties.get("Policies") or [])
                    if isinstance(policy, dict)  # a managed policy's name or a SAM policy template grants nothing here
                    for statement in policy.get("Statement") or []
                ),
            )
        )
    return specs
