"""Errors on the web UI's paths as readable HTML pages (the API keeps its JSON).

`conveyor.api.errors` decides per request which form to send and calls
`error_page` for the UI's paths; the message is the domain error's, never a
stack trace.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from conveyor.domain import errors
from conveyor.web.templating import render

_HINTS = {
    400: "Check the address or go back and try again.",
    403: "Reload the page you came from and try again.",
    404: "It may have been deleted, or it belongs to another user.",
    409: "Reload the page to see its current state.",
    429: "Wait a moment and try again.",
    503: "The service is briefly unavailable. Wait a few seconds and reload the page.",
}


def error_page(request: Request, exc: errors.ConveyorError, rid: str) -> Response:
    status = exc.http_status
    if isinstance(exc, errors.ServiceUnavailable):
        message = exc.message
    elif status >= 500:
        message = "Something went wrong on the server. It has been logged; try again later."
    elif status == 404 and exc.message == "Not Found":  # an unknown route, not a record
        message = "There is no page at this address."
    else:
        message = exc.message
    response = render(
        "error.html",
        status_code=status,
        title=exc.title,
        user=None,
        csrf_token=None,
        status=status,
        message=message,
        hint=_HINTS.get(status, ""),
        request_id=rid,
    )
    response.headers["X-Request-Id"] = rid
    if isinstance(exc, errors.TooManyRequests | errors.ServiceUnavailable):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response
