"""The automations page (/automations) and its "Run now" button (POST /automations/{id}/run)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from conveyor.context import ctx
from conveyor.domain import errors
from conveyor.domain.automations import Automation, check_can_run_manually
from conveyor.domain.listing import Sort, page_tokens
from conveyor.domain.runs import RunStatus
from conveyor.domain.schedules import human_readable_schedule
from conveyor.store import automations as automations_store
from conveyor.store import run_views
from conveyor.store import runs as runs_store
from conveyor.store.prepared import run_steps
from conveyor.store.runs import RunRow
from conveyor.web import session as cookies
from conveyor.web.security import check_token, read_form
from conveyor.web.templating import render

router = APIRouter(include_in_schema=False)

PER_PAGE = 50
STRIP_RUNS = 20
_SORT = Sort(field=None, descending=False)  # creation order, as the API lists them


@dataclass(frozen=True, slots=True)
class Mark:
    """One run in an automation's status strip."""

    id: int
    status: str
    created_at: int


@dataclass(frozen=True, slots=True)
class AutomationSummary:
    automation: Automation
    schedule: str | None
    latest: RunRow | None
    strip: list[Mark]  # oldest first, newest last
    finished: int
    succeeded: int


def summarize(automation: Automation, recent: list[RunRow]) -> AutomationSummary:
    """`recent` is newest first, as the store reads it."""
    strip = [Mark(row.id, row.status, row.created_at) for row in reversed(recent)]
    unfinished = (RunStatus.RUNNING.value, RunStatus.QUEUED.value)
    finished = [mark for mark in strip if mark.status not in unfinished]
    succeeded = sum(1 for mark in finished if mark.status == RunStatus.SUCCESS.value)
    return AutomationSummary(
        automation,
        human_readable_schedule(automation),
        recent[0] if recent else None,
        strip,
        len(finished),
        succeeded,
    )


@router.get("/")
def home() -> Response:
    return RedirectResponse("/automations", status_code=303)


@router.get("/automations")
def automations_page(request: Request) -> Response:
    context = ctx(request)
    token = request.query_params.get("cursor")
    with context.db.reads() as conn:
        session = cookies.require_session(conn, request, context)
        query = automations_store.AutomationListQuery(PER_PAGE, _SORT, None, None, None)
        scope = query.scope(session.user)
        if token:
            query = replace(query, cursor=context.codec.decode(token, scope, _SORT, None))
        listed = automations_store.list_automations(conn.dialect, session.user, query)
        page = run_steps(conn, listed)
        found = [automations_store.automation_from_row(row) for row in page.rows]
        recent = run_views.recent_runs(conn, [a.id for a in found], STRIP_RUNS)

    def page_url(token: str | None) -> str | None:
        return None if token is None else "/automations?" + urlencode({"cursor": token})

    tokens = page_tokens(
        context.codec, scope, _SORT, query.cursor, page.next_cursor, page.prev_cursor
    )
    next_url, prev_url = page_url(tokens[0]), page_url(tokens[1])
    return render(
        "automations.html",
        title="Automations",
        user=session.user,
        csrf_token=session.csrf_token,
        now=context.clock.now(),
        summaries=[summarize(a, recent[a.id]) for a in found],
        next_url=next_url,
        prev_url=prev_url,
        strip_runs=STRIP_RUNS,
        deleted=_deleted_id(request.query_params.get("deleted")),
    )


def _deleted_id(raw: str | None) -> int | None:
    """The id in ?deleted=ID (set after a delete), for the notice; nothing else is shown."""
    if raw and raw.isascii() and raw.isdigit() and len(raw) <= 18:
        return int(raw)
    return None


def parse_id(raw: str, what: str) -> int:
    """A path id; anything that is not one names nothing, so it is a 404 page."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise errors.NotFound(f"There is no {what} {raw[:40]!r}.")
    return int(raw)


@router.post("/automations/{automation_id}/run")
async def run_now(automation_id: str, request: Request) -> Response:
    """Create a manual run, as the API's manual_run does, and show its page."""
    context = ctx(request)
    target = parse_id(automation_id, "automation")
    form = await read_form(request)

    def work(conn: Any) -> int:
        session = cookies.require_session(conn, request, context)
        check_token(form.get("csrf_token"), session.csrf_token)
        found = automations_store.visible_automation(conn, target, session.user)
        check_can_run_manually(found)
        return runs_store.create_run(conn, target, context.clock.now(), trigger="manual").id

    run_id = await run_in_threadpool(context.db.run_write, work)
    context.on_run_created(run_id)
    return RedirectResponse(f"/runs/{run_id}", status_code=303)
