"""Health endpoints for load balancers and orchestrators; no API key, nothing sensitive.

`/healthz`: the process answers. `/readyz`: it can do its work: the database
answers and can take writes (not read-only, its disk not full, no write of
this process failed for an outage in the last few seconds: `store.outage`),
its schema is at this version's newest migration, and (unless
CONVEYOR_READY_REQUIRES_WORKERS is off) some engine process has sent a
heartbeat within CONVEYOR_HEARTBEAT_TIMEOUT, and the background threads this
process runs (`scheduler`, `file_watcher`, `file_watcher_events`) work.
Otherwise 503 with the reasons.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import orjson
from alembic.runtime.migration import MigrationContext
from fastapi import APIRouter, Request
from sqlalchemy import text
from sqlalchemy.engine import Connection
from starlette.responses import Response

from conveyor.context import AppContext, ctx
from conveyor.observability import components
from conveyor.store import heartbeats, migrate, outage

router = APIRouter()
log = logging.getLogger("conveyor.api")

_CHECK = {"type": "string", "description": "ok, or why the check failed"}
READY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["ready", "unavailable"]},
        "checks": {
            "type": "object",
            "properties": {"database": _CHECK, "migrations": _CHECK, "workers": _CHECK},
            "additionalProperties": _CHECK,
        },
    },
}
HEALTH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string", "enum": ["ok"]}},
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


@router.get(
    "/healthz",
    summary="Liveness: the process answers",
    responses={200: _json(HEALTH_SCHEMA, "Alive")},
)
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


@router.get(
    "/readyz",
    summary="Readiness: database, migrations and workers",
    responses={
        200: _json(READY_SCHEMA, "Ready to serve"),
        503: _json(READY_SCHEMA, "Not ready; `checks` says why"),
    },
)
def readyz(request: Request) -> Response:
    context = ctx(request)
    checks: dict[str, str] = {"database": "unreachable"}
    try:
        with context.db.read() as conn:
            conn.execute(text("SELECT 1"))
            checks["database"] = outage.check(context.db, conn) or "ok"
            checks["migrations"] = "could not be read"
            checks["migrations"] = _migrations_check(conn)
            if checks["migrations"] == "ok" and context.settings.ready_requires_workers:
                checks["workers"] = "could not be read"
                checks["workers"] = _workers_check(context, conn)
    except Exception as exc:  # the check that failed is the answer; its details stay in the server
        why = outage.reason(exc)
        if why is not None:
            checks["database"] = why
            log.warning("readiness check: %s", why)
        else:
            log.warning("readiness check failed", exc_info=True)
    # This process's background threads (scheduler, file watcher): "ok" or why not.
    checks.update(components.states())
    ready = all(value.startswith("ok") for value in checks.values())
    body = {"status": "ready" if ready else "unavailable", "checks": checks}
    return Response(
        orjson.dumps(body),
        status_code=200 if ready else 503,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def _migrations_check(conn: Connection) -> str:
    if MigrationContext.configure(conn).get_current_revision() != _head():
        return "the schema is not at this version's newest migration; run `conveyor db upgrade`"
    return "ok"


def _workers_check(context: AppContext, conn: Connection) -> str:
    """Engine processes whose heartbeat is fresh: younger than CONVEYOR_HEARTBEAT_TIMEOUT."""
    timeout = context.settings.heartbeat_timeout
    count = heartbeats.alive(conn, context.clock.now() - int(timeout * 1e6))
    if count:
        return f"ok ({count} alive)"
    return f"no engine worker has sent a heartbeat in the last {timeout:g} s"


@functools.cache
def _head() -> str:
    return migrate.head_revision()
