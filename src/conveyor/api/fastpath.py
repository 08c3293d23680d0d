"""Direct dispatch of the two run reads, the API's hottest requests.

`GET /api/rest/v1/automation_runs` and `GET /api/rest/v1/automation_runs/{id}`
are matched here, inside the request-id, access-log and security-header
middleware, and handed straight to their handlers in `conveyor.api.runs`, in
the thread pool FastAPI would use. What is skipped is only FastAPI's share of
a request: walking the router's routes, the exception and exit-stack
middleware, solving the (empty) dependencies. Everything a request gets
stays, each from its one implementation:

- the handlers are the routes' own functions (authentication, rate limits,
  parameters, visibility, cursors, encoding);
- errors are answered by the functions the app's exception handlers call
  (`conveyor.api.errors.domain_error` / `unexpected_error`): Files.com JSON
  with the request id as `instance`;
- `scope["route"]` is the matched route, so the access log and the metrics
  label the request with its template as before.

Any other method or path (HEAD, a trailing slash, a deeper path) goes on to
FastAPI unchanged. The routes stay registered there for the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from starlette._utils import get_route_path
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from conveyor.api import errors as error_rendering
from conveyor.api import runs
from conveyor.domain import errors

LIST_PATH = "/api/rest/v1/automation_runs"
_FIND_PREFIX = LIST_PATH + "/"


def _route(endpoint: Callable[..., Any]) -> Any:
    """The router's route object for one of the runs endpoints."""
    return next(r for r in runs.router.routes if getattr(r, "endpoint", None) is endpoint)


class RunReadsFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._list_route = _route(runs.list_automation_runs)
        self._find_route = _route(runs.find_automation_run)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        path = get_route_path(scope)
        if path == LIST_PATH:
            scope["route"] = self._list_route
            scope["path_params"] = {}
            request = Request(scope, receive)
            work: Callable[[], Response] = partial(runs.list_automation_runs, request)
        elif path.startswith(_FIND_PREFIX) and "/" not in path[len(_FIND_PREFIX) :]:
            run_id = path[len(_FIND_PREFIX) :]
            if not run_id:
                await self.app(scope, receive, send)
                return
            scope["route"] = self._find_route
            scope["path_params"] = {"run_id": run_id}
            request = Request(scope, receive)
            work = partial(runs.find_automation_run, run_id, request)
        else:
            await self.app(scope, receive, send)
            return
        try:
            response = await run_in_threadpool(work)
        except errors.ConveyorError as exc:
            response = error_rendering.domain_error(request, exc)
        except Exception as exc:
            response = error_rendering.unexpected_error(request, exc)
        await response(scope, receive, send)
