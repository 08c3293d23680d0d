"""Automation runs in the database: the lifecycle writes, keyset listing and the log.

Every change of a run is decided by `conveyor.domain.runs` and applied here
with an UPDATE guarded by the state the decision was made from, so a change
made concurrently by another worker fails loudly instead of being lost.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select, tuple_, union_all, update
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Connection

from conveyor.domain import runs as lifecycle
from conveyor.domain.errors import IllegalTransition
from conveyor.domain.listing import Cursor, RunListQuery, Sort
from conveyor.domain.runs import AutomationRun, MessageLevel, RunStage, RunStatus
from conveyor.store.schema import automation_runs as runs_t
from conveyor.store.schema import automations
from conveyor.store.schema import run_messages as messages_t
from conveyor.store.users import User

# The order of columns in every row this module returns for the API to encode.
RUN_COLUMNS = (
    runs_t.c.id,
    runs_t.c.automation_id,
    runs_t.c.completed_at,
    runs_t.c.created_at,
    runs_t.c.runtime,
    runs_t.c.status,
    runs_t.c.run_stage,
    runs_t.c.successful_operations,
    runs_t.c.failed_operations,
)
_FIELDS = [f.name for f in fields(AutomationRun)]
# A database row: RUN_COLUMNS for runs, (id, created_at, level, message) for messages.
RunRow = Any
# Called with (conn, before, after, extra) for every run created (before is None)
# or changed, inside the writer's transaction; conveyor.observability reports them.
RunObserver = Callable[[Connection, AutomationRun | None, AutomationRun, dict[str, Any]], None]
RUN_OBSERVERS: list[RunObserver] = []


def run_from_row(row: Sequence[Any]) -> AutomationRun:
    (run_id, automation_id, completed_at, created_at, runtime, status, stage, ok, failed) = row
    return AutomationRun(
        id=run_id,
        automation_id=automation_id,
        created_at=created_at,
        runtime=runtime,
        completed_at=completed_at,
        status=RunStatus(status),
        run_stage=RunStage(stage),
        successful_operations=ok,
        failed_operations=failed,
    )


# ------------------------------------------------------------------ lifecycle


def create_run(
    conn: Connection, automation_id: int, now: int, runtime: int | None = None, **extra: Any
) -> AutomationRun:
    """Insert a new run (queued_for_planning, running). `extra` sets engine columns."""
    run = lifecycle.new_run(automation_id, now, runtime)
    values = {name: getattr(run, name) for name in _FIELDS if name != "id"}
    values.update(extra)
    run_id = conn.execute(runs_t.insert().values(**values).returning(runs_t.c.id)).scalar_one()
    if conn.dialect.name == "postgresql":
        # Delivered at commit to the engine's LISTEN conveyor_runs (engine/wakeup.py).
        conn.execute(sql_text("SELECT pg_notify('conveyor_runs', :id)"), {"id": str(run_id)})
    created = AutomationRun(**{**{n: getattr(run, n) for n in _FIELDS}, "id": run_id})
    for observer in RUN_OBSERVERS:
        observer(conn, None, created, extra)
    return created


def get_run(conn: Connection, run_id: int, *, for_update: bool = False) -> AutomationRun | None:
    query = select(*RUN_COLUMNS).where(runs_t.c.id == run_id)
    if for_update and conn.dialect.name != "sqlite":
        query = query.with_for_update()
    row = conn.execute(query).first()
    return None if row is None else run_from_row(row)


def _apply(
    conn: Connection, run_id: int, change: Callable[[AutomationRun], AutomationRun]
) -> tuple[AutomationRun, AutomationRun]:
    """Load the run, decide the change in the domain, write it guarded by the old state."""
    before = get_run(conn, run_id, for_update=True)
    if before is None:
        raise IllegalTransition(f"automation run {run_id} does not exist")
    after = change(before)
    values = {
        name: getattr(after, name)
        for name in _FIELDS
        if getattr(after, name) != getattr(before, name)
    }
    if values:
        result = conn.execute(
            update(runs_t)
            .where(
                runs_t.c.id == run_id,
                runs_t.c.run_stage == before.run_stage,
                runs_t.c.successful_operations == before.successful_operations,
                runs_t.c.failed_operations == before.failed_operations,
            )
            .values(**values)
        )
        if result.rowcount != 1:
            raise IllegalTransition(f"automation run {run_id} changed concurrently")
        for observer in RUN_OBSERVERS:
            observer(conn, before, after, {})
    return before, after


def advance_stage(conn: Connection, run_id: int, target: RunStage) -> AutomationRun:
    """Move the run one stage forward (SPEC 1.1)."""
    return _apply(conn, run_id, lambda run: lifecycle.advance(run, target))[1]


def append_message(
    conn: Connection, run_id: int, now: int, text: str, level: MessageLevel = MessageLevel.INFO
) -> None:
    """Add a line to the run's status-messages log; a finished run's log is closed."""
    run = get_run(conn, run_id)
    if run is None:
        raise IllegalTransition(f"automation run {run_id} does not exist")
    lifecycle.check_can_log(run)
    _insert_message(conn, run_id, now, text, level)


def _insert_message(
    conn: Connection, run_id: int, now: int, text: str, level: MessageLevel
) -> None:
    conn.execute(
        messages_t.insert().values(run_id=run_id, created_at=now, level=level.value, message=text)
    )


def record_operation(
    conn: Connection, run_id: int, succeeded: bool, now: int, message: str | None = None
) -> AutomationRun:
    """Count one operation's outcome and log it, in the caller's transaction."""
    _, after = _apply(conn, run_id, lambda run: lifecycle.count_operation(run, succeeded))
    if message is not None:
        level = MessageLevel.INFO if succeeded else MessageLevel.ERROR
        _insert_message(conn, run_id, now, message, level)
    return after


def finish_run(
    conn: Connection,
    run_id: int,
    now: int,
    *,
    planning_failed: bool = False,
    message: str | None = None,
    level: MessageLevel = MessageLevel.INFO,
) -> AutomationRun:
    """Finish the run with the status its counts give; `message` is its last log line."""
    _, after = _apply(conn, run_id, lambda run: lifecycle.finish(run, now, planning_failed))
    if message is not None:
        _insert_message(conn, run_id, now, message, level)
    return after


# -------------------------------------------------------------------- reading


def run_row(conn: Connection, run_id: int) -> RunRow | None:
    """The run's row in RUN_COLUMNS order, for encoding."""
    return conn.execute(select(*RUN_COLUMNS).where(runs_t.c.id == run_id)).first()


