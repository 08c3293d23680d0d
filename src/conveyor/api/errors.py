"""The one place that renders errors as Files.com JSON (SPEC 2.3).

Every error body is `{"error", "http-code", "instance", "title", "type"}`;
`instance` is the request id, also sent as the X-Request-Id header, so a
user's error report can be matched to the server's logs. A stack trace never
reaches a client: unexpected exceptions are logged and answered with a
generic 500. A database outage (`conveyor.store.outage`) is no fault of the
request: it is answered 503 `service-unavailable/automations-unavailable` with
`Retry-After`; its transaction was rolled back (docs/operations.md, Outages).
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import sys

import httptools
import orjson
import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from conveyor.domain import errors
from conveyor.store import outage

log = logging.getLogger("conveyor.api")


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def error_body(exc: errors.ConveyorError, rid: str) -> bytes:
    return orjson.dumps(
        {
            "error": exc.message,
            "http-code": exc.http_status,
            "instance": rid,
            "title": exc.title,
            "type": exc.error_type,
        }
    )


def error_response(exc: errors.ConveyorError, rid: str) -> Response:
    headers = {"X-Request-Id": rid}
    if isinstance(exc, errors.TooManyRequests | errors.ServiceUnavailable):
        headers["Retry-After"] = str(exc.retry_after)
    return Response(
        error_body(exc, rid),
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


def domain_error(request: Request, exc: errors.ConveyorError) -> Response:
    """The answer to a ConveyorError raised by a handler."""
    if exc.http_status >= 500:
        log.error("request %s failed: %s", request_id(request), exc.message)
    return _respond(request, exc)


def unexpected_error(request: Request, exc: Exception) -> Response:
    """The answer to any other exception: a 503 for a database outage (logged in one
    line), else logged with its stack and a bare 500 to the client."""
    why = outage.reason(exc)
    if why is not None:
        log.warning("request %s: %s (%s)", request_id(request), why, type(exc).__name__)
        return _respond(
            request,
            errors.ServiceUnavailable(f"Service unavailable: {why}. Retry in a few seconds."),
        )
    log.exception("unexpected error in request %s", request_id(request))
    return _respond(
        request, errors.InternalServerError("An unexpected error occurred; it has been logged.")
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.ConveyorError)
    async def _domain(request: Request, exc: errors.ConveyorError) -> Response:
        return domain_error(request, exc)

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

    # Database errors are answered here rather than by the server-error layer, which
    # would log each outage's stack again.
    @app.exception_handler(SQLAlchemyError)
    @app.exception_handler(psycopg.Error)
    @app.exception_handler(sqlite3.Error)
    async def _database(request: Request, exc: Exception) -> Response:
        return unexpected_error(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        return unexpected_error(request, exc)


class FilesComHttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, answering a request it cannot parse in Files.com JSON.

    Such a request (a URL over 65,535 bytes, bytes that are not HTTP) never
    reaches the app, and uvicorn's own answer is plain text, which the official
    SDK cannot read as an API error. Serve with `uvicorn.Config(http=...)`.
    """

    def send_400_response(self, msg: str) -> None:
        # uvicorn calls this inside its `except HttpParserError`; the parser keeps
        # the error its URL check raised as the context of its own.
        cause = getattr(sys.exc_info()[1], "__context__", None)
        error: errors.ConveyorError
        if isinstance(cause, httptools.HttpParserInvalidURLError):
            error = errors.RequestParamsInvalid(f"The request URL cannot be read: {cause}.")
        else:
            error = errors.BadRequest(
                "The request is not valid HTTP/1.1 (bytes outside ASCII in a URL "
                "must be percent-encoded)."
            )
        rid = secrets.token_hex(8)
        body = error_body(error, rid)
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        head += [
            name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers
        ]
        head.append(
            b"content-type: application/json\r\ncontent-length: %d\r\n"
            b"x-request-id: %s\r\nconnection: close\r\n\r\n" % (len(body), rid.encode())
        )
        self.transport.write(b"".join(head) + body)
        self.transport.close()
