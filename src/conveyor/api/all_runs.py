"""The operator's view of all runs (Conveyor's own API, beyond Files.com's).

`GET /api/conveyor/v1/automation_runs`: the runs the caller may see across
automations (an admin: every run; anyone else: the runs of the automations
they own), newest first, in keyset pages with Files.com's cursor headers.
Filters: `filter[status]` and `filter[trigger]` (comma-separated lists, any of
which matches), `filter[automation_id]`, and `filter_gt|gteq|lt|lteq[created_at]`;
sort: `sort_by[created_at]=asc|desc`. Any other parameter is a 400 naming it.
docs/api.md describes it; docs/indexes.md shows which index serves each filter.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from conveyor.api.auth import caller
from conveyor.api.openapi import AUTOMATION_RUN_SCHEMA, _query, list_doc, paging_parameters
from conveyor.api.runs import JSON, encoder_for
from conveyor.context import ctx
from conveyor.domain.automations import Trigger
from conveyor.domain.listing import cursor_headers, page_tokens, parse_all_runs_query, query_pairs
from conveyor.domain.runs import RunStatus
from conveyor.store import all_runs as store
from conveyor.store.prepared import run_steps

router = APIRouter(prefix="/api/conveyor/v1")

TRIGGERS = tuple(t.value for t in Trigger)

FILTER_PARAMETERS: list[dict[str, Any]] = [
    _query(
        "filter[status]",
        {"type": "string"},
        "Runs of any of these statuses, comma-separated: "
        + ", ".join(s.value for s in RunStatus)
        + ".",
    ),
    _query(
        "filter[trigger]",
        {"type": "string"},
        "Runs started by any of these triggers, comma-separated: " + ", ".join(TRIGGERS) + ".",
    ),
    _query(
        "filter[automation_id]",
        {"type": "integer", "format": "int64", "minimum": 1},
        "Runs of this automation only.",
    ),
    *(
        _query(
            f"filter_{op}[created_at]",
            {"type": "string", "format": "date-time"},
            f"Runs created {text} this date-time (with a time zone).",
        )
        for op, text in (
            ("gt", "after"),
            ("gteq", "at or after"),
            ("lt", "before"),
            ("lteq", "at or before"),
        )
    ),
]

ALL_RUNS_DOC = list_doc(
    "List runs across automations (Conveyor)",
    AUTOMATION_RUN_SCHEMA,
    "A page of runs",
    [
        *paging_parameters(),
        _query(
            "sort_by[created_at]",
            {"type": "string", "enum": ["asc", "desc"]},
            "Order by creation (default: newest first).",
        ),
        *FILTER_PARAMETERS,
    ],
)


@router.get("/automation_runs", **ALL_RUNS_DOC)
def list_all_runs(request: Request) -> Response:
    context = ctx(request)
    pairs = query_pairs(request.scope.get("query_string", b""))
    with context.db.reads() as conn:
        user = caller(request)
        query = parse_all_runs_query(
            pairs, context.codec, TRIGGERS, context.settings.default_per_page
        )
        page = run_steps(conn, store.list_all_runs(conn.dialect, query, user))
    headers = cursor_headers(
        page_tokens(
            context.codec, query.scope, query.sort, query.cursor, page.next_cursor, page.prev_cursor
        )
    )
    body = encoder_for(context, request).runs(page.rows)
    return Response(body, media_type=JSON, headers=headers)
