"""A run's page (/runs/{id}) and the small JSON document its script polls (/runs/{id}/live).

The page is complete without JavaScript. While the run is not finished,
static/run-live.js asks /runs/{id}/live?after=LAST_LINE every
POLL_SECONDS for the run's fields and the log lines added since, and stops
once the run is finished.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from markupsafe import Markup
from starlette.responses import Response

from conveyor.api.runs import encoder_for
from conveyor.context import ctx
from conveyor.domain import errors
from conveyor.domain.retention import log_expires_at as log_expires_at_of
from conveyor.domain.runs import MessageLevel, RunStage
from conveyor.store import run_log, run_views
from conveyor.store.runs import RunRow
from conveyor.web import presentation
from conveyor.web import session as cookies
from conveyor.web.automations_page import parse_id
from conveyor.web.security import SECURITY_HEADERS
from conveyor.web.templating import render

router = APIRouter(include_in_schema=False)

LOG_LINES = 500  # the page shows the log's tail; the download has all of it
LIVE_BATCH = 500
POLL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Step:
    """One stage of the timeline and when the run entered it."""

    stage: str
    label: str
    at: int | None
    state: str  # "done", "current", "skipped" or "pending"


def timeline(row: Any, times: run_views.StageTimes | None) -> list[Step]:
    """The five stages in order with their start times.

    A stage before the current one was entered if its time is recorded, if a
    later stage was, or (up to executing) if operations were counted. A
    finished run that jumped to finished (planning failed, aborted) shows the
    stages it never entered as skipped; an unfinished run cannot have skipped
    any, so an earlier stage without a time is done at an unknown time.
    """
    completed_at, created_at, stage = row.completed_at, row.created_at, row.run_stage
    ok, failed = row.successful_operations, row.failed_operations
    order = [s.value for s in RunStage]
    entered: list[int | None] = [
        created_at,
        times.planning_at if times else None,
        times.queued_for_execution_at if times else None,
        times.executing_at if times else None,
        completed_at,
    ]
    position = order.index(stage)
    reached = 0
    for index in range(1, 4):
        if entered[index] is not None:
            reached = index
    if ok + failed > 0:
        reached = 3
    steps = []
    for index, name in enumerate(order):
        if index == position:
            state = "done" if stage == RunStage.FINISHED.value else "current"
        elif index > position:
            state = "pending"
        elif stage == RunStage.FINISHED.value and index > reached:
            state = "skipped"
        else:
            state = "done"
        steps.append(Step(name, presentation.stage_label(name), entered[index], state))
    return steps


def run_fields(row: RunRow, now: int) -> dict[str, Any]:
    """The run as the page's script needs it to refresh the fields it shows."""
    took = presentation.run_duration(row.created_at, row.completed_at, now)
    return {
        "id": row.id,
        "status": row.status,
        "status_label": presentation.status_label(row.status),
        "run_stage": row.run_stage,
        "stage_label": presentation.stage_label(row.run_stage),
        "successful_operations": row.successful_operations,
        "failed_operations": row.failed_operations,
        "completed_at": presentation.when(row.completed_at),
        "completed_iso": presentation.iso(row.completed_at),
        "duration": presentation.duration(took),
        "finished": row.run_stage == RunStage.FINISHED.value,
    }


def _load(conn: Any, request: Request, run_id: int) -> tuple[Any, run_views.RunPageRow]:
    context = ctx(request)
    session = cookies.require_session(conn, request, context)
    found = run_views.run_page_row(conn, run_id, session.user)
    if found is None:
        raise errors.NotFound(f"Automation Run {run_id} not found.")
    return session, found


MAX_SEARCH = 200


def log_html(lines: list[Any]) -> Markup:
    """The log's <li> elements, written here rather than through the template engine:
    a page has up to LOG_LINES of them, and this costs a fraction of a template loop
    (bench/ui_render.py). Level and text are escaped; times are formatted once per
    second, as lines come in bursts."""
    times: dict[int, str] = {}
    parts = []
    for cursor, created, level, text in lines:
        second = created // 1_000_000
        stamp = times.get(second)
        if stamp is None:
            stamp = times[second] = (
                f'<time datetime="{presentation.iso(created)}">{presentation.when(created)}</time>'
            )
        kind = escape(level)
        parts.append(
            f'<li class="line level-{kind}" data-id="{run_log.cursor_text(cursor)}" '
            f'data-level="{kind}">{stamp} '
            f'<span class="level">{kind}</span> <span class="text">{escape(text)}</span></li>\n'
        )
    return Markup("".join(parts))