def find_visible_run(conn: Connection, run_id: int, user: User) -> RunRow | None:
    """The run's row if it exists and the user may see its automation."""
    query = select(*RUN_COLUMNS).where(runs_t.c.id == run_id)
    if not user.is_admin:
        query = query.join(automations, automations.c.id == runs_t.c.automation_id).where(
            automations.c.user_id == user.id
        )
    return conn.execute(query).first()


def read_messages(
    conn: Connection, run_id: int, after_id: int = 0, limit: int = 10_000
) -> list[RunRow]:
    """The run's log lines (id, created_at, level, message) in order."""
    return list(
        conn.execute(
            select(
                messages_t.c.id, messages_t.c.created_at, messages_t.c.level, messages_t.c.message
            )
            .where(messages_t.c.run_id == run_id, messages_t.c.id > after_id)
            .order_by(messages_t.c.id)
            .limit(limit)
        )
    )


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[RunRow]
    next_cursor: Cursor | None
    prev_cursor: Cursor | None


_SORT_COLUMNS = {None: None, "created_at": runs_t.c.created_at, "status": runs_t.c.status}
_KEY_INDEX = {None: None, "created_at": 3, "status": 5}  # position in RUN_COLUMNS


def _key_of(row: RunRow, sort: Sort) -> tuple[Any, int]:
    index = _KEY_INDEX[sort.field]
    return (None if index is None else row[index]), row[0]


def _read_order(query: RunListQuery) -> Sort:
    """The order rows are read in: with filter[status], sorting by status is sorting
    by id (one status), which ix_runs_automation_status_id serves without a sort step."""
    if query.status is not None and query.sort.field == "status":
        return Sort(field=None, descending=query.sort.descending)
    return query.sort


