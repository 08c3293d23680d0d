"""Automation Runs endpoints (SPEC 2.1-2.3, seed document).

List and find are ordinary routes whose work is written once, as steps
(`store.prepared.Steps`): authentication and the rate-limit token, visibility,
the page (or the run), the answer. `conveyor.api.steps.run_request_steps` runs
them in the thread pool on SQLite and on the event loop over psycopg's asyncio
driver on PostgreSQL. Their reads need no common snapshot, so on PostgreSQL
each is a statement of its own, without transaction round trips.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from conveyor.api.auth import authenticate
from conveyor.api.encode import RunEncoder
from conveyor.api.openapi import LIST_RUNS_DOC, SHOW_RUN_DOC, STATUS_MESSAGES_DOC
from conveyor.api.steps import run_request_steps
from conveyor.clock import to_rfc3339
from conveyor.context import AppContext, ctx
from conveyor.domain import errors
from conveyor.domain.listing import (
    check_sent_id,
    cursor_headers,
    page_tokens,
    parse_id,
    parse_run_list_query,
    query_pairs,
)
from conveyor.store import runs as runs_store
from conveyor.store.prepared import Steps
from conveyor.store.users import user_by_id

router = APIRouter(prefix="/api/rest/v1")

JSON = "application/json"


def encoder_for(context: AppContext, request: Request) -> RunEncoder:
    now_s = context.clock.now() // 1_000_000
    expires = context.signer.expiry(now_s, context.settings.signed_url_ttl)
    return RunEncoder(context.base_url(request), context.signer, expires)


@router.get("/automation_runs", **LIST_RUNS_DOC)
async def list_automation_runs(request: Request) -> Response:
    return await run_request_steps(ctx(request), _list(request))


def _list(request: Request) -> Steps[Response]:
    context = ctx(request)
    dialect = context.db.engine.dialect
    pairs = query_pairs(request.scope.get("query_string", b""))
    user = yield from authenticate(request)  # 401 and 429 come before a parameter's 400
    query = parse_run_list_query(pairs, context.codec, context.settings.default_per_page)
    viewer = user
    if query.user_id is not None and query.user_id != user.id:
        # Files.com's user_id: an admin lists as that user; anyone else only as themselves.
        other = (yield from user_by_id(dialect, query.user_id)) if user.is_admin else None
        if other is None:
            raise errors.NotFound(f"User {query.user_id} not found.")
        viewer = other
    page = yield from runs_store.list_visible_runs(dialect, query, viewer)
    if page is None:
        raise errors.NotFound(f"Automation {query.automation_id} not found.")
    headers = cursor_headers(
        page_tokens(
            context.codec, query.scope, query.sort, query.cursor, page.next_cursor, page.prev_cursor
        )
    )
    body = encoder_for(context, request).runs(page.rows)
    return Response(body, media_type=JSON, headers=headers)


@router.get("/automation_runs/{run_id}", **SHOW_RUN_DOC)
async def find_automation_run(run_id: str, request: Request) -> Response:
    return await run_request_steps(ctx(request), _find(request, run_id))


def _find(request: Request, run_id: str) -> Steps[Response]:
    row = yield from visible_run(request, run_id)
    body = orjson.dumps(encoder_for(ctx(request), request).run(row))
    return Response(body, media_type=JSON)


def visible_run(request: Request, run_id: str) -> Steps[Any]:
    """The caller's run row (id first): authenticate, parse the id, check visibility;
    404 for a run that does not exist or that the caller may not see."""
    user = yield from authenticate(request)
    parsed = parse_id(run_id)
    check_sent_id(parsed, request.query_params.get("id"))
    dialect = ctx(request).db.engine.dialect
    row = yield from runs_store.find_visible_run(dialect, parsed, user)
    if row is None:
        raise errors.NotFound(f"Automation Run {parsed} not found.")
    return row


def _one_line(message: str) -> str:
    return message.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")


@router.get("/automation_runs/{run_id}/status_messages", **STATUS_MESSAGES_DOC)
def status_messages(run_id: str, request: Request) -> Response:
    """The run's log as plain text, readable with the signed URL alone (no API key)."""
    context = ctx(request)
    params = dict(query_pairs(request.scope.get("query_string", b"")))
    denied = errors.NotAuthorized(
        "This status messages link is invalid or has expired; "
        "fetch the run again for a fresh status_messages_url."
    )
    try:
        parsed = int(run_id)
        expires = int(params.get("expires", ""))
    except ValueError:
        raise denied from None
    signature = params.get("signature", "")
    now_s = context.clock.now() // 1_000_000
    if not context.signer.verify(parsed, expires, signature, now_s):
        raise denied
    with context.db.read() as conn:
        if runs_store.get_run(conn, parsed) is None:
            raise errors.NotFound(f"Automation Run {parsed} not found.")
        first = runs_store.read_messages(conn, parsed, limit=LOG_PAGE)
    return StreamingResponse(
        _log_text(context, parsed, first),
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


LOG_PAGE = 2000  # log lines read (and held) at a time while a log is sent


def _log_text(context: AppContext, run_id: int, page: list[Any]) -> Iterator[bytes]:
    """The log as text, LOG_PAGE lines at a time (each page one short read), so a long
    log is never held whole in memory, however many fetch it at once.

    One message is one line: a line break inside a message is shown as "\\n",
    so a reader (or `log --follow`, which counts lines) never mistakes it for a new entry.
    """
    while page:
        yield "".join(
            f"{to_rfc3339(created)} [{level}] {_one_line(message)}\n"
            for _, created, level, message in page
        ).encode("utf-8", "surrogateescape")
        if len(page) < LOG_PAGE:
            return
        with context.db.read() as conn:
            page = runs_store.read_messages(conn, run_id, after_id=page[-1][0], limit=LOG_PAGE)
