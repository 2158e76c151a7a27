"""The erasure worker: purges what a user who asked DELETE /me had (`logic/erasure.py`).

Triggered by the DynamoDB stream through an event-source filter on erasure records ready for a worker
(template.yaml), one record per invocation. An invocation that runs out of time hands the erasure on to a
fresh one; a crash makes Lambda retry the record, and the schedule re-arms an erasure whose worker is gone.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from sessions_api.dal import keys, table
from sessions_api.logic.erasing import Eraser
from sessions_api.observability import instrument, logger, metrics
from sessions_api.settings import get_settings


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    finished = 0
    for record in event.get("Records", []):
        image = table.from_wire((record.get("dynamodb") or {}).get("NewImage")) or {}
        if image.get("type") != "erasure" or not str(image.get("SK", "")).startswith(keys.ERASURE_PREFIX):
            logger.warning("Not an erasure record", extra={"event_id": record.get("eventID")})
            continue
        logger.append_keys(erasure_id=image["erasure_id"])
        eraser = Eraser(get_settings())
        finished += int(eraser.run(image["created_by"], image["erasure_id"], context.get_remaining_time_in_millis))
    metrics.add_metric(name="ErasuresFinished", unit=MetricUnit.Count, value=finished)
    return {"finished": finished}


lambda_handler = instrument(handler, correlation=None)
