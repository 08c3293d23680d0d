"""An automation's page (/automations/{id}): settings, schedule, runs table and charts.

The runs table takes the API's list parameters in its URL (`filter[status]`,
`sort_by[FIELD]`, `per_page`, `cursor`), is validated by the same parser and
read by the same keyset query, and pages with the same signed cursors: a
cursor copied from the UI works against the API and the other way round.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from markupsafe import Markup, escape
from starlette.responses import Response

from conveyor.api.automations import encode_automation
from conveyor.context import ctx
from conveyor.domain import errors
from conveyor.domain.automations import Automation, Trigger
from conveyor.domain.listing import (
    RUN_KEY_TYPES,
    RUN_LIST_GROUPS,
    RUN_LIST_PARAMS,
    RunListQuery,
    Sort,
    page_tokens,
    parse_run_list_query,
    query_pairs,
)
from conveyor.domain.runs import RunStatus
from conveyor.domain.schedules import (
    fingerprint,
    human_readable_schedule,
    local_iso,
    schedule_of,
    upcoming_slots,
)
from conveyor.store import run_views
from conveyor.store import runs as runs_store
from conveyor.store.prepared import run_steps
from conveyor.store.runs import RunRow
from conveyor.web import charts, presentation
from conveyor.web import session as cookies
from conveyor.web.automations_page import parse_id
from conveyor.web.templating import badge, render, time_tag

router = APIRouter(include_in_schema=False)

DEFAULT_PER_PAGE = 25
PAGE_SIZES = (10, 25, 50, 100)
CHART_DAYS = 30
DURATION_RUNS = 30
NEXT_TIMES = 5
SORTABLE = {"created_at": "Created", "status": "Status"}


WEB_FILTERS = ("trigger", "from", "to")  # the page's own narrowing, not API parameters


def _day(raw: str, name: str) -> int:
    """A YYYY-MM-DD date (UTC) as the µs of its midnight."""
    try:
        parsed = date.fromisoformat(raw)
    except ValueError:
        raise errors.RequestParamsInvalid(
            f"{name} must be a date written YYYY-MM-DD, got {raw[:40]!r}."
        ) from None
    return (parsed - date(1970, 1, 1)).days * presentation.DAY_US


def parse_page_query(pairs: list[tuple[str, str]], automation_id: int, codec: Any) -> RunListQuery:
    """The API's run list query (its parser, its cursors) narrowed by the page's
    trigger and created date range (UTC days, both ends included)."""
    api_pairs = [
        (k, v)
        for k, v in pairs
        if k != "cursor" and (k in RUN_LIST_PARAMS or k.partition("[")[0] in RUN_LIST_GROUPS)
    ]
    query = parse_run_list_query(
        [("automation_id", str(automation_id)), *api_pairs], codec, DEFAULT_PER_PAGE
    )
    own = {k: v for k, v in pairs if k in WEB_FILTERS and v}
    trigger = own.get("trigger")
    if trigger is not None and trigger not in {t.value for t in Trigger}:
        raise errors.InvalidFilterParamValue(
            f"trigger must be one of {', '.join(t.value for t in Trigger)}, got {trigger[:40]!r}."
        )
    start = _day(own["from"], "from") if "from" in own else None
    end = _day(own["to"], "to") + presentation.DAY_US if "to" in own else None
    query = replace(query, trigger=trigger, created_from=start, created_before=end)
    token = dict(pairs).get("cursor")
    if token:
        key_type = RUN_KEY_TYPES[query.sort.field]
        query = replace(query, cursor=codec.decode(token, query.scope, query.sort, key_type))
    return query


def _day_text(us: int | None, end: bool = False) -> str:
    if us is None:
        return ""
    return (date(1970, 1, 1) + timedelta(days=us // presentation.DAY_US - int(end))).isoformat()


def list_url(automation_id: int, query: RunListQuery, **changes: Any) -> str:
    """The page's URL for the query with `changes` (status, sort, per_page, cursor)."""
    status = changes.get("status", query.status)
    sort: Sort = changes.get("sort", query.sort)
    per_page = changes.get("per_page", query.per_page)
    params: list[tuple[str, str]] = []
    if status is not None:
        params.append(("filter[status]", str(status)))
    if not changes.get("clear_narrowing"):
        if query.trigger is not None:
            params.append(("trigger", query.trigger))
        if query.created_from is not None:
            params.append(("from", _day_text(query.created_from)))
        if query.created_before is not None:
            params.append(("to", _day_text(query.created_before, end=True)))
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


# automation id and schedule fingerprint -> (computed after, the next slots then).
# The slots after any instant from `computed after` up to (not including) the first
# slot are the same, so an entry is exact while now is in that range; a changed
# schedule has another key.
_NEXT_TIMES: dict[str, tuple[int, list[NextTime]]] = {}
_NEXT_TIMES_KEPT = 4096


def next_times(automation: Automation, now: int) -> list[NextTime]:
    """The next slots, as the API's next_runs lists them; none for a disabled automation.

    Computing them walks the calendar in the schedule's zone (a few hundred µs),
    so they are remembered per automation and schedule until the first of them
    has passed."""
    schedule = None if automation.disabled else schedule_of(automation)
    if schedule is None:
        return []
    key = f"{automation.id}|{fingerprint(automation)}"
    kept = _NEXT_TIMES.get(key)
    if kept is not None and kept[0] <= now and (not kept[1] or now < kept[1][0].at):
        return kept[1]
    found = [
        NextTime(slot, local_iso(slot, schedule.zone))
        for slot in upcoming_slots(schedule, now, NEXT_TIMES)
    ]
    if len(_NEXT_TIMES) >= _NEXT_TIMES_KEPT:
        _NEXT_TIMES.clear()
    _NEXT_TIMES[key] = (now, found)
    return found


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
    trigger: str


