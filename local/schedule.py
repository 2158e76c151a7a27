"""EventBridge schedules run locally: `rate(...)`/`cron(...)` expressions and the thread that fires them."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from local.template import ACCOUNT_ID, REGION

_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)")
_CRON = re.compile(r"cron\(([^)]*)\)")
_UNIT = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
    )
}
_WEEKDAYS = {name: number for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), 1)}
_SEARCH_DAYS = 5 * 366


class ScheduleError(ValueError):
    """An expression that is invalid, or uses what this local scheduler does not do (`L`, `W`, `#`)."""


@dataclass(frozen=True)
class Rate:
    period: timedelta

    def next_after(self, moment: datetime) -> datetime:
        return moment + self.period


@dataclass(frozen=True)
class Cron:
    """AWS's six-field cron, in UTC; `None` stands for `?` (no constraint)."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int] | None
    months: frozenset[int]
    days_of_week: frozenset[int] | None  # 1 = Sunday, as AWS counts
    years: frozenset[int]

    def _fires_on(self, day: date) -> bool:
        aws_weekday = (day.weekday() + 1) % 7 + 1
        return (
            day.month in self.months
            and day.year in self.years
            and (self.days_of_month is None or day.day in self.days_of_month)
            and (self.days_of_week is None or aws_weekday in self.days_of_week)
        )

    def next_after(self, moment: datetime) -> datetime:
        start = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.date()
        for _ in range(_SEARCH_DAYS):
            if self._fires_on(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        candidate = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                        if candidate >= start:
                            return candidate
            day += timedelta(days=1)
        raise ScheduleError("the cron expression never fires")


def _cron_field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> frozenset[int]:
    known_names = names or {}

    def number(token: str) -> int:
        if token.upper() in known_names:
            return known_names[token.upper()]
        if any(marker in token.upper() for marker in "LW#"):
            raise ScheduleError(f"{token!r}: L, W and # are not supported locally")
        value = int(token)
        if not low <= value <= high:
            raise ScheduleError(f"{token} is out of range {low}-{high}")
        return value

    values: set[int] = set()
    for part in text.split(","):
        base, _, step = part.partition("/")
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, last = base.split("-", 1)
            start, end = number(first), number(last)
        else:
            start = number(base)
            end = high if step else start
        values.update(range(start, end + 1, int(step) if step else 1))
    return frozenset(values)


def parse_schedule(expression: str) -> Rate | Cron:
    """`rate(5 minutes)` or `cron(0 3 * * ? *)`, as EventBridge reads them."""
    try:
        rate = _RATE.fullmatch(expression.strip())
        if rate:
            if int(rate[1]) < 1:
                raise ScheduleError("a rate must be at least 1")
            return Rate(int(rate[1]) * _UNIT[rate[2].removesuffix("s")])
        cron = _CRON.fullmatch(expression.strip())
        if not cron:
            raise ScheduleError(f"not a schedule expression: {expression!r}")
        fields = cron[1].split()
        if len(fields) != 6:
            raise ScheduleError(f"cron needs 6 fields, got {len(fields)}: {expression!r}")
        minutes, hours, days_of_month, months, days_of_week, years = fields
        return Cron(
            minutes=_cron_field(minutes, 0, 59),
            hours=_cron_field(hours, 0, 23),
            days_of_month=None if days_of_month == "?" else _cron_field(days_of_month, 1, 31),
            months=_cron_field(months, 1, 12, _MONTHS),
            days_of_week=None if days_of_week == "?" else _cron_field(days_of_week, 1, 7, _WEEKDAYS),
            years=_cron_field(years, 1970, 2199),
        )
    except ValueError as error:
        raise ScheduleError(f"{expression!r}: {error}") from error


def scheduled_event(rule_arn: str, when: datetime) -> dict[str, Any]:
    """The event EventBridge sends a scheduled rule's target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [rule_arn],
        "detail": {},
    }


@dataclass(frozen=True)
class Job:
    name: str
    schedule: Rate | Cron
    fire: Callable[[datetime], None]  # runs in its own thread, so a slow run delays no other job


class Scheduler:
    """Fires each job at its schedule's times, counted from when the scheduler starts."""

    def __init__(self, jobs: list[Job]) -> None:
        self._jobs = jobs
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)

    def start(self) -> None:
        if self._jobs:
            self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        now = datetime.now(UTC)
        due = [job.schedule.next_after(now) for job in self._jobs]
        while True:
            index = min(range(len(due)), key=due.__getitem__)
            if self._stopped.wait(max((due[index] - datetime.now(UTC)).total_seconds(), 0)):
                return
            job = self._jobs[index]
            threading.Thread(target=job.fire, args=(due[index],), name=job.name, daemon=True).start()
            due[index] = job.schedule.next_after(due[index])
