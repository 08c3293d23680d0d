"""List Automation Logs: `GET /api/rest/v1/automation_logs`, Files.com's per-item log.

Served from the runs' operation records (`conveyor.store.automation_logs`);
an entry is visible to whoever may see its run. Parameters as Files.com
documents them: `per_page`, `cursor` (and the JavaScript SDK's `page`),
`filter[FIELD]` on `automation_id`, `automation_run_id`, `path`, `dest_path`,
`operation`, `status`, `error_type`, `created_at`, and `filter_gt`,
`filter_gteq`, `filter_lt`, `filter_lteq` on `created_at`. The list is newest
first and cannot be sorted (`sort_by` is refused).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from conveyor.api.auth import caller
from conveyor.api.openapi import AUTOMATION_LOG_LIST_DOC
from conveyor.api.runs import JSON
from conveyor.clock import to_rfc3339
from conveyor.context import ctx
from conveyor.domain import errors
from conveyor.domain.listing import (
    Sort,
    check_filter_fields,
    check_page,
    collect,
    cursor_headers,
    page_tokens,
    parse_int,
    parse_per_page,
    parse_range_filters,
    parse_time,
    query_pairs,
    refuse_unknown,
)
from conveyor.store import automation_logs as store
from conveyor.store.prepared import run_steps

router = APIRouter(prefix="/api/rest/v1")

# Files.com's maximum for this list.
MAX_PER_PAGE = 1000
_SORT = Sort(field=None, descending=True)
_CHOICES = {
    "status": tuple(store.STATUSES.values()),
    "operation": store.OPERATIONS,
    "error_type": store.ERROR_TYPES,
}


def encode(entry: store.LogEntry) -> dict[str, Any]:
    created = to_rfc3339(entry.created_at)
    return {
        "timestamp": created,  # Files.com's deprecated name of created_at
        "automation_id": entry.automation_id,
        "automation_run_id": entry.automation_run_id,
        "dest_path": entry.dest_path,
        "error_type": entry.error_type,
        "message": entry.message,
        "operation": entry.operation,
        "path": entry.path,
        "status": entry.status,
        "created_at": created,
    }


def _filter_value(field: str, raw: str) -> Any:
    if field in ("automation_id", "automation_run_id"):
        try:
            return parse_int(f"filter[{field}]", raw, required=True)
        except errors.ConveyorError:
            raise errors.InvalidFilterParamValue(
                f"filter[{field}] must be a positive integer, got {raw[:40]!r}."
            ) from None
    if field == "created_at":
        return parse_time("filter[created_at]", raw)
    if field in _CHOICES and raw not in _CHOICES[field]:
        raise errors.InvalidFilterParamValue(
            f"filter[{field}] must be one of {', '.join(_CHOICES[field])}, got {raw[:40]!r}."
        )
    return raw


@router.get("/automation_logs", **AUTOMATION_LOG_LIST_DOC)
def list_automation_logs(request: Request) -> Response:
    context = ctx(request)
    plain, groups = collect(query_pairs(request.scope.get("query_string", b"")))
    with context.db.reads() as conn:
        user = caller(request)
        if "sort_by" in plain or "sort_by" in groups:
            raise errors.DoesNotSupportSorting(
                "Automation logs cannot be sorted: they are listed newest first."
            )
        per_page = parse_per_page(
            plain.get("per_page"), min(context.settings.default_per_page, MAX_PER_PAGE)
        )
        if per_page > MAX_PER_PAGE:
            raise errors.RequestParamsInvalid(
                f"Parameter per_page must be between 1 and {MAX_PER_PAGE}, got {per_page}."
            )
        filters = check_filter_fields(
            groups.get("filter"), plain, groups, store.FILTER_FIELDS, store.RANGE_FIELDS
        )
        refuse_unknown(
            plain,
            groups,
            ("per_page", "cursor", "page"),
            ("filter", "filter_gt", "filter_gteq", "filter_lt", "filter_lteq"),
        )
        query = store.LogQuery(
            per_page,
            tuple((f, _filter_value(f, filters[f])) for f in sorted(filters)),
            parse_range_filters(groups, store.RANGE_FIELDS),
            None,
        )
        token = plain.get("cursor")
        if token:
            cursor = context.codec.decode(token, query.scope(user), _SORT, None)
            query = store.LogQuery(query.per_page, query.filters, query.ranges, cursor)
        check_page(plain.get("page"), query.cursor)
        page = run_steps(conn, store.list_logs(conn.dialect, user, query))
    headers = cursor_headers(
        page_tokens(
            context.codec,
            query.scope(user),
            _SORT,
            query.cursor,
            page.next_cursor,
            page.prev_cursor,
        )
    )
    body = orjson.dumps([encode(store.entry(row)) for row in page.rows])
    return Response(body, media_type=JSON, headers=headers)