@dataclass(frozen=True, slots=True)
class LogView:
    """Which lines the log shows: before or after a line's cursor (None: the
    latest), of a level, containing a text."""

    before: run_log.Cursor | None
    after: run_log.Cursor | None
    level: str | None
    search: str | None

    @property
    def paged(self) -> bool:
        return self.before is not None or self.after is not None

    def url(
        self,
        run_id: int,
        before: run_log.Cursor | None = None,
        after: run_log.Cursor | None = None,
    ) -> str:
        params = []
        if before is not None:
            params.append(("before", run_log.cursor_text(before)))
        if after is not None:
            params.append(("after", run_log.cursor_text(after)))
        if self.level:
            params.append(("level", self.level))
        if self.search:
            params.append(("q", self.search))
        return f"/runs/{run_id}" + ("?" + urlencode(params) if params else "") + "#log-h"


def log_cursor(name: str, raw: str | None) -> run_log.Cursor | None:
    """A log line's cursor from the page's URL (a message id, or `id.kind.seq`)."""
    if raw is None or raw == "":
        return None
    found = run_log.parse_cursor(raw)
    if found is None:
        raise errors.InvalidFilterParamValue(
            f"{name} must be a log line's position (such as 12 or 12.2.7), got {raw[:40]!r}."
        )
    return found


def log_view(request: Request) -> LogView:
    """The log's paging and filters from the page's URL; a bad value is a 400 page."""
    query = request.query_params
    before = log_cursor("before", query.get("before"))
    after = log_cursor("after", query.get("after"))
    level = request.query_params.get("level") or None
    if level is not None and level not in {m.value for m in MessageLevel}:
        raise errors.InvalidFilterParamValue(
            f"level must be one of {', '.join(m.value for m in MessageLevel)}, got {level[:40]!r}."
        )
    search = (request.query_params.get("q") or "").strip() or None
    if search is not None and len(search) > MAX_SEARCH:
        raise errors.RequestParamsInvalid(
            f"The search text is longer than {MAX_SEARCH} characters."
        )
    return LogView(before, after, level, search)


@router.get("/runs/{run_id}")
def run_page(run_id: str, request: Request) -> Response:
    context = ctx(request)
    target = parse_id(run_id, "run")
    view = log_view(request)
    # Three statements, each its own snapshot on PostgreSQL (no BEGIN and COMMIT
    # round trips): the session, the run with what the page shows of it, the log.
    with context.db.reads() as conn:
        session, found = _load(conn, request, target)
        log = run_views.message_page(
            conn,
            target,
            LOG_LINES,
            before=view.before,
            after=view.after,
            level=view.level,
            search=view.search,
        )
    row, times = found.run, found.times
    log_expires_at = None
    if row.run_stage == RunStage.FINISHED.value:  # shown for a finished run only
        log_expires_at = log_expires_at_of(
            row.completed_at, found.retention_override, context.settings.retention_days
        )
    lines = log.lines
    now = context.clock.now()
    fields = run_fields(row, now)
    return render(
        "run.html",
        title=f"Run {target}",
        user=session.user,
        csrf_token=session.csrf_token,
        now=now,
        run=row,
        fields=fields,
        automation=found.automation,
        trigger=times.trigger,
        steps=timeline(row, times),
        lines=lines,
        log_html=log_html(lines),
        view=view,
        levels=[m.value for m in MessageLevel],
        earlier_url=view.url(target, before=lines[0][0]) if log.has_earlier and lines else None,
        later_url=view.url(target, after=lines[-1][0]) if log.has_later and lines else None,
        latest_url=view.url(target) if view.paged else None,
        at_tail=not log.has_later,
        last_message_id=run_log.cursor_text(lines[-1][0]) if lines else "0",
        log_url=encoder_for(context, request).status_messages_url(target),
        log_expires_at=log_expires_at,
        poll_ms=int(POLL_SECONDS * 1000),
        max_lines=LOG_LINES,
    )


@router.get("/runs/{run_id}/live")
def run_live(run_id: str, request: Request) -> Response:
    """The run's fields and timeline, and log lines after `after` (a message id)."""
    context = ctx(request)
    target = parse_id(run_id, "run")
    after = log_cursor("after", request.query_params.get("after")) or (0, 0, 0)
    with context.db.reads() as conn:
        _session, found = _load(conn, request, target)
        row, times = found.run, found.times
        lines = []
        if request.query_params.get("log") != "none":  # a reader of earlier lines: fields only
            lines = run_log.lines(conn, target, LIVE_BATCH, after=after)
    body = {
        "run": run_fields(row, context.clock.now()),
        "timeline": [
            {
                "stage": s.stage,
                "state": s.state,
                "at": presentation.when(s.at),
                "iso": presentation.iso(s.at),
            }
            for s in timeline(row, times)
        ],
        "messages": [
            {
                "id": run_log.cursor_text(cursor),
                "at": presentation.when(created),
                "iso": presentation.iso(created),
                "level": level,
                "text": text,
            }
            for cursor, created, level, text in lines
        ],
        "more": len(lines) == LIVE_BATCH,
    }
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)
