"""Bulk cancel and rerun of the runs an all-runs filter matches (Conveyor's own API).

`POST /api/conveyor/v1/automation_runs/bulk_cancel` and `/bulk_rerun` take the
filter of `GET /api/conveyor/v1/automation_runs` in the query string
(`filter[status]`, `filter[trigger]`, `filter[automation_id]`,
`filter_gt|gteq|lt|lteq[created_at]`), and:

- `dry_run=true`: changes nothing; answers how many runs would be acted on and
  the first `MAX_LISTED` of their ids (newest first);
- otherwise, with an `Idempotency-Key` header (required): cancels every
  matching unfinished run, or reruns every matching finished run
  (`failed_only=true`: only its failed operations), in one transaction that
  also records the key, a hash of the request and the answer. The same key
  again with the same request answers the recorded answer and does nothing;
  with another request it is a 400. At most `MAX_BULK` runs per request.

A filter that matches nothing is a count of 0, not an error. docs/api.md
describes the answers.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from fastapi import APIRouter, Request
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from conveyor.api.all_runs import FILTER_PARAMETERS, TRIGGERS
from conveyor.api.auth import caller
from conveyor.api.body import read_limited
from conveyor.api.openapi import API_KEY, ERRORS, _json, _query
from conveyor.api.runs import JSON
from conveyor.context import ctx
from conveyor.domain import errors
from conveyor.domain.listing import (
    ALL_RUNS_GROUPS,
    RUN_DEFAULT_SORT,
    AllRunsQuery,
    collect,
    parse_all_runs_filter,
    query_pairs,
    refuse_unknown,
)
from conveyor.store import all_runs, run_control
from conveyor.store import bulk as store
from conveyor.store.users import User

router = APIRouter(prefix="/api/conveyor/v1")

MAX_BULK = 1000  # runs acted on by one request; narrow the filter for more
MAX_LISTED = 100  # ids a dry run lists
MAX_KEY_LENGTH = 255

BULK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["action", "dry_run", "count", "run_ids"],
    "properties": {
        "action": {"type": "string", "enum": ["cancel", "rerun"]},
        "dry_run": {"type": "boolean"},
        "count": {"type": "integer", "minimum": 0, "description": "Runs the filter matches."},
        "run_ids": {
            "type": "array",
            "items": {"type": "integer", "format": "int64"},
            "description": "Dry run: the first 100 matching runs. Otherwise: the runs acted on.",
        },
        "rerun_ids": {
            "type": "array",
            "items": {"type": "integer", "format": "int64"},
            "description": "bulk_rerun: the new run of each of run_ids, in the same order.",
        },
        "skipped": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer", "format": "int64"},
                    "reason": {"type": "string"},
                },
            },
            "description": "Matching runs that could not be acted on, and why.",
        },
    },
}


def _doc(action: str, extra: list[dict[str, Any]]) -> dict[str, Any]:
    what = (
        "Cancel every matching unfinished run"
        if action == "cancel"
        else ("Rerun every matching finished run")
    )
    return {
        "summary": f"{what} (Conveyor)",
        "responses": {"200": _json(BULK_SCHEMA, "What was (or would be) done"), **ERRORS},
        "openapi_extra": {
            "security": API_KEY,
            "parameters": [
                _query(
                    "dry_run",
                    {"type": "boolean"},
                    "true: change nothing, answer the count and the first 100 ids.",
                ),
                *extra,
                *FILTER_PARAMETERS,
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "maxLength": MAX_KEY_LENGTH},
                    "description": "Required unless dry_run=true: the same key answers the "
                    "same again without acting twice.",
                },
            ],
        },
    }


FAILED_ONLY = _query(
    "failed_only",
    {"type": "boolean"},
    "true: each rerun plans only the operations that failed in its original.",
)


@router.post("/automation_runs/bulk_cancel", **_doc("cancel", []))
async def bulk_cancel(request: Request) -> Response:
    return await _bulk(request, "cancel")


@router.post("/automation_runs/bulk_rerun", **_doc("rerun", [FAILED_ONLY]))
async def bulk_rerun(request: Request) -> Response:
    return await _bulk(request, "rerun")


def _flag(name: str, raw: str | None) -> bool:
    if raw is None or raw == "":
        return False
    value = raw.strip().lower()
    if value not in ("true", "false", "1", "0"):
        raise errors.RequestParamsInvalid(
            f"Parameter {name} must be true or false, got {raw[:40]!r}."
        )
    return value in ("true", "1")


def _idempotency_key(request: Request, dry_run: bool) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        if dry_run:
            return None
        raise errors.RequestParamsRequired(
            "Send an Idempotency-Key header (any unique text, such as a UUID) with a bulk "
            "action that is not a dry run: repeating the request with the same key then "
            "answers the same without acting twice."
        )
    if not key or len(key) > MAX_KEY_LENGTH or not all(32 < ord(ch) < 127 for ch in key):
        raise errors.RequestParamsInvalid(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters."
        )
    return key


async def _bulk(request: Request, action: str) -> Response:
    context = ctx(request)
    body = await read_limited(request, 4096, "The request body")
    if body.strip() not in (b"", b"{}"):
        raise errors.RequestParamsInvalid(
            "Send a bulk action's parameters in the query string; the body must be empty."
        )
    plain, groups = collect(query_pairs(request.scope.get("query_string", b"")))
    params = ("dry_run", "failed_only") if action == "rerun" else ("dry_run",)
    refuse_unknown(plain, groups, params, [g for g in ALL_RUNS_GROUPS if g != "sort_by"])
    statuses, kinds, automation_id, ranges = parse_all_runs_filter(plain, groups, TRIGGERS)
    query = AllRunsQuery(MAX_LISTED, RUN_DEFAULT_SORT, statuses, kinds, automation_id, ranges)
    dry_run = _flag("dry_run", plain.get("dry_run"))
    failed_only = _flag("failed_only", plain.get("failed_only"))
    key = _idempotency_key(request, dry_run)
    asked = {"action": action, "filter": query.filter_wire, "failed_only": failed_only}
    request_hash = hashlib.sha256(orjson.dumps(asked, option=orjson.OPT_SORT_KEYS)).hexdigest()
    finished = action == "rerun"  # cancel acts on unfinished runs, rerun on finished ones

    if dry_run:

        def preview(conn: Connection) -> bytes:
            user = caller(request)
            count = all_runs.count_matching(conn, query, user, finished=finished)
            ids = all_runs.matching_run_ids(conn, query, user, finished=finished, limit=MAX_LISTED)
            return orjson.dumps({"action": action, "dry_run": True, "count": count, "run_ids": ids})

        with context.db.read() as conn:
            return Response(preview(conn), media_type=JSON)

    assert key is not None
    now = context.clock.now()

    def act(conn: Connection) -> bytes:
        user = caller(request)
        found = store.remembered(conn, user.id, key)
        if found is not None:
            return _same_again(found, request_hash)
        store.claim(conn, user.id, key, request_hash, now)
        result = _act(conn, user, query, action, failed_only, now)
        store.settle(conn, user.id, key, result.decode())
        return result

    try:
        answer = await run_in_threadpool(context.db.run_write, act)
    except IntegrityError:
        # Another request with this key acted meanwhile: answer as it did.
        with context.db.read() as conn:
            user = caller(request)
            found = store.remembered(conn, user.id, key)
        if found is None:
            raise
        answer = _same_again(found, request_hash)
    created = orjson.loads(answer).get("rerun_ids", [])
    for run_id in created:
        context.on_run_created(run_id)
    return Response(answer, media_type=JSON)


def _same_again(found: store.Remembered, request_hash: str) -> bytes:
    if found.request_hash != request_hash:
        raise errors.RequestParamsInvalid(
            "This Idempotency-Key was used for a different bulk request (another action, "
            "filter or failed_only); use a new key for a new request."
        )
    return found.result.encode()


def _act(
    conn: Connection, user: User, query: AllRunsQuery, action: str, failed_only: bool, now: int
) -> bytes:
    finished = action == "rerun"
    count = all_runs.count_matching(conn, query, user, finished=finished)
    if count > MAX_BULK:
        raise errors.RequestParamsInvalid(
            f"{count} runs match; a bulk {action} acts on at most {MAX_BULK} at a time. "
            "Narrow the filter (for example with filter_lt[created_at]) and repeat."
        )
    ids = all_runs.matching_run_ids(conn, query, user, finished=finished)
    done: list[int] = []
    reruns: list[int] = []
    skipped: list[dict[str, Any]] = []
    for run_id in ids:
        attempt = conn.begin_nested()  # a run that cannot be acted on leaves nothing behind
        try:
            if action == "cancel":
                run_control.request_cancel(conn, run_id, by=user.name, now=now)
            else:
                rerun = run_control.create_rerun(
                    conn, run_id, by=user.name, now=now, failed_only=failed_only
                )
                reruns.append(rerun.id)
        except errors.ConveyorError as exc:
            attempt.rollback()
            skipped.append({"id": run_id, "reason": exc.message})
            continue
        attempt.commit()
        done.append(run_id)
    result: dict[str, Any] = {"action": action, "dry_run": False, "count": count, "run_ids": done}
    if action == "rerun":
        result["rerun_ids"] = reruns
    result["skipped"] = skipped
    return orjson.dumps(result)