def run_line(row: RunRow, now: int) -> RunLine:
    took = presentation.run_duration(row.created_at, row.completed_at, now)
    return RunLine(
        row.id,
        row.created_at,
        row.runtime,
        row.completed_at,
        row.status,
        row.run_stage,
        row.successful_operations,
        row.failed_operations,
        took,
        row.trigger,
    )


def runs_html(runs: list[RunLine]) -> Markup:
    """The runs table's rows, written here rather than through the template engine
    (as the charts are): a page has up to `per_page` of them. The only text from
    outside the code is the trigger, which is escaped."""
    rows = []
    for r in runs:
        so_far = ' <span class="muted small">so far</span>' if r.completed_at is None else ""
        rows.append(
            f'<tr data-run-id="{r.id}">'
            f'<th scope="row"><a href="/runs/{r.id}">{r.id}</a></th>'
            f'<td data-label="Created">{time_tag(r.created_at)}</td>'
            f'<td data-label="Runtime" class="secondary-col">{time_tag(r.runtime)}</td>'
            f'<td data-label="Trigger">{escape(r.trigger)}</td>'
            f'<td data-label="Stage" class="secondary-col">'
            f"{escape(presentation.stage_label(r.run_stage))}</td>"
            f'<td data-label="Status">{badge(r.status)}</td>'
            f'<td data-label="Successful" class="num">{r.successful}</td>'
            f'<td data-label="Failed" class="num">{r.failed}</td>'
            f'<td data-label="Duration" class="num">{presentation.duration(r.duration)}{so_far}'
            "</td></tr>\n"
        )
    return Markup("".join(rows))


_NOTICES = {
    "created": "The automation was created.",
    "saved": "Your changes were saved.",
    "enabled": "The automation is enabled: it runs on its trigger again.",
    "disabled": "The automation is disabled: it does not run until you enable it.",
}


def _notice(request: Request) -> str | None:
    for key, text in _NOTICES.items():
        if key in request.query_params:
            return text
    return None


def webhook_url(automation: Automation, base_url: str) -> str | None:
    """The URL that starts a webhook automation, as the API's webhook_url gives it."""
    return encode_automation(automation, base_url)["webhook_url"]  # type: ignore[no-any-return]


# The charts are pure functions of what they show; pages viewed again with the same
# counts (or durations) reuse them. Up to CHARTS_KEPT of each are kept.
CHARTS_KEPT = 256


@functools.lru_cache(maxsize=CHARTS_KEPT)
def _daily(
    automation_id: int, per_day: tuple[tuple[int, str, int], ...], today: int
) -> tuple[presentation.DailyChart, Markup]:
    """Per automation (`automation_id` is only part of the key), so that an
    automation's first render computes its chart even if another's counts are equal."""
    chart = presentation.daily_chart(per_day, today, CHART_DAYS)
    return chart, charts.daily_svg(chart)


@functools.lru_cache(maxsize=CHARTS_KEPT)
def _durations(
    durations: tuple[tuple[int, str, int], ...],
) -> tuple[presentation.DurationChart, Markup]:
    chart = presentation.duration_chart(durations)
    return chart, charts.durations_svg(chart)


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
    # Each statement its own snapshot on PostgreSQL (no BEGIN and COMMIT round trips):
    # a run created between them shows in one part of the page and not yet in another.
    with context.db.reads() as conn:
        session, automation = cookies.require_session_and_automation(conn, request, context, target)
        query = parse_page_query(pairs, target, context.codec)
        page = run_steps(conn, runs_store.list_runs(conn.dialect, query))
        first_day = today - CHART_DAYS + 1
        recent, per_day = run_views.charts_data(conn, target, DURATION_RUNS, first_day, CHART_DAYS)

    def page_url(token: str | None) -> str | None:
        return None if token is None else list_url(target, query, cursor=token)

    next_token, prev_token = page_tokens(
        context.codec, query.scope, query.sort, query.cursor, page.next_cursor, page.prev_cursor
    )

    durations = tuple(
        (row.id, row.status, presentation.run_duration(row.created_at, row.completed_at, now))
        for row in reversed(recent)
    )
    daily, daily_svg = _daily(target, tuple(per_day), today)
    duration_chart, durations_svg = _durations(durations)
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
        runs=runs_html([run_line(row, now) for row in page.rows]),
        triggers=[t.value for t in Trigger],
        filter_from=_day_text(query.created_from),
        filter_to=_day_text(query.created_before, end=True),
        webhook_url=webhook_url(automation, context.base_url(request))
        if automation.trigger is Trigger.WEBHOOK
        else None,
        notice=_notice(request),
        has_any_run=bool(recent),
        is_first_page=query.cursor is None,
        next_url=page_url(next_token),
        prev_url=page_url(prev_token),
        reset_url=list_url(target, query, status=None, clear_narrowing=True),
        daily=daily,
        daily_svg=daily_svg,
        durations=duration_chart,
        durations_svg=durations_svg,
        chart_statuses=presentation.CHART_STATUSES,
    )
