"""The whole ASGI application of `conveyor serve`: the API (`conveyor.api.app`) with the
web UI mounted at `/` (`conveyor.web`). It is assembled here, above both, so that
neither imports the other (docs/architecture.md, "Layers")."""

from __future__ import annotations

from fastapi import FastAPI

from conveyor import web
from conveyor.api.app import create_api
from conveyor.api.body import MAX_BODY_BYTES
from conveyor.clock import Clock
from conveyor.config import Settings
from conveyor.context import Service
from conveyor.store.database import Database
from conveyor.web.security import MAX_FORM_BYTES, is_ui_path


def create_app(
    settings: Settings,
    db: Database,
    clock: Clock | None = None,
    services: list[Service] | None = None,
) -> FastAPI:
    """Build the app on an already migrated database: the API, and the web UI (pages,
    static files, HTML error pages outside /api/), whose forms are small."""
    app = create_api(
        settings,
        db,
        clock,
        services,
        body_limit=lambda path: MAX_FORM_BYTES if is_ui_path(path) else MAX_BODY_BYTES,
    )
    web.install(app)
    return app
