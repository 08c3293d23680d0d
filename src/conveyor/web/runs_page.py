"""The Runs page (/runs): the runs the signed-in user may see across automations.

Its filters (statuses, trigger, automation, created date range in UTC days) are
turned into the all-runs API's parameters (`GET /api/conveyor/v1/automation_runs`),
validated by the same parser and read by the same keyset query, so its cursors
are the API's: a page of the UI and of the API with the same filter are the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from markupsafe import Markup, escape
from starlette.responses import Response

from conveyor.api.all_runs import TRIGGERS
from conveyor.context import ctx
from conveyor.domain import errors
from conveyor.domain.listing import AllRunsQuery, Cursor, parse_all_runs_query, query_pairs
from conveyor.domain.runs import RunStatus
from conveyor.store import all_runs
from conveyor.store.prepared import run_steps
from conveyor.store.runs import RunRow
from conveyor.web import presentation
from conveyor.web import session as cookies
from conveyor.web.templating import badge, render, time_tag

router = APIRouter(include_in_schema=False)

DEFAULT_PER_PAGE = 25
PAGE_SIZES = (10, 25, 50, 100)
PAGE_PARAMS = ("status", "trigger", "automation", "from", "to", "per_page", "order", "cursor")


@dataclass(frozen=True, slots=True)
class RunsFilter:
    """The page's filter as its form shows it (strings as typed, validated)."""

    statuses: tuple[str, ...]
    trigger: str
    automation: str
    start: str  # YYYY-MM-DD or ""
    end: str
    per_page: int
    ascending: bool

    def params(self, cursor: str | None = None) -> list[tuple[str, str]]:
        """The page's own URL parameters for this filter (and a cursor)."""
        found = [("status", s) for s in self.statuses]
        for name, value in (
            ("trigger", self.trigger),
            ("automation", self.automation),
            ("from", self.start),
            ("to", self.end),
        ):
            if value:
                found.append((name, value))
        found.append(("per_page", str(self.per_page)))
        if self.ascending:
            found.append(("order", "oldest"))
        if cursor:
            found.append(("cursor", cursor))
        return found

    @property
    def narrowed(self) -> bool:
        return bool(self.statuses or self.trigger or self.automation or self.start or self.end)


