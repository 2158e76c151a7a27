"""Scheduled (EventBridge): expire idle sessions, purge expired ones after their retention and deleted ones.

Invoked asynchronously: an exception makes Lambda retry the event and, after the retries, send it to
the dead-letter queue. Runs are idempotent, so a retry only finishes what the failed run left.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from sessions_api.logic.expiry import Expiry
from sessions_api.observability import instrument, logger, metrics
from sessions_api.settings import get_settings


class ExpiryRunFailed(Exception):
    """Some sessions could not be expired or purged; they stay due, and the retry takes them again."""


@cache
def expiry() -> Expiry:
    return Expiry(get_settings())


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    scheduled = parse(event=event, model=EventBridgeModel)
    logger.info("Expiry run", extra={"scheduled_at": scheduled.time.isoformat(), "rule": scheduled.resources})
    report = expiry().run(context.get_remaining_time_in_millis)
    metrics.add_metric(name="SessionsExpired", unit=MetricUnit.Count, value=report.expired)
    metrics.add_metric(name="SessionsPurged", unit=MetricUnit.Count, value=report.purged)
    metrics.add_metric(name="ItemsPurged", unit=MetricUnit.Count, value=report.items_deleted)
    metrics.add_metric(name="ObjectsPurged", unit=MetricUnit.Count, value=report.objects_deleted)
    metrics.add_metric(name="ChatRunsRecovered", unit=MetricUnit.Count, value=report.runs_recovered)
    metrics.add_metric(name="ExpiryErrors", unit=MetricUnit.Count, value=report.errors)
    metrics.add_metric(name="ExpiryBacklog", unit=MetricUnit.Count, value=report.backlog)
    metrics.add_metric(name="OldestDueAgeSeconds", unit=MetricUnit.Seconds, value=report.oldest_due_age_seconds)
    logger.info("Expiry run done", extra=report.as_dict())
    if report.errors:
        raise ExpiryRunFailed(f"{report.errors} sessions failed; they stay due for the retry")
    return report.as_dict()


lambda_handler = instrument(handler, correlation=correlation_paths.EVENT_BRIDGE)
