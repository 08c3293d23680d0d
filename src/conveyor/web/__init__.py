"""The web UI: server-rendered pages at `/`, their static files, sign-in sessions.

`install(app)` adds the pages to the API's app. Pages are complete without
JavaScript; the scripts (static/conveyor.js on every page, static/run-live.js
on a running run's page) only add to them. docs/ui.md describes the pages and
their security.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from conveyor.web import (
    api_docs,
    automation_form,
    automation_page,
    automations_page,
    run_actions,
    run_page,
    runs_page,
    sign_in,
)
from conveyor.web.error_pages import error_page
from conveyor.web.security import SECURITY_HEADERS, SecurityHeadersMiddleware
from conveyor.web.session import SignInRequired, sign_in_url
from conveyor.web.templating import STATIC


def install(app: FastAPI) -> None:
    """Mount the pages and static files, and render the UI's errors as HTML pages."""
    app.include_router(sign_in.router)
    app.include_router(automations_page.router)
    app.include_router(automation_form.router)  # before /automations/{id}: it has /automations/new
    app.include_router(automation_page.router)
    app.include_router(runs_page.router)  # /runs, before /runs/{id}
    app.include_router(run_page.router)
    app.include_router(run_actions.router)  # /runs/{id}/cancel and /rerun
    app.include_router(api_docs.router)  # /api/rest/v1/docs, Swagger UI from this server
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.add_middleware(SecurityHeadersMiddleware)
    app.state.html_error_page = error_page

    @app.exception_handler(SignInRequired)
    async def _sign_in_first(request: Request, exc: SignInRequired) -> Response:
        # After signing in, a GET resumes where it was; a form post cannot be replayed.
        target = exc.next_path if request.method == "GET" else "/automations"
        return RedirectResponse(sign_in_url(target), status_code=303, headers=SECURITY_HEADERS)


__all__ = ["install"]
