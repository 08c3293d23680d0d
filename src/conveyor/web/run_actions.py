"""Cancel and Rerun from the run page: a confirmation page each (GET), and the form
it posts (CSRF-checked), calling the same store functions as the API's
`POST /api/rest/v1/automation_runs/{id}/cancel` and `/rerun`
(`conveyor.store.run_control`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from conveyor.context import ctx
from conveyor.domain import errors
from conveyor.domain.runs import RunStage
from conveyor.store import automations as automations_store
from conveyor.store import run_control
from conveyor.store import runs as runs_store
from conveyor.store.prepared import run_steps
from conveyor.web import session as cookies
from conveyor.web.automations_page import parse_id
from conveyor.web.security import check_token, read_form
from conveyor.web.templating import render

router = APIRouter(include_in_schema=False)


def _visible(conn: Any, request: Request, run_id: int) -> tuple[Any, Any]:
    session = cookies.require_session(conn, request, ctx(request))
    row = run_steps(conn, runs_store.find_visible_run(conn.dialect, run_id, session.user))
    if row is None:
        raise errors.NotFound(f"Automation Run {run_id} not found.")
    return session, row


def _confirm(request: Request, run_id: str, action: str) -> Response:
    context = ctx(request)
    target = parse_id(run_id, "run")
    with context.db.read() as conn:
        session, row = _visible(conn, request, target)
        automation = automations_store.get_automation(conn, row.automation_id)
    finished = row.run_stage == RunStage.FINISHED.value
    return render(
        "confirm_run.html",
        title=f"{action.capitalize()} run {target}",
        user=session.user,
        csrf_token=session.csrf_token,
        now=context.clock.now(),
        run=row,
        automation=automation,
        action=action,
        finished=finished,
    )


@router.get("/runs/{run_id}/cancel")
def confirm_cancel(run_id: str, request: Request) -> Response:
    return _confirm(request, run_id, "cancel")


@router.get("/runs/{run_id}/rerun")
def confirm_rerun(run_id: str, request: Request) -> Response:
    return _confirm(request, run_id, "rerun")


@router.post("/runs/{run_id}/cancel")
async def cancel_run(run_id: str, request: Request) -> Response:
    """Cancel as the API does: a queued run at once, a running one at its next
    operation boundary; a finished run is refused (an error page, nothing changed)."""
    context = ctx(request)
    target = parse_id(run_id, "run")
    form = await read_form(request)

    def work(conn: Any) -> None:
        session, _row = _visible(conn, request, target)
        check_token(form.get("csrf_token"), session.csrf_token)
        run_control.request_cancel(conn, target, by=session.user.name, now=context.clock.now())

    await run_in_threadpool(context.db.run_write, work)
    return RedirectResponse(f"/runs/{target}", status_code=303)


@router.post("/runs/{run_id}/rerun")
async def rerun_run(run_id: str, request: Request) -> Response:
    """A new run rerunning this finished one (all of it, or only its failed
    operations with `failed_only`), as the API's rerun does; its page is shown."""
    context = ctx(request)
    target = parse_id(run_id, "run")
    form = await read_form(request)
    failed_only = form.get("failed_only", "") == "true"

    def work(conn: Any) -> int:
        session, _row = _visible(conn, request, target)
        check_token(form.get("csrf_token"), session.csrf_token)
        rerun = run_control.create_rerun(
            conn, target, by=session.user.name, now=context.clock.now(), failed_only=failed_only
        )
        return rerun.id

    new_id = await run_in_threadpool(context.db.run_write, work)
    context.on_run_created(new_id)
    return RedirectResponse(f"/runs/{new_id}", status_code=303)