def _beyond(
    sort: Sort,
    cursor_key: Any,
    cursor_id: int,
    forward: bool,
    dialect: str,
    *,
    inclusive: bool = False,
) -> list[ColumnElement[bool]]:
    """Rows after (forward) or before the anchor in the sort's order, as a union of
    conditions each of which is one index range; `inclusive` adds the anchor itself.

    PostgreSQL bounds an index range by the whole row value `(key, id) > (?, ?)`.
    SQLite bounds it by the row value's first column only when the second is the
    rowid, so it would scan the anchor's whole tie group (for a status sort, every
    earlier run of that status) on each page; there the condition is split into
    `key = ? AND id > ?` and `key > ?`, two exact ranges. docs/indexes.md shows both.
    """
    column = _SORT_COLUMNS[sort.field]
    up = forward != sort.descending

    def past(left: Any, right: Any, strict: bool) -> ColumnElement[bool]:
        compare = (
            (operator.gt if strict else operator.ge)
            if up
            else (operator.lt if strict else operator.le)
        )
        condition: ColumnElement[bool] = compare(left, right)
        return condition

    if column is None:
        return [past(runs_t.c.id, cursor_id, not inclusive)]
    if dialect != "sqlite":
        return [past(tuple_(column, runs_t.c.id), tuple_(cursor_key, cursor_id), not inclusive)]
    return [
        and_(column == cursor_key, past(runs_t.c.id, cursor_id, not inclusive)),
        past(column, cursor_key, True),
    ]


def _order(sort: Sort, forward: bool, columns: Any = runs_t.c) -> list[Any]:
    """ORDER BY for reading in `sort` (reversed when walking back); `columns` is the
    table's or, for a union, the union's own column collection."""
    descending = sort.descending == forward
    names = [name for name in (sort.field, "id") if name is not None]
    return [columns[n].desc() if descending else columns[n].asc() for n in names]


def list_runs(conn: Connection, query: RunListQuery) -> Page:
    """One keyset page of an automation's runs (SPEC 2.1).

    An empty page (only possible past records that went away) has no cursors.
    A page is `per_page + 1` rows read from the index in the requested order,
    starting strictly after (or before) the cursor's anchor record; the extra
    row tells whether another page exists in that direction. Whether one
    exists the other way is one indexed EXISTS probe from the anchor.
    """
    scope = [runs_t.c.automation_id == query.automation_id]
    if query.status is not None:
        scope.append(runs_t.c.status == query.status.value)
    cursor = query.cursor
    order = _read_order(query)
    forward = cursor is None or cursor.direction == "next"
    dialect = conn.dialect.name
    if cursor is None:
        statement: Any = select(*RUN_COLUMNS).where(and_(*scope)).order_by(*_order(order, forward))
    else:
        arms = [
            select(*RUN_COLUMNS).where(and_(*scope, condition))
            for condition in _beyond(order, cursor.key, cursor.id, forward, dialect)
        ]
        if len(arms) == 1:
            statement = arms[0].order_by(*_order(order, forward))
        else:
            # The ranges are disjoint and each is read in index order, so the
            # database merges them without sorting (SQLite: MERGE (UNION ALL)).
            statement = union_all(*arms)
            statement = statement.order_by(*_order(order, forward, statement.selected_columns))
    rows = list(conn.execute(statement.limit(query.per_page + 1)))
    more = len(rows) > query.per_page
    rows = rows[: query.per_page]
    if not forward:
        rows.reverse()
    # Is there anything on the other side of the anchor (the side we came from)?
    behind = False
    if cursor is not None:
        probes = _beyond(order, cursor.key, cursor.id, not forward, dialect, inclusive=True)
        behind = bool(
            conn.execute(
                select(or_(*(exists().where(and_(*scope, probe)) for probe in probes)))
            ).scalar()
        )
    has_next, has_prev = (more, behind) if forward else (behind, more)
    next_cursor = prev_cursor = None
    if rows:
        if has_next:
            key, last_id = _key_of(rows[-1], query.sort)
            next_cursor = Cursor("next", key, last_id)
        if has_prev:
            key, first_id = _key_of(rows[0], query.sort)
            prev_cursor = Cursor("prev", key, first_id)
    return Page(rows, next_cursor, prev_cursor)
