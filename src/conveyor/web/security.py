"""The web UI's defences: response headers, form reading, CSRF checks, safe redirects.

Scripts run only from the UI's own static files (no inline script, no
eval), no page can be framed, and every state-changing form carries a token
that a page on another site cannot read.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.domain import errors

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
_RAW_HEADERS = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
MAX_FORM_BYTES = 16_384


def is_ui_path(path: str) -> bool:
    """Everything outside /api/ is the web UI's: pages, static files, its error pages."""
    return not (path == "/api" or path.startswith("/api/"))


class SecurityHeadersMiddleware:
    """Adds the headers to every UI response that does not set them itself
    (static files, redirects); API responses are left as they are."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_ui_path(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in _RAW_HEADERS if k not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def read_form(request: Request) -> dict[str, str]:
    """A URL-encoded form body (what the UI's forms send), last value per name."""
    return dict(await read_form_pairs(request))


async def read_form_pairs(request: Request) -> list[tuple[str, str]]:
    """A URL-encoded form body as (name, value) pairs in order: checkboxes sharing a
    name send one pair each."""
    body = await request.body()
    if not body:
        return []  # a bare POST: no fields, so no token either
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise errors.BadRequest("This form must be sent by a browser as a URL-encoded form.")
    if len(body) > MAX_FORM_BYTES:
        raise errors.RequestParamsInvalid("The form is too large.")
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise errors.RequestParamsInvalid("The form could not be read.") from None


CSRF_REFUSED = (
    "This form has expired or did not come from a Conveyor page. "
    "Go back, reload the page and try again."
)


def check_token(given: str | None, expected: str | None) -> None:
    """Refuse a state-changing request whose token does not match its session's."""
    if not given or not expected or not hmac.compare_digest(given, expected):
        raise errors.NotAuthorized(CSRF_REFUSED)


def safe_next(target: str | None, default: str = "/automations") -> str:
    """Where to go after signing in: only a path on this site, never another origin."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(ch) < 32 for ch in target)
        or not is_ui_path(target)
    ):
        return default
    return target
