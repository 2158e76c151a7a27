"""Logger, metrics and (only when tracing is on) the tracer: the X-Ray SDK costs cold-start time."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths

from sessions_api.settings import get_settings

logger = Logger()
metrics = Metrics(namespace="SessionsApi")

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@cache
def tracer() -> Any | None:
    if not get_settings().tracing_enabled:
        return None
    from aws_lambda_powertools import Tracer

    return Tracer()


def instrument(handler: Handler, *, correlation: str | None = correlation_paths.API_GATEWAY_HTTP) -> Handler:
    """Wrap a Lambda handler with structured logging, metrics flushing and optional tracing."""
    wrapped = metrics.log_metrics(handler)
    active_tracer = tracer()
    if active_tracer is not None:
        wrapped = active_tracer.capture_lambda_handler(wrapped)
    return logger.inject_lambda_context(wrapped, correlation_id_path=correlation, clear_state=True)
