"""One pure ASGI middleware for every HTTP request: a JSON access-log line and HTTP metrics.

Pure ASGI (not BaseHTTPMiddleware), so a request costs two clock reads, a
dictionary lookup for its metric children and, when the log level lets it
through, one log record. The route is the matched template
(`/api/rest/v1/automation_runs/{run_id}`), never the raw path, so metric
labels stay few and no id or query string lands in them.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.observability import metrics

log = logging.getLogger("conveyor.access")
UNMATCHED = "<unmatched>"
# Any other method a client invents is counted as OTHER, so labels stay bounded.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_of(scope: Scope) -> str:
    """The matched route's template, or UNMATCHED (a 404 of an unknown path)."""
    route = scope.get("route")
    if route is not None:
        return str(getattr(route, "path_format", None) or getattr(route, "path", UNMATCHED))
    endpoint = scope.get("endpoint")
    if endpoint is not None:
        # A mounted app (static files): its mount point, without the file's path.
        return str(scope.get("root_path", "")) or UNMATCHED
    return UNMATCHED


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, *, log_requests: bool = True, record: bool = True) -> None:
        self.app = app
        self.log_requests = log_requests
        self.record = record
        # (method, route, status) -> (counter child, histogram child): labels() costs
        # a lock and a tuple hash each time; the children are looked up once.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # An exception escaping the app is answered 500 by the server-error layer.
            self._done(scope, status, time.perf_counter() - started)

    def _done(self, scope: Scope, status: int, seconds: float) -> None:
        method: str = scope["method"] if scope["method"] in METHODS else "OTHER"
        route = route_of(scope)
        if self.record:
            key = (method, route, status)
            children = self._children.get(key)
            if children is None:
                children = (
                    metrics.HTTP_REQUESTS.labels(method, route, str(status)),
                    metrics.HTTP_DURATION.labels(method, route),
                )
                self._children[key] = children
            children[0].inc()
            children[1].observe(seconds)
        if self.log_requests and log.isEnabledFor(logging.INFO):
            state: dict[str, Any] = scope.get("state") or {}
            log.info(
                "%s %s %s",
                method,
                route,
                status,
                extra={
                    "request_id": state.get("request_id"),
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 3),
                    "user_id": state.get("user_id"),
                },
            )
