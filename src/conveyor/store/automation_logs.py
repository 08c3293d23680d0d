"""The AutomationLog list (Files.com's per-item log of automations), read from the runs'
operation records (`run_operations`): one entry per performed operation, no copy.

An entry is an operation that has an outcome (not one still pending). Its
fields come from the operation, its run and the outcome recorded with it:
`path` is the file handled (the folder, for a created folder), `dest_path`
where a copy or move wrote it, `operation` the kind, `status` the outcome,
`error_type` why it failed, `message` the outcome's log line, `created_at`
when it finished. Newest first (by id), keyset-paginated like the other lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ColumnElement, bindparam, case, func, literal, null
from sqlalchemy.engine import Dialect

from conveyor.domain.listing import Cursor, RangeFilter
from conveyor.store.keyset import KeysetPage, keyset_steps, range_conditions, range_shape
from conveyor.store.prepared import Steps
from conveyor.store.schema import automation_runs as runs_t
from conveyor.store.schema import automations as automations_t
from conveyor.store.schema import run_operations as ops_t
from conveyor.store.users import User

# What each state of an operation is called in the log.
STATUSES = {"done": "success", "skipped": "skipped", "failed": "failure", "abandoned": "abandoned"}
OPERATIONS = ("create_folder", "copy", "move", "delete", "refuse")
ERROR_TYPES = ("refused", "operation-failed", "abandoned")

_PATH = func.coalesce(ops_t.c.source, ops_t.c.destination)
_DEST_PATH = case((ops_t.c.source.is_(None), null()), else_=ops_t.c.destination)
_STATUS = case(
    *((ops_t.c.state == k, literal(v)) for k, v in STATUSES.items()), else_=ops_t.c.state
)
_ERROR_TYPE = case(
    ((ops_t.c.state == "failed") & (ops_t.c.kind == "refuse"), literal("refused")),
    (ops_t.c.state == "failed", literal("operation-failed")),
    (ops_t.c.state == "abandoned", literal("abandoned")),
    else_=null(),
)
# The filterable fields, as SQL expressions.
FIELDS: dict[str, Any] = {
    "automation_id": runs_t.c.automation_id,
    "automation_run_id": ops_t.c.run_id,
    "path": _PATH,
    "dest_path": _DEST_PATH,
    "operation": ops_t.c.kind,
    "status": _STATUS,
    "error_type": _ERROR_TYPE,
    "created_at": ops_t.c.finished_at,
}
FILTER_FIELDS = tuple(FIELDS)
RANGE_FIELDS = ("created_at",)
COLUMNS = (
    ops_t.c.id,
    runs_t.c.automation_id,
    ops_t.c.run_id,
    _PATH,
    _DEST_PATH,
    ops_t.c.kind,
    _STATUS,
    _ERROR_TYPE,
    ops_t.c.detail,
    ops_t.c.finished_at,
)


@dataclass(frozen=True, slots=True)
class LogEntry:
    id: int
    automation_id: int
    automation_run_id: int
    path: str | None
    dest_path: str | None
    operation: str
    status: str
    error_type: str | None
    message: str | None
    created_at: int


@dataclass(frozen=True, slots=True)
class LogQuery:
    per_page: int
    # Exact matches: field -> value (ints for the ids, microseconds for created_at).
    filters: tuple[tuple[str, Any], ...]
    ranges: tuple[RangeFilter, ...]
    cursor: Cursor | None

    def scope(self, user: User) -> list[Any]:
        return [
            "automation_logs",
            None if user.is_admin else user.id,
            [list(f) for f in self.filters],
            [r.wire for r in self.ranges],
        ]


def list_logs(dialect: Dialect, user: User, query: LogQuery) -> Steps[KeysetPage]:
    """One page of the log entries of the runs `user` may see (admins: all), as steps."""
    params: dict[str, Any] = {}
    scope: list[ColumnElement[bool]] = [
        ops_t.c.run_id == runs_t.c.id,
        ops_t.c.state != "pending",
    ]
    if not user.is_admin:
        owner = bindparam("user_id", type_=automations_t.c.user_id.type)
        scope += [runs_t.c.automation_id == automations_t.c.id, automations_t.c.user_id == owner]
        params["user_id"] = user.id
    for name, value in query.filters:
        scope.append(FIELDS[name] == bindparam(f"filter_{name}", type_=FIELDS[name].type))
        params[f"filter_{name}"] = value
    scope += range_conditions(FIELDS, query.ranges, params)
    return (
        yield from keyset_steps(
            dialect,
            columns=COLUMNS,
            table_columns=ops_t.c,
            read_field=None,
            descending=True,
            key_index=None,
            scope=scope,
            cursor=query.cursor,
            per_page=query.per_page,
            params=params,
            cache_key=(
                "automation_logs",
                user.is_admin,
                tuple(name for name, _ in query.filters),
                range_shape(query.ranges),
            ),
        )
    )


def entry(row: Any) -> LogEntry:
    """A row of `list_logs` as a log entry; the message is the outcome's log line."""
    detail = orjson.loads(row[8]) if row[8] else {}
    message = detail.get("message") or detail.get("reason")
    if message is None and row[6] == "abandoned":
        message = "Not performed: the run was finished before it reached this operation."
    return LogEntry(
        id=row[0],
        automation_id=row[1],
        automation_run_id=row[2],
        path=row[3],
        dest_path=row[4],
        operation=row[5],
        status=row[6],
        error_type=row[7],
        message=message,
        created_at=row[9],
    )
