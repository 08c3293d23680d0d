"""Conveyor's own API (`/api/conveyor/v1`): what the Files.com-compatible body cannot carry.

`GET /api/conveyor/v1/automation_runs/{id}`: the run as Files.com shows it,
plus `log_expires_at` (when retention will prune it; null while it runs or
when kept forever) and `retention_days`. `GET|PUT
/api/conveyor/v1/automations/{id}/retention`: an automation's own retention
(days, 0 keeps its runs forever, null falls back to CONVEYOR_RETENTION_DAYS).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from conveyor.api.automations import visible_automation
from conveyor.api.body import read_limited
from conveyor.api.openapi import API_KEY, AUTOMATION_RUN_SCHEMA, ERROR_SCHEMA
from conveyor.api.runs import JSON, encoder_for, visible_run
from conveyor.clock import to_rfc3339
from conveyor.context import ctx
from conveyor.domain import errors
from conveyor.domain.listing import parse_id
from conveyor.domain.retention import log_expires_at, retention_days
from conveyor.store import retention as store
from conveyor.store.prepared import run_steps

router = APIRouter(prefix="/api/conveyor/v1")
MAX_RETENTION_DAYS = 100_000

# OpenAPI 3.1 (what FastAPI serves) spells "may be null" as a type list.
_NULLABLE_INT = {"type": ["integer", "null"], "minimum": 0}
RUN_SCHEMA: dict[str, Any] = {
    **AUTOMATION_RUN_SCHEMA,
    "required": [*AUTOMATION_RUN_SCHEMA["required"], "log_expires_at", "retention_days"],
    "properties": {
        **AUTOMATION_RUN_SCHEMA["properties"],
        "log_expires_at": {
            "type": ["string", "null"],
            "format": "date-time",
            "description": "When retention prunes this run and its log; null while it is "
            "unfinished or when its automation keeps runs forever.",
        },
        "retention_days": {"type": "integer", "minimum": 0},
    },
}
RETENTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["automation_id", "retention_days", "effective_retention_days"],
    "properties": {
        "automation_id": {"type": "integer", "format": "int64"},
        "retention_days": {**_NULLABLE_INT, "maximum": MAX_RETENTION_DAYS},
        "effective_retention_days": {"type": "integer", "minimum": 0},
    },
}
RETENTION_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["retention_days"],
    "properties": {"retention_days": {**_NULLABLE_INT, "maximum": MAX_RETENTION_DAYS}},
}


# A retention body is one small JSON object.
MAX_BODY_BYTES = 4096


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS: dict[int | str, dict[str, Any]] = {
    str(code): _json(ERROR_SCHEMA, text)
    for code, text in (
        (400, "Bad request"),
        (401, "Not authenticated"),
        (404, "Not found"),
        (429, "Rate limited"),
    )
}


@router.get(
    "/automation_runs/{run_id}",
    summary="Show Automation Run with Conveyor's fields",
    responses={"200": _json(RUN_SCHEMA, "The run"), **_ERRORS},
    openapi_extra={"security": API_KEY},
)
def find_run(run_id: str, request: Request) -> Response:
    context = ctx(request)
    with context.db.read() as conn:
        row = run_steps(conn, visible_run(request, run_id))
        found = store.run_retention(conn, row.id)
    if found is None:
        raise errors.NotFound(f"Automation Run {row.id} not found.")
    default = context.settings.retention_days
    body = encoder_for(context, request).run(row)
    body["log_expires_at"] = to_rfc3339(
        log_expires_at(found.completed_at, found.override_days, default)
    )
    body["retention_days"] = retention_days(found.override_days, default)
    return Response(orjson.dumps(body), media_type=JSON)


def _retention_body(automation_id: int, override: int | None, default: int) -> bytes:
    return orjson.dumps(
        {
            "automation_id": automation_id,
            "retention_days": override,
            "effective_retention_days": retention_days(override, default),
        }
    )


@router.get(
    "/automations/{automation_id}/retention",
    summary="Show an automation's retention",
    responses={"200": _json(RETENTION_SCHEMA, "The retention"), **_ERRORS},
    openapi_extra={"security": API_KEY},
)
def show_retention(automation_id: str, request: Request) -> Response:
    context = ctx(request)
    target = parse_id(automation_id)
    with context.db.read() as conn:
        visible_automation(conn, request, target)
        override = store.get_override(conn, target)
    body = _retention_body(target, override, context.settings.retention_days)
    return Response(body, media_type=JSON)


@router.put(
    "/automations/{automation_id}/retention",
    summary="Set an automation's retention",
    responses={"200": _json(RETENTION_SCHEMA, "The retention now"), **_ERRORS},
    openapi_extra={
        "security": API_KEY,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": RETENTION_BODY}},
        },
    },
)
async def set_retention(automation_id: str, request: Request) -> Response:
    context = ctx(request)
    target = parse_id(automation_id)
    days = _days(await read_limited(request, MAX_BODY_BYTES, "The request body"))

    def work(conn: Any) -> None:
        visible_automation(conn, request, target)
        store.set_override(conn, target, days)

    context.db.run_write(work)
    body = _retention_body(target, days, context.settings.retention_days)
    return Response(body, media_type=JSON)


def _days(raw: bytes) -> int | None:
    try:
        data = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError:
        raise errors.RequestParamsInvalid("The request body is not valid JSON.") from None
    if not isinstance(data, dict) or "retention_days" not in data:
        raise errors.RequestParamsRequired(
            'Send a JSON object {"retention_days": DAYS}; DAYS is 0 (keep forever), '
            "a number of days, or null (use the server's default)."
        )
    days = data["retention_days"]
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= MAX_RETENTION_DAYS:
        raise errors.RequestParamsInvalid(
            f"retention_days must be null or a whole number from 0 to {MAX_RETENTION_DAYS}."
        )
    return days
