"""The session cookie: which signed-in user a browser request belongs to.

The cookie holds a random session token (never the API key); the database
holds its hash (conveyor.store.web_sessions). The cookie is HttpOnly, so no
script can read it, SameSite=Lax, so another site's forms and fetches do not
carry it, and Secure when the UI is served over HTTPS.
"""

from __future__ import annotations

from urllib.parse import quote

from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import Response

from conveyor.context import AppContext
from conveyor.domain import errors
from conveyor.domain.automations import Automation
from conveyor.store.automations import may_see
from conveyor.store.web_sessions import WebSession, find_session, find_session_and_automation

SESSION_COOKIE = "conveyor_session"
# Holds the sign-in form's CSRF token until a session exists (double-submit).
SIGN_IN_COOKIE = "conveyor_sign_in"
SESSION_LIFETIME_S = 12 * 3600
MAX_TOKEN_LENGTH = 128


class SignInRequired(Exception):
    """Raised by a page that needs a session; answered with a redirect to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def session_of(conn: Connection, request: Request, context: AppContext) -> WebSession | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    return find_session(conn, token, context.clock.now())


def require_session(conn: Connection, request: Request, context: AppContext) -> WebSession:
    found = session_of(conn, request, context)
    if found is None:
        raise _sign_in_first(request)
    return found


def _sign_in_first(request: Request) -> SignInRequired:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    return SignInRequired(target)


def require_session_and_automation(
    conn: Connection, request: Request, context: AppContext, automation_id: int
) -> tuple[WebSession, Automation]:
    """`require_session`, then the automation the session's user may see (a 404 page
    otherwise), read together in one statement."""
    token = request.cookies.get(SESSION_COOKIE)
    session, automation = None, None
    if token and len(token) <= MAX_TOKEN_LENGTH:
        session, automation = find_session_and_automation(
            conn, token, context.clock.now(), automation_id
        )
    if session is None:
        raise _sign_in_first(request)
    if automation is None or automation.deleted or not may_see(session.user, automation.user_id):
        raise errors.NotFound(f"Automation {automation_id} not found.")
    return session, automation


def sign_in_url(next_path: str) -> str:
    return "/sign-in?next=" + quote(next_path, safe="/")


def is_secure(request: Request, context: AppContext) -> bool:
    """Served over HTTPS (directly, or per the configured public URL behind a proxy)."""
    public = context.settings.public_url or ""
    return request.url.scheme == "https" or public.startswith("https://")


def set_cookie(
    response: Response, request: Request, context: AppContext, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=is_secure(request, context),
        httponly=True,
        samesite="lax",
    )


def clear_cookie(response: Response, request: Request, context: AppContext, name: str) -> None:
    response.delete_cookie(
        name, path="/", secure=is_secure(request, context), httponly=True, samesite="lax"
    )
