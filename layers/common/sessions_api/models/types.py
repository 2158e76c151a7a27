"""Constrained field types shared by request models."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StringConstraints,
    Tag,
    WithJsonSchema,
)

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_OR_NEWLINE = re.compile(r"[\x00-\x1f\x7f]")


def _utf8(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates from JSON "\ud800" escapes
        raise ValueError("text must be valid Unicode (no lone surrogates)") from exc
    if _CONTROL.search(value):
        raise ValueError("text must not contain control characters")
    return value


def _single_line(value: str) -> str:
    if _CONTROL_OR_NEWLINE.search(value):
        raise ValueError("must be a single line without control characters")
    if not value.strip():
        raise ValueError("must not be blank")
    return value


# The validators above, as JSON Schema patterns: the OpenAPI spec says what the API refuses (lone surrogates
# cannot be expressed; they are refused before validation).
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
LINE_PATTERN = r"^[^\x00-\x1f\x7f]*[^\x00-\x1f\x7f\s][^\x00-\x1f\x7f]*$"
_TEXT_SCHEMA = Field(json_schema_extra={"pattern": TEXT_PATTERN})


def _keys_as_property_names(schema: dict[str, Any]) -> None:
    """pydantic states a key pattern as `patternProperties`, which lets other keys through: use `propertyNames`."""
    patterns = schema.pop("patternProperties", None)
    if patterns:
        ((pattern, values),) = patterns.items()
        schema["propertyNames"] = {**schema.get("propertyNames", {}), "pattern": pattern}
        schema["additionalProperties"] = values


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ].*([Zz]|[+-]\d{2}:\d{2})$")


def _moment(value: Any) -> Any:
    # pydantic would also take a number (Unix time), or a time without offset as if it were UTC.
    if isinstance(value, str) and not (_DATE.match(value) or _DATE_TIME.match(value)):
        raise ValueError("must be an RFC 3339 date-time with `Z` or an offset, or a date (YYYY-MM-DD)")
    return value


# The last moment the API takes: what it derives from one (a share's record is kept days past its end)
# must stay inside Python's calendar.
LATEST_MOMENT = datetime(9999, 1, 1, tzinfo=UTC)


def _utc(value: datetime) -> datetime:
    # A date is midnight UTC: comparable with every other moment of the API.
    try:
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("is outside the calendar once converted to UTC") from exc
    if moment >= LATEST_MOMENT:
        raise ValueError("must be before 9999-01-01T00:00:00Z")
    return moment


def _instant(value: Any) -> Any:
    if isinstance(value, str) and not _DATE_TIME.match(value):
        raise ValueError("must be an RFC 3339 date-time with `Z` or an offset")
    return value


def _json_number(value: Any) -> Any:
    # JSON Schema's numbers: 5.0 is an integer, but `true` and "5" are not numbers (pydantic's lax mode says so).
    if isinstance(value, bool | str):
        raise ValueError("must be a JSON number")
    return value


def _storable_float(value: float) -> float:
    # DynamoDB numbers stop at 38 digits and 1e-130: a float too close to zero cannot be stored exactly.
    if value != 0 and abs(value) < 1e-100:
        raise ValueError("must be 0 or at least 1e-100 in magnitude")
    return value


Text = Annotated[str, AfterValidator(_utf8), _TEXT_SCHEMA]
JsonInt = Annotated[int, BeforeValidator(_json_number)]
# Every float the API takes is stored in DynamoDB, so each is one DynamoDB keeps exactly.
JsonFloat = Annotated[float, BeforeValidator(_json_number), AfterValidator(_storable_float)]
# A point in time a client filters by: `2024-01-15T10:30:00Z` or `2024-01-15` (UTC).
Moment = Annotated[
    datetime,
    BeforeValidator(_moment),
    AfterValidator(_utc),
    WithJsonSchema({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}]}),
]
# A point in time a client sets (a share's end): a date-time with its offset.
Instant = Annotated[
    datetime,
    BeforeValidator(_instant),
    AfterValidator(_utc),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
Title = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200),
    AfterValidator(_utf8),
    AfterValidator(_single_line),
    Field(json_schema_extra={"pattern": LINE_PATTERN}),
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
ModelId = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_.:/-]+$")]
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_utf8), _TEXT_SCHEMA]
MetadataValue = Annotated[str, StringConstraints(max_length=512), AfterValidator(_utf8), _TEXT_SCHEMA]
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=16, json_schema_extra=_keys_as_property_names)]


def _json_type(value: Any) -> str:
    # Each JSON type is checked by its own branch only, so a refusal names what is wrong with that value.
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return "number" if isinstance(value, float) else "string"


# Numbers a client may store freely, within what JavaScript and DynamoDB both keep exactly.
_SAFE_INTEGER = 2**53 - 1
PreferenceValue = Annotated[
    Annotated[str, StringConstraints(max_length=512), AfterValidator(_utf8), _TEXT_SCHEMA, Tag("string")]
    | Annotated[StrictBool, Tag("boolean")]
    | Annotated[JsonInt, Field(ge=-_SAFE_INTEGER, le=_SAFE_INTEGER), Tag("integer")]
    | Annotated[float, Field(ge=-1e100, le=1e100), AfterValidator(_storable_float), Tag("number")]
    | Annotated[None, Tag("null")],
    Discriminator(_json_type),
]
Preferences = Annotated[
    dict[MetadataKey, PreferenceValue], Field(max_length=32, json_schema_extra=_keys_as_property_names)
]
Reason = Annotated[str, StringConstraints(max_length=500), AfterValidator(_utf8), _TEXT_SCHEMA]


class StrictModel(BaseModel):
    """Unknown or server-owned fields are refused, never ignored."""

    model_config = ConfigDict(extra="forbid")


def drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if value is not None}
