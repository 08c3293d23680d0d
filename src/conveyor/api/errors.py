"""The one place that renders errors as Files.com JSON (SPEC 2.3).

Every error body is `{"error", "http-code", "instance", "title", "type"}`;
`instance` is the request id, also sent as the X-Request-Id header, so a
user's error report can be matched to the server's logs. A stack trace never
reaches a client: unexpected exceptions are logged and answered with a
generic 500.
"""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from conveyor.domain import errors

log = logging.getLogger("conveyor.api")


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def error_response(exc: errors.ConveyorError, rid: str) -> Response:
    body = {
        "error": exc.message,
        "http-code": exc.http_status,
        "instance": rid,
        "title": exc.title,
        "type": exc.error_type,
    }
    headers = {"X-Request-Id": rid}
    if isinstance(exc, errors.TooManyRequests):
        headers["Retry-After"] = str(exc.retry_after)
    return Response(
        orjson.dumps(body),
        status_code=exc.http_status,
        media_type="application/json",
        headers=headers,
    )


_HTTP_ERRORS: dict[int, type[errors.ConveyorError]] = {
    400: errors.BadRequest,
    401: errors.AuthenticationRequired,
    403: errors.NotAuthorized,
    404: errors.NotFound,
    405: errors.MethodNotAllowed,
    429: errors.TooManyRequests,
}


def _respond(request: Request, exc: errors.ConveyorError) -> Response:
    """Files.com JSON for the API; on the web UI's paths (outside /api/), the HTML
    error page the UI installed as `app.state.html_error_page`."""
    rid = request_id(request)
    page = getattr(request.app.state, "html_error_page", None)
    path = request.url.path
    if page is not None and not (path == "/api" or path.startswith("/api/")):
        response: Response = page(request, exc, rid)
        return response
    return error_response(exc, rid)


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.ConveyorError)
    async def _domain(request: Request, exc: errors.ConveyorError) -> Response:
        if exc.http_status >= 500:
            log.error("request %s failed: %s", request_id(request), exc.message)
        return _respond(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = f"Invalid request: {where}: {first.get('msg', 'invalid value')}"
        return _respond(request, errors.RequestParamsInvalid(message))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        cls = _HTTP_ERRORS.get(exc.status_code, errors.BadRequest)
        message = {404: "Not Found", 405: "Method Not Allowed"}.get(exc.status_code)
        error = cls(message or str(exc.detail))
        error.http_status = exc.status_code
        return _respond(request, error)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error in request %s", request_id(request))
        return _respond(
            request, errors.InternalServerError("An unexpected error occurred; it has been logged.")
        )
