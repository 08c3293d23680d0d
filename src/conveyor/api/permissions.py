"""Permissions endpoints (Files.com's Permission resource): list, create, delete.

Admins grant and revoke; every user may list, a non-admin only their own
permissions (asking for another user's is a 403). Group parameters are
refused: Conveyor has no groups.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from conveyor.api.auth import caller
from conveyor.api.body import read_limited
from conveyor.api.openapi import API_KEY
from conveyor.api.runs import JSON
from conveyor.context import ctx
from conveyor.domain import errors
from conveyor.domain.listing import (
    Sort,
    check_filter_fields,
    check_page,
    collect,
    cursor_headers,
    page_tokens,
    parse_id,
    parse_int,
    parse_per_page,
    parse_sort,
    query_pairs,
)
from conveyor.domain.permissions import parse_permission_path, validate_create
from conveyor.store import permissions as store
from conveyor.store.prepared import run_steps
from conveyor.store.users import User

router = APIRouter(prefix="/api/rest/v1")

_DEFAULT_SORT = Sort(field=None, descending=False)
_KEY_TYPES: dict[str | None, type | None] = {None: None, "path": str, "user_id": int}
_LIST_PARAMS = frozenset(
    {"cursor", "page", "per_page", "path", "include_groups", "user_id", "group_id"}
)
_NO_GROUPS = "Conveyor has no groups"


MAX_BODY_BYTES = 64_000

# The OpenAPI description (403s and the other error answers: conveyor.api.openapi_errors).
_NULL_INT = {"type": ["integer", "null"]}
PERMISSION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer", "format": "int64"},
        "path": {"type": "string", "description": 'Folder path; "" is the storage root'},
        "user_id": {"type": "integer", "format": "int64"},
        "username": {"type": ["string", "null"]},
        "group_id": _NULL_INT,
        "group_name": {"type": ["string", "null"]},
        "permission": {"type": "string", "enum": ["full", "readonly", "writeonly", "list"]},
        "recursive": {"type": "boolean"},
    },
    "required": ["id", "path", "user_id", "permission", "recursive"],
}
CREATE_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "path": {"type": "string", "maxLength": 5000},
        "permission": {"type": "string", "enum": ["full", "readonly", "writeonly", "list"]},
        "recursive": {"type": "boolean", "default": True},
        "user_id": {"type": "integer", "format": "int64"},
        "username": {"type": "string"},
    },
    "required": ["path", "permission"],
}


def _json_answer(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _param(name: str, schema: dict[str, Any], description: str, **more: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, "description": description, **more}


_LIST_DOC: dict[str, Any] = {
    "summary": "List Permissions",
    "responses": {"200": _json_answer({"type": "array", "items": PERMISSION_SCHEMA}, "One page")},
    "openapi_extra": {
        "security": API_KEY,
        "parameters": [
            _param("cursor", {"type": "string"}, "Used for pagination."),
            _param("per_page", {"type": "integer", "minimum": 1, "maximum": 10000}, "Per page."),
            _param("user_id", {"type": "integer"}, "Only this user's permissions."),
            _param("path", {"type": "string"}, "Permissions on this path or above it."),
            _param("include_groups", {"type": "boolean"}, "Accepted; Conveyor has no groups."),
            _param(
                "sort_by",
                {"type": "object", "additionalProperties": {"enum": ["asc", "desc"]}},
                "sort_by[path|user_id]=asc|desc",
                style="deepObject",
            ),
            _param(
                "filter",
                {"type": "object", "properties": {"path": {}, "user_id": {}}},
                "filter[path|user_id]=VALUE",
                style="deepObject",
            ),
            _param(
                "filter_prefix",
                {"type": "object", "properties": {"path": {"type": "string"}}},
                "filter_prefix[path]=PREFIX",
                style="deepObject",
            ),
        ],
    },
}


async def _body(request: Request) -> dict[str, Any]:
    """The JSON object sent (the SDKs send JSON), read no further than MAX_BODY_BYTES."""
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


def encode_permission(record: store.PermissionRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "path": record.path,
        "user_id": record.user_id,
        "username": record.username,
        "group_id": None,
        "group_name": None,
        "permission": record.permission,
        "recursive": record.recursive,
    }


def _require_admin(user: User, what: str) -> None:
    if not user.is_admin:
        raise errors.SiteAdminRequired(f"Only an admin may {what} permissions.")


def _list_query(
    plain: dict[str, str], groups: dict[str, dict[str, str]], user: User, default_per_page: int
) -> store.PermissionListQuery:
    unknown = sorted(set(plain) - _LIST_PARAMS) + sorted(
        f"{name}[...]" for name in set(groups) - {"sort_by", "filter", "filter_prefix"}
    )
    if unknown:
        raise errors.RequestParamsInvalid(f"Unknown parameter: {', '.join(unknown)}.")
    if plain.get("group_id") or "group_id" in (groups.get("filter") or {}):
        raise errors.RequestParamsInvalid(f"group_id: {_NO_GROUPS}.")
    include_groups = plain.get("include_groups", "").lower()
    if include_groups not in ("", "true", "false", "1", "0"):
        raise errors.RequestParamsInvalid("include_groups must be true or false.")
    per_page = parse_per_page(plain.get("per_page"), default_per_page)
    sort = parse_sort(groups.get("sort_by"), plain, store.SORT_FIELDS, _DEFAULT_SORT)
    prefix_group = groups.pop("filter_prefix", None) or {}
    if set(prefix_group) - {"path"}:
        raise errors.InvalidFilterField("filter_prefix is supported for path only.")
    filters = check_filter_fields(groups.get("filter"), plain, groups, ("path", "user_id"))
    given = (("user_id", plain.get("user_id")), ("filter[user_id]", filters.get("user_id")))
    user_ids = {parse_int(name, raw, required=False) for name, raw in given if raw}
    if len(user_ids) > 1:
        raise errors.RequestParamsInvalid("user_id and filter[user_id] differ.")
    user_id = user_ids.pop() if user_ids else None
    if not user.is_admin:
        if user_id is not None and user_id != user.id:
            raise errors.InsufficientPermissionForParams(
                "A non-admin may list only their own permissions."
            )
        user_id = user.id
    path = parse_permission_path(filters["path"]) if "path" in filters else None
    prefix = prefix_group.get("path")
    applies_to = parse_permission_path(plain["path"]) if "path" in plain else None
    return store.PermissionListQuery(per_page, sort, user_id, path, prefix, applies_to, None)


@router.get("/permissions", **_LIST_DOC)
def list_permissions(request: Request) -> Response:
    context = ctx(request)
    plain, groups = collect(query_pairs(request.scope.get("query_string", b"")))
    with context.db.reads() as conn:
        user = caller(request)
        query = _list_query(plain, groups, user, context.settings.default_per_page)
        token = plain.get("cursor")
        if token:
            key_type = _KEY_TYPES[query.sort.field]
            cursor = context.codec.decode(token, query.scope(), query.sort, key_type)
            query = store.PermissionListQuery(
                query.per_page,
                query.sort,
                query.user_id,
                query.path,
                query.path_prefix,
                query.applies_to,
                cursor,
            )
        check_page(plain.get("page"), query.cursor)
        page = run_steps(conn, store.list_permissions(conn.dialect, query))
    headers = cursor_headers(
        page_tokens(
            context.codec,
            query.scope(),
            query.sort,
            query.cursor,
            page.next_cursor,
            page.prev_cursor,
        )
    )
    body = [encode_permission(store.record_from_row(row)) for row in page.rows]
    return Response(orjson.dumps(body), media_type=JSON, headers=headers)


@router.post(
    "/permissions",
    summary="Create Permission",
    status_code=201,
    responses={"201": _json_answer(PERMISSION_SCHEMA, "The permission granted")},
    openapi_extra={
        "security": API_KEY,
        "requestBody": {"required": True, "content": {"application/json": {"schema": CREATE_BODY}}},
    },
)
async def create_permission(request: Request) -> Response:
    context = ctx(request)
    body = await _body(request)

    def work(conn: Any) -> store.PermissionRecord:
        _require_admin(caller(request), "grant")
        return store.create_permission(conn, validate_create(body), context.clock.now())

    created = context.db.run_write(work)
    return Response(orjson.dumps(encode_permission(created)), status_code=201, media_type=JSON)


@router.delete("/permissions/{permission_id}", summary="Delete Permission", status_code=204)
def delete_permission(permission_id: str, request: Request) -> Response:
    context = ctx(request)

    plain, groups = collect(query_pairs(request.scope.get("query_string", b"")))

    def work(conn: Any) -> None:
        _require_admin(caller(request), "revoke")
        target = parse_id(permission_id)
        # The official SDK repeats the id as a query parameter; nothing else is taken.
        unknown = sorted(set(plain) - {"id"}) + sorted(f"{name}[...]" for name in groups)
        if unknown:
            raise errors.RequestParamsInvalid(f"Unknown parameter: {', '.join(unknown)}.")
        if "id" in plain and plain["id"] != str(target):
            raise errors.RequestParamsInvalid("id differs from the permission id in the path.")
        if not store.delete_permission(conn, target):
            raise errors.NotFound(f"Permission {target} not found.")

    context.db.run_write(work)
    return Response(status_code=204)