def _day(raw: str, name: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise errors.RequestParamsInvalid(
            f"{name} must be a date written YYYY-MM-DD, got {raw[:40]!r}."
        ) from None


def _midnight(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def parse_page(pairs: list[tuple[str, str]], codec: Any) -> tuple[RunsFilter, AllRunsQuery]:
    """The page's parameters as a filter for its form and the all-runs API query."""
    unknown = sorted({k[:40] for k, _ in pairs} - set(PAGE_PARAMS))
    if unknown:
        raise errors.RequestParamsInvalid(
            f"Unknown parameter: {', '.join(unknown)}. This page takes {', '.join(PAGE_PARAMS)}."
        )
    single = {k: v.strip() for k, v in pairs if k != "status"}
    statuses = tuple(sorted({v for k, v in pairs if k == "status" and v}))
    order = single.get("order", "")
    if order not in ("", "newest", "oldest"):
        raise errors.RequestParamsInvalid(f"order must be newest or oldest, got {order[:40]!r}.")
    api: list[tuple[str, str]] = [
        ("per_page", single.get("per_page") or str(DEFAULT_PER_PAGE)),
        ("sort_by[created_at]", "asc" if order == "oldest" else "desc"),
    ]
    if statuses:
        api.append(("filter[status]", ",".join(statuses)))
    if single.get("trigger"):
        api.append(("filter[trigger]", single["trigger"]))
    if single.get("automation"):
        api.append(("filter[automation_id]", single["automation"]))
    start = _day(single["from"], "from") if single.get("from") else None
    end = _day(single["to"], "to") if single.get("to") else None
    if start is not None:
        api.append(("filter_gteq[created_at]", _midnight(start)))
    if end is not None:  # the whole day `to` is included
        api.append(("filter_lt[created_at]", _midnight(end + timedelta(days=1))))
    if single.get("cursor"):
        api.append(("cursor", single["cursor"]))
    query = parse_all_runs_query(api, codec, TRIGGERS, DEFAULT_PER_PAGE)
    shown = RunsFilter(
        statuses,
        single.get("trigger", ""),
        single.get("automation", ""),
        start.isoformat() if start else "",
        end.isoformat() if end else "",
        query.per_page,
        order == "oldest",
    )
    return shown, query


def rows_html(rows: list[RunRow], names: dict[int, tuple[str, bool]], now: int) -> Markup:
    """The table's rows (written here, as the automation page's are); names are escaped."""
    out = []
    for row in rows:
        run_id, automation_id, completed_at = row.id, row.automation_id, row.completed_at
        created_at, status, stage, trigger = row.created_at, row.status, row.run_stage, row.trigger
        ok, failed = row.successful_operations, row.failed_operations
        name, deleted = names.get(automation_id, ("", True))
        label = escape(name or f"Automation {automation_id}")
        automation = (
            f'{label} <span class="muted small">#{automation_id} (deleted)</span>'
            if deleted
            else f'<a href="/automations/{automation_id}">{label}</a>'
        )
        took = presentation.run_duration(created_at, completed_at, now)
        so_far = ' <span class="muted small">so far</span>' if completed_at is None else ""
        out.append(
            f'<tr data-run-id="{run_id}">'
            f'<th scope="row"><a href="/runs/{run_id}">{run_id}</a></th>'
            f'<td data-label="Automation">{automation}</td>'
            f'<td data-label="Created">{time_tag(created_at)}</td>'
            f'<td data-label="Trigger">{escape(trigger)}</td>'
            f'<td data-label="Stage" class="secondary-col">'
            f"{escape(presentation.stage_label(stage))}</td>"
            f'<td data-label="Status">{badge(status)}</td>'
            f'<td data-label="Successful" class="num">{ok}</td>'
            f'<td data-label="Failed" class="num">{failed}</td>'
            f'<td data-label="Duration" class="num">{presentation.duration(took)}{so_far}</td>'
            "</tr>\n"
        )
    return Markup("".join(out))


@router.get("/runs")
def runs_page(request: Request) -> Response:
    context = ctx(request)
    pairs = query_pairs(request.scope.get("query_string", b""))
    with context.db.read() as conn:
        session = cookies.require_session(conn, request, context)
        shown, query = parse_page(pairs, context.codec)
        page = run_steps(conn, all_runs.list_all_runs(conn.dialect, query, session.user))
        names = all_runs.automation_names(conn, [row[1] for row in page.rows])

    def page_url(position: Cursor | None) -> str | None:
        if position is None:
            return None
        token = context.codec.encode(query.scope, query.sort, position)
        return "/runs?" + urlencode(shown.params(token))

    now = context.clock.now()
    return render(
        "runs.html",
        title="Runs",
        user=session.user,
        csrf_token=session.csrf_token,
        now=now,
        shown=shown,
        statuses=[s.value for s in RunStatus],
        triggers=TRIGGERS,
        page_sizes=sorted({*PAGE_SIZES, query.per_page}),
        rows=rows_html(page.rows, names, now),
        is_first_page=query.cursor is None,
        next_url=page_url(page.next_cursor),
        prev_url=page_url(page.prev_cursor),
        api_url="/api/conveyor/v1/automation_runs?"
        + urlencode([(k, v) for k, v in _api_params(query)]),
    )


def _api_params(query: AllRunsQuery) -> list[tuple[str, str]]:
    """The API request giving this page's first page (shown to the reader)."""
    found: list[tuple[str, str]] = []
    if query.statuses:
        found.append(("filter[status]", ",".join(query.statuses)))
    if query.triggers:
        found.append(("filter[trigger]", ",".join(query.triggers)))
    if query.automation_id is not None:
        found.append(("filter[automation_id]", str(query.automation_id)))
    for r in query.ranges:
        found.append((f"filter_{r.op}[created_at]", presentation.iso(r.value) or ""))
    found.append(("sort_by[created_at]", "desc" if query.sort.descending else "asc"))
    return found
