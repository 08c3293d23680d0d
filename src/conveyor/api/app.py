"""The API's ASGI application: routes, error rendering and start-up of background
services. `conveyor.app` builds the whole app from it, with the web UI mounted."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi

from conveyor.api import (
    all_runs,
    automation_logs,
    automations,
    bulk,
    health,
    openapi_errors,
    permissions,
    ratelimit,
    retention,
    run_control,
    runs,
    schedules,
    webhooks,
)
from conveyor.api import errors as error_rendering
from conveyor.api import metrics as metrics_api
from conveyor.api.accesslog import AccessLogMiddleware
from conveyor.api.auth import authenticate_first
from conveyor.api.body import MAX_BODY_BYTES, BodyLimitMiddleware
from conveyor.api.openapi import SECURITY_SCHEMES
from conveyor.api.requestid import RequestIdMiddleware
from conveyor.clock import Clock, SystemClock
from conveyor.config import Settings
from conveyor.context import AppContext, Service
from conveyor.domain.listing import CursorCodec
from conveyor.domain.signing import UrlSigner
from conveyor.observability import runevents
from conveyor.store import secrets
from conveyor.store.database import Database, async_read_pool


def load_secret(db: Database, settings: Settings) -> bytes:
    if settings.secret_key:
        return settings.secret_key.encode("utf-8")
    with db.write() as conn:
        return secrets.get_or_create_secret(conn)


def create_api(
    settings: Settings,
    db: Database,
    clock: Clock | None = None,
    services: list[Service] | None = None,
    body_limit: Callable[[str], int] = lambda _path: MAX_BODY_BYTES,
) -> FastAPI:
    """Build the API's app on an already migrated database; `body_limit(path)` is the
    largest request body a path takes (`conveyor.app` gives the web UI's its own)."""
    secret = load_secret(db, settings)
    clock = clock or SystemClock()
    context = AppContext(
        settings=settings,
        db=db,
        clock=clock,
        rate_limiter=ratelimit.make_limiter(settings, db.engine.dialect, clock),
        codec=CursorCodec(secret),
        signer=UrlSigner(secret),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if not db.is_sqlite:  # a pool belongs to the event loop that serves the app
            context.read_pool = async_read_pool(db.url)
            await context.read_pool.open()
        stops = [start(context) for start in services or []]
        try:
            yield
        finally:
            for stop in reversed(stops):
                stop()
            if context.read_pool is not None:
                await context.read_pool.close()
                context.read_pool = None

    app = FastAPI(
        title="Conveyor",
        version="0.1.0",
        description="Files.com-compatible API for file automations and their runs.",
        lifespan=lifespan,
        openapi_url="/api/rest/v1/openapi.json",
        docs_url=None,  # the web UI serves the reference itself, without a CDN
        redoc_url=None,
    )
    app.state.ctx = context
    # Innermost: every body is limited before any route reads it (API bodies are JSON
    # objects or webhook payloads).
    app.add_middleware(BodyLimitMiddleware, limit_for=body_limit)
    app.add_middleware(RequestIdMiddleware)
    # Outside the request id middleware, so the access log sees the id it set.
    app.add_middleware(
        AccessLogMiddleware, log_requests=settings.access_log, record=settings.metrics
    )
    runevents.install()
    error_rendering.install(app)
    # Routes with an API key authenticate before they read anything else (api.auth);
    # the two run reads do so among their own steps (api.runs), the status-messages
    # link and webhooks carry their credential in the URL.
    first = [Depends(authenticate_first)]
    app.include_router(runs.router)
    app.include_router(automations.router, dependencies=first)
    app.include_router(run_control.router, dependencies=first)
    app.include_router(automation_logs.router, dependencies=first)
    app.include_router(permissions.router, dependencies=first)
    app.include_router(schedules.router, dependencies=first)  # Conveyor extension: next runs
    app.include_router(webhooks.router)  # no API key: the secret URL is the credential
    app.include_router(retention.router, dependencies=first)
    app.include_router(all_runs.router, dependencies=first)  # Conveyor: runs of all automations
    app.include_router(bulk.router, dependencies=first)  # Conveyor: bulk cancel and rerun
    app.include_router(health.router)
    if settings.metrics:
        app.include_router(metrics_api.router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
            openapi_errors.complete(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
