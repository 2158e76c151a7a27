"""The export-everything worker: makes the zip of every session a user owns (`logic/takeout.py`).

Triggered by the DynamoDB stream through an event-source filter on jobs ready for a worker (template.yaml),
one record per invocation. It lives with the exports function for its Markdown renderer (`render`), the one a
session's own export uses. An exception makes Lambda retry the record, which starts the job over.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from sessions_api.dal import keys, table
from sessions_api.logic.takeout import Takeout
from sessions_api.observability import instrument, logger, metrics
from sessions_api.settings import get_settings


def markdown(source: dict[str, Any]) -> bytes:
    """The session's transcript; a deck over the renderer's caps is left out of it (its JSON keeps the deck)."""
    import render  # with its image library: loaded by the first job, not by every cold start

    try:
        return render.render("markdown", source)
    except render.DeckTooComplex:
        return render.render("markdown", {**source, "deck": {"slides": [], "css": "", "scripts": []}})


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    outcomes: dict[str, int] = {}
    for record in event.get("Records", []):
        image = table.from_wire((record.get("dynamodb") or {}).get("NewImage")) or {}
        if image.get("type") != "takeout" or not str(image.get("SK", "")).startswith(keys.TAKEOUT_PREFIX):
            logger.warning("Not an export-everything job", extra={"event_id": record.get("eventID")})
            continue
        logger.append_keys(job_id=image["job_id"])
        outcome = Takeout(get_settings()).run(
            image["created_by"],
            image["job_id"],
            markdown=markdown,
            remaining_ms=context.get_remaining_time_in_millis,
        )
        logger.info("Export everything", extra={"outcome": outcome})
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    metrics.add_metric(name="TakeoutsCompleted", unit=MetricUnit.Count, value=outcomes.get("completed", 0))
    return outcomes


lambda_handler = instrument(handler, correlation=None)
