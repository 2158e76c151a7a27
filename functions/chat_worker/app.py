"""The chat worker: runs each chat run the table's stream hands it (a run item that became ready).

Triggered by the DynamoDB stream through an event-source filter on ready runs (template.yaml), one record
per invocation. An exception makes Lambda retry the record, then send it to the dead-letter queue; a retry
finds the run started and, once its worker's lease has lapsed, ends it `error` (`logic/runner.py`).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from sessions_api.dal import keys, table
from sessions_api.logic import runner
from sessions_api.observability import instrument, logger, metrics
from sessions_api.providers import ModelProvider, provider_for
from sessions_api.settings import get_settings


@cache
def provider() -> ModelProvider:
    return provider_for(get_settings())


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    ran = 0
    for record in event.get("Records", []):
        image = table.from_wire((record.get("dynamodb") or {}).get("NewImage")) or {}
        if image.get("type") != "run" or not str(image.get("SK", "")).startswith(keys.RUN_PREFIX):
            logger.warning("Not a run record", extra={"event_id": record.get("eventID")})
            continue
        logger.append_keys(request_id=image["request_id"], session_id=image["session_id"])
        runner.run(
            get_settings(),
            provider(),
            image["session_id"],
            image["request_id"],
            remaining_ms=context.get_remaining_time_in_millis,
        )
        ran += 1
    metrics.add_metric(name="ChatRunsHandled", unit=MetricUnit.Count, value=ran)
    return {"runs": ran}


lambda_handler = instrument(handler, correlation=None)
