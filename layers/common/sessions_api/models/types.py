"""Constrained field types shared by request models."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

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


Text = Annotated[str, AfterValidator(_utf8)]
Title = Annotated[
    str, StringConstraints(min_length=1, max_length=200), AfterValidator(_utf8), AfterValidator(_single_line)
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
ModelId = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_.:/-]+$")]
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_utf8)]
MetadataValue = Annotated[str, StringConstraints(max_length=512), AfterValidator(_utf8)]
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=16)]
PreferenceValue = Annotated[str, StringConstraints(max_length=512), AfterValidator(_utf8)] | bool | int | float | None
Preferences = Annotated[dict[MetadataKey, PreferenceValue], Field(max_length=32)]
Reason = Annotated[str, StringConstraints(max_length=500), AfterValidator(_utf8)]


class StrictModel(BaseModel):
    """Unknown or server-owned fields are refused, never ignored."""

    model_config = ConfigDict(extra="forbid")


def drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if value is not None}
