"""`GET /metrics`: Prometheus text format; no API key (restrict it at the proxy if needed).

Turned off with CONVEYOR_METRICS=false (the route then answers 404).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from conveyor.context import ctx
from conveyor.observability import metrics

router = APIRouter()


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    responses={
        200: {
            "description": "Metrics in the Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
def prometheus_metrics(request: Request) -> Response:
    context = ctx(request)
    collector = metrics.DatabaseCollector(
        context.db, context.clock, context.settings.heartbeat_timeout
    )
    return Response(metrics.render(collector), media_type=metrics.CONTENT_TYPE)
