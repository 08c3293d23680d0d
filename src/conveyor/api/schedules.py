"""Conveyor extension: `GET /api/rest/v1/automations/{id}/next_runs`, an automation's next slots.

Not part of the Files.com API (the official SDK never calls it). Each entry
is the instant a scheduled run will be created for (its `runtime`) and the
same instant in the schedule's time zone. A manual, webhook or action
automation, or a disabled one, has none.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from conveyor.api.automations import visible_automation
from conveyor.api.runs import JSON
from conveyor.clock import to_rfc3339
from conveyor.context import ctx
from conveyor.domain import errors
from conveyor.domain.listing import parse_id, parse_int
from conveyor.domain.schedules import local_iso, schedule_of, upcoming_slots

router = APIRouter(prefix="/api/rest/v1")

MAX_COUNT = 100


@router.get(
    "/automations/{automation_id}/next_runs",
    summary="Next planned runs of a scheduled automation (Conveyor extension)",
)
def next_runs(
    automation_id: str,
    request: Request,
    count: str | None = Query(None, description=f"How many slots, 1..{MAX_COUNT} (default 10)."),
) -> Response:
    context = ctx(request)
    target = parse_id(automation_id)
    wanted = parse_int("count", count, required=False)
    if wanted is None:
        wanted = 10
    if not 1 <= wanted <= MAX_COUNT:
        raise errors.RequestParamsInvalid(f"count must be between 1 and {MAX_COUNT}.")
    with context.db.read() as conn:
        automation = visible_automation(conn, request, target)
    schedule = None if automation.disabled else schedule_of(automation)
    slots = [] if schedule is None else upcoming_slots(schedule, context.clock.now(), wanted)
    body = [
        {"runtime": to_rfc3339(slot), "local_time": local_iso(slot, schedule.zone)}
        for slot in slots
        if schedule is not None
    ]
    return Response(orjson.dumps(body), media_type=JSON)
