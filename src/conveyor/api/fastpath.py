"""Direct dispatch of the two run reads, the API's hottest requests.

`GET /api/rest/v1/automation_runs` and `GET /api/rest/v1/automation_runs/{id}`
are matched first, before any layer of FastAPI, and served by their handlers
in `conveyor.api.runs`, in the thread pool FastAPI would use (on PostgreSQL
they are read on the event loop instead: `conveyor.api.steps`), through the
app's own middleware (request id, access log and metrics, security headers:
the very stack `app.add_middleware` built, inside the same server-error
layer). What they skip is only FastAPI's share of a request: its
exception-telemetry and body-limit layers, walking the router's routes, the
exception and exit-stack layers, and solving the (empty) dependencies.
Everything else stays, each from its one implementation:

- the handlers are the routes' own functions (authentication, rate limits,
  parameters, visibility, cursors, encoding);
- errors are answered by the functions the app's exception handlers call
  (`conveyor.api.errors.domain_error` / `unexpected_error`): Files.com JSON
  with the request id as `instance`, a logged stack for a 500;
- `scope["route"]` is the matched route, so the access log and the metrics
  label the request with its template as before.

Any other method or path (HEAD, a trailing slash, a deeper path) goes to
FastAPI unchanged. The routes stay registered there for the OpenAPI document.
A GET's body is never read, so the body limit has nothing to do on these two.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette._utils import get_route_path
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from conveyor.api import errors as error_rendering
from conveyor.api import runs
from conveyor.api.context import ctx
from conveyor.domain import errors

LIST_PATH = "/api/rest/v1/automation_runs"
_FIND_PREFIX = LIST_PATH + "/"


def _route(endpoint: Callable[..., Any]) -> Any:
    """The router's route object for one of the runs endpoints."""
    return next(r for r in runs.router.routes if getattr(r, "endpoint", None) is endpoint)


class RunReadsFastPath:
    """The app's outermost layer: the two run reads to `wrap(handler)`, the rest to `rest`."""

    def __init__(self, rest: ASGIApp, wrap: Callable[[ASGIApp], ASGIApp]) -> None:
        self.rest = rest
        self.fast = wrap(self._serve)
        self._list_route = _route(runs.list_automation_runs)
        self._find_route = _route(runs.find_automation_run)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path = get_route_path(scope)
            if path == LIST_PATH:
                scope["route"] = self._list_route
                scope["path_params"] = {}
                await self.fast(scope, receive, send)
                return
            run_id = path[len(_FIND_PREFIX) :] if path.startswith(_FIND_PREFIX) else ""
            if run_id and "/" not in run_id:
                scope["route"] = self._find_route
                scope["path_params"] = {"run_id": run_id}
                await self.fast(scope, receive, send)
                return
        await self.rest(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        read_pool = ctx(request).read_pool
        try:
            # PostgreSQL: on the event loop (conveyor.api.steps); SQLite: in the thread pool.
            if scope["route"] is self._list_route:
                if read_pool is not None:
                    response = await runs.list_automation_runs_async(read_pool, request)
                else:
                    response = await run_in_threadpool(runs.list_automation_runs, request)
            else:
                run_id = scope["path_params"]["run_id"]
                if read_pool is not None:
                    response = await runs.find_automation_run_async(read_pool, run_id, request)
                else:
                    response = await run_in_threadpool(runs.find_automation_run, run_id, request)
        except errors.ConveyorError as exc:
            response = error_rendering.domain_error(request, exc)
        except Exception as exc:
            response = error_rendering.unexpected_error(request, exc)
        await response(scope, receive, send)
