"""An automation's page (/automations/{id}): settings, schedule, runs table and charts.

The runs table takes the API's list parameters in its URL (`filter[status]`,
`sort_by[FIELD]`, `per_page`, `cursor`), is validated by the same parser and
read by the same keyset query, and pages with the same signed cursors: a
cursor copied from the UI works against the API and the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from conveyor.api.context import ctx
from conveyor.domain.automations import Automation
from conveyor.domain.listing import (
    Cursor,
    RunListQuery,
    Sort,
    parse_run_list_query,
    query_pairs,
)
from conveyor.domain.runs import RunStatus
from conveyor.domain.schedules import (
    human_readable_schedule,
    local_iso,
    schedule_of,
    upcoming_slots,
)
from conveyor.store import run_views
from conveyor.store import runs as runs_store
from conveyor.web import charts, daily_counts, presentation
from conveyor.web import session as cookies
from conveyor.web.automations_page import parse_id, visible_automation
from conveyor.web.templating import render

router = APIRouter(include_in_schema=False)

DEFAULT_PER_PAGE = 25
PAGE_SIZES = (10, 25, 50, 100)
CHART_DAYS = 30
DURATION_RUNS = 30
NEXT_TIMES = 5
SORTABLE = {"created_at": "Created", "status": "Status"}


def list_url(automation_id: int, query: RunListQuery, **changes: Any) -> str:
    """The page's URL for the query with `changes` (status, sort, per_page, cursor)."""
    status = changes.get("status", query.status)
    sort: Sort = changes.get("sort", query.sort)
    per_page = changes.get("per_page", query.per_page)
    params: list[tuple[str, str]] = []
    if status is not None:
        params.append(("filter[status]", str(status)))
    # The API reads sort_by[automation_id] as the id order (Sort field None), and a
    # cursor only works with the sort it was made for, so that sort is kept too.
    field = sort.field or "automation_id"
    params.append((f"sort_by[{field}]", "desc" if sort.descending else "asc"))
    params.append(("per_page", str(per_page)))
    if changes.get("cursor"):
        params.append(("cursor", changes["cursor"]))
    return f"/automations/{automation_id}?{urlencode(params)}"


@dataclass(frozen=True, slots=True)
class NextTime:
    """An upcoming slot: when a scheduled run will be created, in UTC and in the schedule's zone."""

    at: int
    local: str


def next_times(automation: Automation, now: int) -> list[NextTime]:
    """The next slots, as the API's next_runs lists them; none for a disabled automation."""
    schedule = None if automation.disabled else schedule_of(automation)
    if schedule is None:
        return []
    return [
        NextTime(slot, local_iso(slot, schedule.zone))
        for slot in upcoming_slots(schedule, now, NEXT_TIMES)
    ]


@dataclass(frozen=True, slots=True)
class Column:
    """A sortable column header: where clicking it goes, and its current order."""

    field: str
    label: str
    url: str
    aria_sort: str  # "ascending", "descending" or "none"


def sort_columns(automation_id: int, query: RunListQuery) -> dict[str, Column]:
    columns = {}
    for field, label in SORTABLE.items():
        current = query.sort.field == field
        # First click: newest first for times, A-Z for statuses; then it toggles.
        descending = (not query.sort.descending) if current else field == "created_at"
        url = list_url(automation_id, query, sort=Sort(field, descending))
        order = "none"
        if current:
            order = "descending" if query.sort.descending else "ascending"
        columns[field] = Column(field, label, url, order)
    return columns


@dataclass(frozen=True, slots=True)
class RunLine:
    id: int
    created_at: int
    runtime: int
    completed_at: int | None
    status: str
    run_stage: str
    successful: int
    failed: int
    duration: int


def run_line(row: Any, now: int) -> RunLine:
    run_id, _automation, completed_at, created_at, runtime, status, stage, ok, failed = row
    took = presentation.run_duration(created_at, completed_at, now)
    return RunLine(run_id, created_at, runtime, completed_at, status, stage, ok, failed, took)


@router.get("/automations/{automation_id}")
def automation_page(automation_id: str, request: Request) -> Response:
    context = ctx(request)
    target = parse_id(automation_id, "automation")
    pairs = [
        (key, value)
        for key, value in query_pairs(request.scope.get("query_string", b""))
        if key != "automation_id"
    ]
    now = context.clock.now()
    today = now // presentation.DAY_US
    with context.db.read() as conn:
        session = cookies.require_session(conn, request, context)
        automation = visible_automation(conn, target, session.user)
        query = parse_run_list_query(
            [("automation_id", str(target)), *pairs], context.codec, DEFAULT_PER_PAGE
        )
        page = runs_store.list_runs(conn, query)
        recent = run_views.recent_runs(conn, [target], DURATION_RUNS)[target]
        per_day = daily_counts.counts(conn, target, today, CHART_DAYS)

    def page_url(position: Cursor | None) -> str | None:
        if position is None:
            return None
        token = context.codec.encode(query.scope, query.sort, position)
        return list_url(target, query, cursor=token)

    durations = [
        (row[0], row[5], presentation.run_duration(row[3], row[2], now)) for row in reversed(recent)
    ]
    daily = presentation.daily_chart(per_day, today, CHART_DAYS)
    duration_chart = presentation.duration_chart(durations)
    return render(
        "automation.html",
        title=automation.name or f"Automation {automation.id}",
        user=session.user,
        csrf_token=session.csrf_token,
        now=now,
        automation=automation,
        schedule=human_readable_schedule(automation),
        next_times=next_times(automation, now),
        query=query,
        statuses=[status.value for status in RunStatus],
        page_sizes=sorted({*PAGE_SIZES, query.per_page}),
        columns=sort_columns(target, query),
        runs=[run_line(row, now) for row in page.rows],
        has_any_run=bool(recent),
        is_first_page=query.cursor is None,
        next_url=page_url(page.next_cursor),
        prev_url=page_url(page.prev_cursor),
        reset_url=list_url(target, query, status=None),
        daily=daily,
        daily_svg=charts.daily_svg(daily),
        durations=duration_chart,
        durations_svg=charts.durations_svg(duration_chart),
        chart_statuses=presentation.CHART_STATUSES,
    )
