"""Timestamps: RFC 3339, UTC, millisecond precision, `Z` suffix (they sort as strings)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """Naive datetimes (a client's `2024-01-15`) are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso() -> str:
    return iso(now())


def parse(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def epoch_seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def plus(moment: datetime, *, minutes: float = 0, days: float = 0) -> datetime:
    return moment + timedelta(minutes=minutes, days=days)
