"""Automations endpoints (SPEC 2.4): list, create, show, update, delete, manual_run.

Bodies are JSON objects as the official SDK sends them; list-valued fields
may also be comma-delimited strings, as Files.com accepts.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
from fastapi import APIRouter, Request
from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from conveyor.api.auth import caller
from conveyor.api.body import MAX_BODY_BYTES, read_limited
from conveyor.api.openapi import AUTOMATION_BODY, AUTOMATION_LIST_EXTRA
from conveyor.api.runs import JSON, encoder_for
from conveyor.clock import to_rfc3339
from conveyor.context import ctx
from conveyor.domain import errors
from conveyor.domain.automations import (
    READ_ONLY_FIELDS,
    Automation,
    Trigger,
    check_can_run_manually,
    validate_fields,
)
from conveyor.domain.destinations import manual_values
from conveyor.domain.listing import (
    Sort,
    check_filter_fields,
    check_page,
    check_sent_id,
    collect,
    cursor_headers,
    page_tokens,
    parse_id,
    parse_per_page,
    parse_range_filters,
    parse_sort,
    query_pairs,
    refuse_unknown,
)
from conveyor.domain.schedules import human_readable_schedule
from conveyor.store import automations as store
from conveyor.store import permissions as permission_store
from conveyor.store import runs as runs_store
from conveyor.store import triggers as triggers_store
from conveyor.store.prepared import run_steps

router = APIRouter(prefix="/api/rest/v1")

_DEFAULT_SORT = Sort(field=None, descending=False)
_KEY_TYPES: dict[str | None, type | None] = {
    None: None,
    "name": str,
    "automation": str,
    "last_modified_at": int,
    "disabled": bool,
}


def encode_automation(automation: Automation, base_url: str) -> dict[str, Any]:
    def text(value: str) -> str | None:
        return value or None

    webhook_url = None
    if automation.trigger is Trigger.WEBHOOK and automation.webhook_secret:
        webhook_url = f"{base_url}/api/rest/v1/webhooks/{automation.webhook_secret}"
    return {
        "id": automation.id,
        "automation": automation.automation.value,
        "name": automation.name,
        "description": automation.description,
        "disabled": automation.disabled,
        "deleted": automation.deleted,
        "path": text(automation.path),
        "source": text(automation.source),
        "destinations": list(automation.destinations),
        "destination_replace_from": text(automation.destination_replace_from),
        "destination_replace_to": text(automation.destination_replace_to),
        "exclude_pattern": text(automation.exclude_pattern),
        "flatten_destination_structure": automation.flatten_destination_structure,
        "overwrite_files": automation.overwrite_files,
        "always_overwrite_size_matching_files": automation.always_overwrite_size_matching_files,
        "path_time_zone": text(automation.path_time_zone),
        "trigger": automation.trigger.value,
        "interval": automation.interval,
        "recurring_day": automation.recurring_day,
        "schedule_days_of_week": list(automation.schedule_days_of_week),
        "schedule_times_of_day": list(automation.schedule_times_of_day),
        "schedule_time_zone": text(automation.schedule_time_zone),
        "human_readable_schedule": human_readable_schedule(automation),
        "trigger_actions": list(automation.trigger_actions),
        "recurring_days": list(automation.recurring_days),
        "holiday_region": text(automation.holiday_region),
        "always_serialize_jobs": automation.always_serialize_jobs,
        "retry_on_failure_number_of_attempts": automation.retry_on_failure_number_of_attempts,
        "retry_on_failure_interval_in_minutes": automation.retry_on_failure_interval_in_minutes,
        "value": None if automation.value_limit is None else {"limit": automation.value_limit},
        "webhook_url": webhook_url,
        "user_id": automation.user_id,
        "last_modified_at": to_rfc3339(automation.last_modified_at),
    }


def _respond(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=JSON)


async def _body(request: Request) -> dict[str, Any]:
    """The JSON object sent, read no further than MAX_BODY_BYTES."""
    raw = await read_limited(request, MAX_BODY_BYTES, "The request body")
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise errors.RequestParamsInvalid("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise errors.RequestParamsInvalid("The request body must be a JSON object.")
    return data


def _without_echoes(body: dict[str, Any], echoed: dict[str, Any] | None) -> dict[str, Any]:
    """The body less read-only fields sent back unchanged (the official SDK's save() does)."""
    return {
        name: value
        for name, value in body.items()
        if not (
            name in READ_ONLY_FIELDS
            and (value is None or (echoed is not None and echoed.get(name) == value))
        )
    }


def visible_automation(conn: Connection, request: Request, automation_id: int) -> Automation:
    """The automation the caller may see (`store.automations.visible_automation`);
    a query's `id`, as the official SDKs send it, must be the path's."""
    check_sent_id(automation_id, request.query_params.get("id"))
    return store.visible_automation(conn, automation_id, caller(request))


_LIST_PARAMS = ("per_page", "cursor", "page")
_LIST_GROUPS = ("sort_by", "filter", "filter_gt", "filter_gteq", "filter_lt", "filter_lteq")


@router.get("/automations", summary="List Automations", openapi_extra=AUTOMATION_LIST_EXTRA)
def list_automations(request: Request) -> Response:
    context = ctx(request)
    plain, groups = collect(query_pairs(request.scope.get("query_string", b"")))
    with context.db.reads() as conn:
        user = caller(request)
        per_page = parse_per_page(plain.get("per_page"), context.settings.default_per_page)
        sort = parse_sort(groups.get("sort_by"), plain, store.AUTOMATION_SORT_FIELDS, _DEFAULT_SORT)
        filters = check_filter_fields(
            groups.get("filter"),
            plain,
            groups,
            store.AUTOMATION_FILTER_FIELDS,
            store.AUTOMATION_RANGE_FIELDS,
        )
        refuse_unknown(plain, groups, _LIST_PARAMS, _LIST_GROUPS)
        ranges = parse_range_filters(groups, store.AUTOMATION_RANGE_FIELDS)
        disabled = None
        if "disabled" in filters:
            if filters["disabled"].lower() not in ("true", "false", "1", "0"):
                raise errors.InvalidFilterParamValue("filter[disabled] must be true or false.")
            disabled = filters["disabled"].lower() in ("true", "1")
        query = store.AutomationListQuery(
            per_page, sort, disabled, filters.get("automation"), None, ranges
        )
        token = plain.get("cursor")
        if token:
            cursor = context.codec.decode(token, query.scope(user), sort, _KEY_TYPES[sort.field])
            query = replace(query, cursor=cursor)
        check_page(plain.get("page"), query.cursor)
        page = run_steps(conn, store.list_automations(conn.dialect, user, query))
    base = context.base_url(request)
    headers = cursor_headers(
        page_tokens(
            context.codec, query.scope(user), sort, query.cursor, page.next_cursor, page.prev_cursor
        )
    )
    body = [encode_automation(store.automation_from_row(row), base) for row in page.rows]
    return Response(orjson.dumps(body), media_type=JSON, headers=headers)


@router.post(
    "/automations", summary="Create Automation", status_code=201, openapi_extra=AUTOMATION_BODY
)
async def create_automation(request: Request) -> Response:
    context = ctx(request)
    body = await _body(request)
    values = validate_fields(_without_echoes(body, None))

    def work(conn: Any) -> Automation:
        user = caller(request)
        new_id = store.create_automation(conn, user.id, context.clock.now(), **values)
        created = store.get_automation(conn, new_id)
        assert created is not None
        permission_store.check_automation_at_save(conn, created)  # raising rolls back
        return created

    created = context.db.run_write(work)
    return _respond(encode_automation(created, context.base_url(request)), 201)


@router.get("/automations/{automation_id}", summary="Show Automation")
def find_automation(automation_id: str, request: Request) -> Response:
    context = ctx(request)
    with context.db.read() as conn:
        found = visible_automation(conn, request, parse_id(automation_id))
    return _respond(encode_automation(found, context.base_url(request)))


@router.patch(
    "/automations/{automation_id}", summary="Update Automation", openapi_extra=AUTOMATION_BODY
)
async def update_automation(automation_id: str, request: Request) -> Response:
    context = ctx(request)
    target = parse_id(automation_id)
    body = await _body(request)
    check_sent_id(target, body.pop("id", None))

    def work(conn: Any) -> Automation:
        current = visible_automation(conn, request, target)
        echoed = encode_automation(current, context.base_url(request))
        values = validate_fields(_without_echoes(body, echoed), current)
        updated = store.update_automation(conn, current, values, context.clock.now())
        permission_store.check_automation_at_save(conn, updated, current)  # raising rolls back
        return updated

    updated = context.db.run_write(work)
    return _respond(encode_automation(updated, context.base_url(request)))


@router.delete("/automations/{automation_id}", summary="Delete Automation", status_code=204)
async def delete_automation(automation_id: str, request: Request) -> Response:
    context = ctx(request)
    target = parse_id(automation_id)
    body = await _body(request)
    check_sent_id(target, body.pop("id", None))
    if body:
        raise errors.RequestParamsInvalid(
            "Delete Automation takes no parameters besides id; got "
            + ", ".join(sorted(body))[:200]
            + "."
        )

    def work(conn: Any) -> None:
        visible_automation(conn, request, target)
        store.delete_automation(conn, target, context.clock.now())

    await run_in_threadpool(context.db.run_write, work)
    return Response(status_code=204)


@router.post(
    "/automations/{automation_id}/manual_run", summary="Manually Run Automation", status_code=201
)
async def manual_run(automation_id: str, request: Request) -> Response:
    """Create a run now. Answers with the run (the official SDK ignores the body).

    The body may repeat the automation's `id`, and may carry `values`
    (Conveyor's extension: the parameters `%u-NAME` destination tokens read,
    as a webhook call's parameters); Files.com's `items` (initial items of an
    Automation v2 manual trigger) and anything else are refused.
    """
    context = ctx(request)
    target = parse_id(automation_id)
    body = await _body(request)

    def work(conn: Any) -> Any:
        found = visible_automation(conn, request, target)
        values = _check_manual_run_body(body, target)
        check_can_run_manually(found)
        now = context.clock.now()
        if values is None:
            run_id = runs_store.create_run(conn, target, now, trigger="manual").id
        else:
            shown = ", ".join(f"{name}={value}" for name, value in values.items())
            run_id = triggers_store.create_triggered_run(
                conn,
                target,
                now,
                trigger="manual",
                kind="manual",
                payload={"values": values},
                messages=[f"Started by a manual run with values: {shown[:2000]}"],
            )
        return runs_store.run_row(conn, run_id)

    def create() -> Any:
        row = context.db.run_write(work)
        # Woken from this thread, right after the commit: not after the event loop
        # resumes this request, which made the run wait about a millisecond for it.
        context.on_run_created(row.id)
        return row

    row = await run_in_threadpool(create)
    return _respond(encoder_for(context, request).run(row), 201)


def _check_manual_run_body(body: dict[str, Any], target: int) -> dict[str, str] | None:
    """The run's `values` (None when not sent); RequestParamsInvalid for anything else."""
    values = None
    for name, value in body.items():
        if name == "id" and str(value) == str(target):
            continue
        if name == "values":
            values = manual_values(value)
            continue
        if name == "id":
            raise errors.RequestParamsInvalid(
                f"id {str(value)[:20]!r} does not match the automation in the URL ({target})."
            )
        if name == "items":
            raise errors.RequestParamsInvalid(
                "items is not supported: Conveyor has no Automation v2 manual triggers; a "
                "manual run acts on the files the automation's path and source match."
            )
        raise errors.RequestParamsInvalid(
            f"{name[:60]!r} is not a parameter of manual_run; Conveyor refuses what it does not "
            "support rather than ignore it."
        )
    return values
