"""Signing in with an API key and signing out: /sign-in, /sign-out."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from conveyor.context import ctx
from conveyor.store import web_sessions
from conveyor.store.users import MAX_KEY_LENGTH
from conveyor.web import session as cookies
from conveyor.web.security import check_token, read_form, safe_next
from conveyor.web.templating import render

router = APIRouter(include_in_schema=False)


def _form(
    request: Request, next_path: str, *, error: str | None = None, notice: str | None = None
) -> Response:
    """The sign-in page with a fresh form token, kept in a cookie until it is used."""
    token = secrets.token_urlsafe(24)
    status = 401 if error else 200
    response = render(
        "sign_in.html",
        status_code=status,
        title="Sign in",
        user=None,
        csrf_token=token,
        next_path=next_path,
        error=error,
        notice=notice,
    )
    cookies.set_cookie(response, request, ctx(request), cookies.SIGN_IN_COOKIE, token, 3600)
    return response


@router.get("/sign-in")
def sign_in_page(request: Request) -> Response:
    context = ctx(request)
    next_path = safe_next(request.query_params.get("next"))
    with context.db.read() as conn:
        if cookies.session_of(conn, request, context) is not None:
            return RedirectResponse(next_path, status_code=303)
    notice = "You have signed out." if request.query_params.get("signed_out") else None
    return _form(request, next_path, notice=notice)


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    context = ctx(request)
    form = await read_form(request)
    check_token(form.get("csrf_token"), request.cookies.get(cookies.SIGN_IN_COOKIE))
    next_path = safe_next(form.get("next"))
    key = form.get("api_key", "").strip()
    if not key:
        return _form(request, next_path, error="Enter your API key.")
    lifetime = cookies.SESSION_LIFETIME_S * 1_000_000

    def work(conn: Any) -> Any:
        return web_sessions.sign_in(conn, key, context.clock.now(), lifetime)

    started = (
        await run_in_threadpool(context.db.run_write, work) if len(key) <= MAX_KEY_LENGTH else None
    )
    if started is None:
        return _form(request, next_path, error="That API key is unknown or has been revoked.")
    token, _user = started
    response = RedirectResponse(next_path, status_code=303)
    cookies.set_cookie(
        response, request, context, cookies.SESSION_COOKIE, token, cookies.SESSION_LIFETIME_S
    )
    cookies.clear_cookie(response, request, context, cookies.SIGN_IN_COOKIE)
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    context = ctx(request)
    form = await read_form(request)

    def work(conn: Any) -> None:
        found = cookies.session_of(conn, request, context)
        if found is None:  # already over (expired, revoked key): nothing left to end
            return
        check_token(form.get("csrf_token"), found.csrf_token)
        web_sessions.sign_out(conn, found.id)

    await run_in_threadpool(context.db.run_write, work)
    response = RedirectResponse("/sign-in?signed_out=1", status_code=303)
    cookies.clear_cookie(response, request, context, cookies.SESSION_COOKIE)
    return response
