"""Powertools Logger, Tracer and Metrics, created once, and the middleware that wires them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from chalice.app import Request, Response

from chalicelib.config import get_settings
from chalicelib.requests import bind_request

_settings = get_settings()
logger = Logger(service=_settings.service_name)
# Creating a Tracer imports the X-Ray SDK, which builds a botocore X-Ray client (≈0.2 s of a
# cold start). Outside Lambda, or with tracing turned off, Powertools would disable it anyway,
# so it is only created where it will trace (same rule as Powertools), and then at import, in
# the Lambda's init phase rather than on the first request.
tracer: Tracer | None = (
    None if Tracer._is_tracer_disabled() else Tracer(service=_settings.service_name)
)
metrics = Metrics(namespace=_settings.metrics_namespace, service=_settings.service_name)


def bind_call(call_sid: str | None = None, account_id: str | None = None, **keys: Any) -> None:
    """Put the call id and account id on every following log line of this request."""
    extra: dict[str, Any] = {k: v for k, v in keys.items() if v is not None}
    if call_sid:
        extra["call_sid"] = call_sid
    if account_id:
        extra["account_id"] = account_id
    logger.append_keys(**extra)


def http_middleware(event: Request, get_response: Callable[[Request], Response]) -> Response:
    """Per-request observability: fresh log keys, a trace segment, latency and status metrics."""
    bind_request(event)
    logger.clear_state()
    metrics.clear_metrics()
    route = event.context.get("resourcePath", "?") if event.context else "?"
    logger.append_keys(
        route=route,
        method=event.method,
        request_id=(event.context or {}).get("requestId"),
    )
    started = time.perf_counter()
    if tracer is None:
        response = get_response(event)
    else:
        with tracer.provider.in_subsegment(f"## {event.method} {route}") as subsegment:
            response = get_response(event)
            subsegment.put_annotation(key="status", value=str(response.status_code))
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    family = route.strip("/").split("/", 1)[0] or "root"
    metrics.add_dimension(name="area", value=family)
    metrics.add_metric(name="RequestLatency", unit=MetricUnit.Milliseconds, value=elapsed_ms)
    if response.status_code >= 500:
        metrics.add_metric(name="ServerError", unit=MetricUnit.Count, value=1)
    elif response.status_code >= 400:
        metrics.add_metric(name="ClientError", unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()
    logger.debug("request done", extra={"status": response.status_code, "ms": round(elapsed_ms, 2)})
    return response
