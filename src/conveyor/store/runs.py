"""Automation runs in the database: the lifecycle writes, keyset listing and the log.

Every change of a run is decided by `conveyor.domain.runs` and applied here
with an UPDATE guarded by the state the decision was made from, so a change
made concurrently by another worker fails loudly instead of being lost.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from typing import Any, NamedTuple

from sqlalchemy import Boolean, bindparam, exists, or_, select, update
from sqlalchemy import text as sql_text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.elements import ColumnElement

from conveyor.clock import to_rfc3339
from conveyor.domain import runs as lifecycle
from conveyor.domain.errors import IllegalTransition
from conveyor.domain.listing import RunListQuery
from conveyor.domain.runs import AutomationRun, MessageLevel, RunStage, RunStatus
from conveyor.store import automations as automations_store  # a module: it imports this one
from conveyor.store import run_log
from conveyor.store.keyset import KeysetPage, keyset_steps
from conveyor.store.prepared import DriverSql, Prepared, Statement, Steps
from conveyor.store.schema import automation_runs as runs_t
from conveyor.store.schema import automations
from conveyor.store.schema import run_daily_counts as daily_t
from conveyor.store.schema import run_messages as messages_t
from conveyor.store.users import User


class RunRow(NamedTuple):
    """A run as read for encoding and display: the run's columns, by name.

    `RUN_COLUMNS` is derived from these names, so a new run column is added
    here once (and to the schema, the encoder and the OpenAPI description).
    """

    id: int
    automation_id: int
    completed_at: int | None
    created_at: int
    runtime: int
    status: str
    run_stage: str
    successful_operations: int
    failed_operations: int
    trigger: str
    cancel_requested_at: int | None
    cancel_requested_by: str | None
    rerun_of_run_id: int | None
    rerun_from_node_id: str | None
    retry_of_run_id: int | None
    retried_in_run_id: int | None
    retry_at: int | None
    retried_at: int | None


RUN_COLUMNS = tuple(runs_t.c[name] for name in RunRow._fields)
as_run_row = RunRow._make
# RunRow from a row in RUN_COLUMNS order, by tuple's own constructor, as `_make`
# does, without `_make`'s Python call per row (0.13 ms instead of 0.21 for 1,000 rows).
_new_run_row: Callable[[Sequence[Any]], RunRow] = functools.partial(tuple.__new__, RunRow)


def run_rows(rows: Sequence[Sequence[Any]]) -> list[RunRow]:
    """A page of the driver's rows (in RUN_COLUMNS order, so of RunRow's length) as RunRows."""
    return list(map(_new_run_row, rows))


_FIELDS = [f.name for f in fields(AutomationRun)]
# Called with (conn, before, after, extra) for every run created (before is None)
# or changed, inside the writer's transaction; conveyor.observability reports them.
RunObserver = Callable[[Connection, AutomationRun | None, AutomationRun, dict[str, Any]], None]
RUN_OBSERVERS: list[RunObserver] = []
DAY_US = 86_400 * 1_000_000
# Both dialects' insert() take on_conflict_do_update(index_elements=, set_=).
_UPSERT_INSERTS: dict[str, Callable[..., Any]] = {
    "postgresql": postgresql.insert,
    "sqlite": sqlite.insert,
}


def add_daily_counts(conn: Connection, changes: Sequence[tuple[int, int, str, int]]) -> None:
    """Add (automation id, UTC day of created_at, status, delta) to run_daily_counts,
    in the caller's transaction: one INSERT ... ON CONFLICT DO UPDATE (SQLite >= 3.24,
    PostgreSQL). Counts that reach 0 stay as rows; readers skip them."""
    if not changes:
        return
    params: dict[str, Any] = {}
    for n, (automation_id, day, status, delta) in enumerate(changes):
        params.update({f"a{n}": automation_id, f"d{n}": day, f"s{n}": status, f"c{n}": delta})
    if len(changes) <= 2:  # every run's creation and finish: compiled once (DriverSql)
        compiled = _daily_upsert_sql(conn.dialect, len(changes))
        conn.exec_driver_sql(compiled.sql, compiled.parameters(params))
    else:
        conn.execute(_daily_upsert(conn.dialect.name, len(changes)), params)


@functools.cache
def _daily_upsert_sql(dialect: Dialect, rows: int) -> DriverSql:
    """The statement of 1 or 2 rows as driver SQL: SQLAlchemy does not cache the
    compilation of a multi-row INSERT, so it would compile it at every run's creation
    and finish."""
    return DriverSql.of(_daily_upsert(dialect.name, rows), dialect)


def _daily_upsert(dialect: str, rows: int) -> Any:
    """add_daily_counts' statement for `rows` rows (integers and text only)."""
    c = daily_t.c
    statement = _UPSERT_INSERTS[dialect](daily_t).values(
        [
            {
                "automation_id": bindparam(f"a{n}", type_=c.automation_id.type),
                "day": bindparam(f"d{n}", type_=c.day.type),
                "status": bindparam(f"s{n}", type_=c.status.type),
                "count": bindparam(f"c{n}", type_=c.count.type),
            }
            for n in range(rows)
        ]
    )
    return statement.on_conflict_do_update(
        index_elements=[c.automation_id, c.day, c.status],
        set_={"count": c.count + statement.excluded.count},
    )


def run_from_row(row: Sequence[Any]) -> AutomationRun:
    """The domain's run from a row in RUN_COLUMNS order (a RunRow or the driver's tuple)."""
    found = as_run_row(row)
    values = {name: getattr(found, name) for name in _FIELDS}
    values["status"] = RunStatus(found.status)
    values["run_stage"] = RunStage(found.run_stage)
    return AutomationRun(**values)


# ------------------------------------------------------------------ lifecycle


def create_run(
    conn: Connection, automation_id: int, now: int, runtime: int | None = None, **extra: Any
) -> AutomationRun:
    """Insert a new run (queued_for_planning; running, or queued for an
    always_serialize_jobs automation). `extra` sets engine columns."""
    serialized = conn.execute(_SERIALIZED, {"automation_id": automation_id}).scalar()
    run = lifecycle.new_run(automation_id, now, runtime, serialized=bool(serialized))
    values = {name: getattr(run, name) for name in _FIELDS if name != "id"}
    values.update(extra)
    run_id = conn.execute(_INSERT_RUN, values).scalar_one()
    if conn.dialect.name == "postgresql":
        # Delivered at commit to the engine's LISTEN conveyor_runs (engine/wakeup.py).
        conn.execute(sql_text("SELECT pg_notify('conveyor_runs', :id)"), {"id": str(run_id)})
    own = {name: value for name, value in extra.items() if name in _FIELDS}
    created = replace(run, id=run_id, **own)
    record_created(conn, [(created, extra)])
    return created


# Built once: every run created runs them.
_SERIALIZED = select(automations.c.always_serialize_jobs).where(
    automations.c.id == bindparam("automation_id", type_=automations.c.id.type)
)
_INSERT_RUN = runs_t.insert().returning(runs_t.c.id)
_INSERT_MESSAGE = messages_t.insert()


def record_created(
    conn: Connection, created: Sequence[tuple[AutomationRun, dict[str, Any]]]
) -> None:
    """What every new run owes, in its creating transaction, whichever way it was
    inserted (one by one here, or many at once by the scheduler): the per-day
    counts and the observers."""
    counts: dict[tuple[int, int, str], int] = {}
    for run, _extra in created:
        key = (run.automation_id, run.created_at // DAY_US, run.status.value)
        counts[key] = counts.get(key, 0) + 1
    add_daily_counts(conn, [(*key, n) for key, n in sorted(counts.items())])
    for run, extra in created:
        for observer in RUN_OBSERVERS:
            observer(conn, None, run, extra)


_GET_RUN = select(*RUN_COLUMNS).where(runs_t.c.id == bindparam("run_id", type_=runs_t.c.id.type))
# Built once: every lifecycle change reads the run first.
_GET_RUN_FOR_UPDATE = _GET_RUN.with_for_update()


def get_run(conn: Connection, run_id: int, *, for_update: bool = False) -> AutomationRun | None:
    locked = for_update and conn.dialect.name != "sqlite"
    row = conn.execute(_GET_RUN_FOR_UPDATE if locked else _GET_RUN, {"run_id": run_id}).first()
    return None if row is None else run_from_row(row)


def _apply(
    conn: Connection,
    run_id: int,
    change: Callable[[AutomationRun], AutomationRun],
    *,
    current: AutomationRun | None = None,
    observe: bool = True,
) -> tuple[AutomationRun, AutomationRun]:
    """Load the run, decide the change in the domain, write it guarded by the old state.

    `current`: the run as this transaction already read or wrote it (its row locked
    on PostgreSQL), which saves the read; the UPDATE's guard holds either way."""
    before = current if current is not None else get_run(conn, run_id, for_update=True)
    if before is None:
        raise IllegalTransition(f"automation run {run_id} does not exist")
    after = change(before)
    values = {
        name: getattr(after, name)
        for name in _FIELDS
        if getattr(after, name) != getattr(before, name)
    }
    if values:
        params = {f"new_{name}": value for name, value in values.items()}
        result = conn.execute(
            _change(tuple(sorted(values))),
            {
                **params,
                "old_id": run_id,
                "old_stage": before.run_stage.value,
                "old_ok": before.successful_operations,
                "old_failed": before.failed_operations,
            },
        )
        if result.rowcount != 1:
            raise IllegalTransition(f"automation run {run_id} changed concurrently")
        if before.status != after.status:
            # Finishing changes the status (-> final), and so does the claim of a queued
            # run (queued -> running); the counts move with it.
            day = before.created_at // DAY_US
            add_daily_counts(
                conn,
                [
                    (before.automation_id, day, before.status.value, -1),
                    (after.automation_id, day, after.status.value, 1),
                ],
            )
        if observe:
            for observer in RUN_OBSERVERS:
                observer(conn, before, after, {})
    return before, after


@functools.cache
def _change(names: tuple[str, ...]) -> Any:
    """`_apply`'s guarded UPDATE of the columns `names`, built once per set of columns
    (a handful: each lifecycle change touches the same ones every time)."""
    return (
        update(runs_t)
        .where(
            runs_t.c.id == bindparam("old_id", type_=runs_t.c.id.type),
            runs_t.c.run_stage == bindparam("old_stage", type_=runs_t.c.run_stage.type),
            runs_t.c.successful_operations
            == bindparam("old_ok", type_=runs_t.c.successful_operations.type),
            runs_t.c.failed_operations
            == bindparam("old_failed", type_=runs_t.c.failed_operations.type),
        )
        .values({name: bindparam(f"new_{name}", type_=runs_t.c[name].type) for name in names})
    )


def advance_stage(
    conn: Connection, run_id: int, target: RunStage, *, current: AutomationRun | None = None
) -> AutomationRun:
    """Move the run one stage forward (SPEC 1.1). `current`: the run as this transaction
    read it (locked on PostgreSQL), which saves reading it again."""
    return _apply(conn, run_id, lambda run: lifecycle.advance(run, target), current=current)[1]


def advance_stages(
    conn: Connection,
    run_id: int,
    targets: Sequence[RunStage],
    *,
    current: AutomationRun | None = None,
) -> AutomationRun:
    """Move the run through several stages in turn, each step decided by the lifecycle
    as `advance_stage` would (observers see each step), with one UPDATE (and one read,
    unless `current` is given)."""
    before = current if current is not None else get_run(conn, run_id, for_update=True)
    if before is None:
        raise IllegalTransition(f"automation run {run_id} does not exist")
    steps = [before]
    for target in targets:
        steps.append(lifecycle.advance(steps[-1], target))
    _apply(conn, run_id, lambda _run: steps[-1], current=before, observe=False)
    for earlier, later in itertools.pairwise(steps):
        for observer in RUN_OBSERVERS:
            observer(conn, earlier, later, {})
    return steps[-1]


def append_message(
    conn: Connection, run_id: int, now: int, text: str, level: MessageLevel = MessageLevel.INFO
) -> None:
    """Add a line to the run's status-messages log; a finished run's log is closed."""
    # Locked (PostgreSQL) so a concurrent finish cannot slip in between the
    # check and the insert: a finished run's log stays closed.
    run = get_run(conn, run_id, for_update=True)
    if run is None:
        raise IllegalTransition(f"automation run {run_id} does not exist")
    lifecycle.check_can_log(run)
    _insert_message(conn, run_id, now, text, level)


def _insert_message(
    conn: Connection, run_id: int, now: int, text: str, level: MessageLevel
) -> None:
    conn.execute(
        _INSERT_MESSAGE,
        {"run_id": run_id, "created_at": now, "level": level.value, "message": text},
    )


def hold_waiting_runs(conn: Connection, automation_id: int, now: int) -> int:
    """`always_serialize_jobs` was just turned on for the automation: its runs waiting
    for planning become `queued` (domain.runs.hold_for_serialization), each with a log
    line, in the caller's transaction. Returns how many. A run a worker claims
    meanwhile is left as the claim made it (each change is guarded on the run's
    state, under its row lock)."""
    waiting = conn.execute(
        select(runs_t.c.id)
        .where(
            runs_t.c.automation_id == automation_id,
            runs_t.c.run_stage == RunStage.QUEUED_FOR_PLANNING.value,
            runs_t.c.status == RunStatus.RUNNING.value,
        )
        .order_by(runs_t.c.id)
    ).scalars()
    held = 0
    for run_id in list(waiting):
        before, after = _apply(conn, run_id, lifecycle.hold_for_serialization)
        if after.status is not before.status:
            held += 1
            _insert_message(
                conn,
                run_id,
                now,
                "Queued: always_serialize_jobs was turned on for its automation, so this run "
                "waits until every earlier run of the automation has finished.",
                MessageLevel.INFO,
            )
    return held


def record_operation(
    conn: Connection, run_id: int, succeeded: bool, now: int, message: str | None = None
) -> AutomationRun:
    """Count one operation's outcome and log it, in the caller's transaction."""
    if message is not None:
        return record_operations(conn, run_id, [(succeeded, now, message)])
    _, after = _apply(conn, run_id, lambda run: lifecycle.count_operation(run, succeeded))
    return after


def record_operations(
    conn: Connection, run_id: int, outcomes: Sequence[tuple[bool, int, str]]
) -> AutomationRun:
    """Count a batch of outcomes (succeeded, at, message) and log each message, in the
    caller's transaction: one UPDATE of the run and one multi-row INSERT of the log."""
    succeeded = sum(1 for ok, _at, _text in outcomes if ok)
    _, after = _apply(
        conn,
        run_id,
        lambda run: lifecycle.count_operations(run, succeeded, len(outcomes) - succeeded),
    )
    if outcomes:
        conn.execute(
            _INSERT_MESSAGE,
            [
                {
                    "run_id": run_id,
                    "created_at": at,
                    "level": (MessageLevel.INFO if ok else MessageLevel.ERROR).value,
                    "message": text,
                }
                for ok, at, text in outcomes
            ],
        )
    return after


def count_outcomes(conn: Connection, run_id: int, succeeded: int, failed: int) -> AutomationRun:
    """Count a batch of outcomes whose log lines are their operation rows (the
    engine's, store.run_log), in the caller's transaction: one UPDATE of the run."""
    _, after = _apply(conn, run_id, lambda run: lifecycle.count_operations(run, succeeded, failed))
    return after


def finish_run(
    conn: Connection,
    run_id: int,
    now: int,
    *,
    planning_failed: bool = False,
    message: str | None = None,
    level: MessageLevel = MessageLevel.INFO,
    current: AutomationRun | None = None,
) -> AutomationRun:
    """Finish the run with the status its counts give; `message` is its last log line.
    `current`: the run as this transaction last wrote it (saves reading it again)."""
    _, after = _apply(
        conn, run_id, lambda run: lifecycle.finish(run, now, planning_failed), current=current
    )
    if message is not None:
        _insert_message(conn, run_id, now, message, level)
    if after.status in lifecycle.RETRIED_STATUSES:
        after = replace(after, retry_at=_schedule_retry(conn, after, now))
    return after


def _schedule_retry(conn: Connection, run: AutomationRun, now: int) -> int | None:
    """Set the finished run's retry_at if its automation retries it (Files.com's
    retry_on_failure_*), in the finishing transaction; the scheduler makes the retry
    when it is due (store.retries)."""
    a = automations.c
    row = conn.execute(
        select(
            runs_t.c.retry_attempt,
            a.disabled,
            a.deleted,
            a.retry_on_failure_number_of_attempts,
            a.retry_on_failure_interval_in_minutes,
        )
        .select_from(runs_t.join(automations, a.id == runs_t.c.automation_id))
        .where(runs_t.c.id == run.id)
    ).one()
    attempts = row.retry_on_failure_number_of_attempts
    due = lifecycle.retry_time(
        run,
        row.retry_attempt,
        attempts,
        row.retry_on_failure_interval_in_minutes,
        disabled=bool(row.disabled),
        deleted=bool(row.deleted),
    )
    if due is None:
        return None
    conn.execute(update(runs_t).where(runs_t.c.id == run.id).values(retry_at=due))
    _insert_message(
        conn,
        run.id,
        now,
        f"Ended {run.status.value}: retry {row.retry_attempt + 1} of {attempts} is due at "
        f"{to_rfc3339(due)} ({row.retry_on_failure_interval_in_minutes} minutes after the end).",
        MessageLevel.INFO,
    )
    return due


# -------------------------------------------------------------------- reading


def run_row(conn: Connection, run_id: int) -> RunRow | None:
    """The run's row, for encoding."""
    row = conn.execute(select(*RUN_COLUMNS).where(runs_t.c.id == run_id)).first()
    return None if row is None else as_run_row(row)


def find_visible_run(dialect: Dialect, run_id: int, user: User) -> Steps[RunRow | None]:
    """The run's row if it exists and the user may see its automation."""
    if user.is_admin:
        rows = yield Statement(_FIND_RUN.for_dialect(dialect), {"run_id": run_id})
    else:
        values = {"run_id": run_id, "user_id": user.id}
        rows = yield Statement(_FIND_OWNED_RUN.for_dialect(dialect), values)
    return as_run_row(rows[0]) if rows else None


def _find_run(owned: bool) -> Any:
    query = select(*RUN_COLUMNS).where(runs_t.c.id == bindparam("run_id", type_=runs_t.c.id.type))
    if owned:
        query = query.join(automations, automations.c.id == runs_t.c.automation_id).where(
            automations.c.user_id == bindparam("user_id", type_=automations.c.user_id.type)
        )
    return query


_FIND_RUN = Prepared(lambda: _find_run(owned=False))
_FIND_OWNED_RUN = Prepared(lambda: _find_run(owned=True))


def read_messages(
    conn: Connection, run_id: int, after_id: int | run_log.Cursor = 0, limit: int = 10_000
) -> list[run_log.LogLine]:
    """The run's log lines (cursor, created_at, level, message) in order, after the
    line at `after_id` (a cursor of `store.run_log`, or a message id)."""
    after = (after_id, 0, 0) if isinstance(after_id, int) else after_id
    return run_log.lines(conn, run_id, limit, after=after)


def first_error_message(conn: Connection, run_id: int) -> str | None:
    """The text of the run's first log line at level error, if any."""
    return run_log.first_line(conn, run_id, "error")


Page = KeysetPage

# Where the keyset reads each sort field's value in a row.
_KEY_INDEX: dict[str | None, int | None] = {
    None: None,
    **{name: RunRow._fields.index(name) for name in ("created_at", "status")},
}


def list_runs(dialect: Dialect, query: RunListQuery) -> Steps[Page]:
    """One keyset page of an automation's runs (SPEC 2.1), read by `store.keyset`.

    With filter[status], sorting by status is sorting by id (one status), which
    ix_runs_automation_status_id serves without a sort step. The statements are
    built and compiled once per shape (keyset's `cache_key`); the page's rows
    are `RunRow`s.
    """
    page = yield from _list_runs(dialect, query, None)
    return replace(page, rows=run_rows(page.rows))


def list_visible_runs(dialect: Dialect, query: RunListQuery, viewer: User) -> Steps[Page | None]:
    """`list_runs` as `viewer` may list (the API's run list): None when the automation
    does not exist, was deleted, or is not the viewer's to see (`may_see`). The
    page's rows are the driver's tuples, in RunRow's order, for `api.encode`, which
    unpacks them by RunRow's names: a RunRow per run would cost its building and,
    being a tuple subclass, stay tracked by the cyclic garbage collector.

    The visibility is a condition of the page's own statement, an EXISTS on the
    automation that does not depend on the run rows (so it is evaluated once, not
    per row): a page with runs proves it, without a statement of its own. Only an
    empty page asks for the automation's owner, to tell no runs from no access.
    """
    page = yield from _list_runs(dialect, query, viewer)
    if not page.rows:
        owner_id = yield from automations_store.automation_owner(dialect, query.automation_id)
        if owner_id is None or not automations_store.may_see(viewer, owner_id):
            return None
    return page


def _list_runs(dialect: Dialect, query: RunListQuery, viewer: User | None) -> Steps[Page]:
    params: dict[str, Any] = {"automation_id": query.automation_id}
    scope = _AUTOMATION_SCOPE
    if query.status is not None:
        scope = _AUTOMATION_STATUS_SCOPE
        params["status"] = query.status.value
    if viewer is not None:
        scope = (*scope, _VISIBLE)
        params["viewer_id"] = viewer.id
        params["viewer_is_admin"] = viewer.is_admin
    read_field = query.sort.field
    if query.status is not None and read_field == "status":
        read_field = None
    if query.narrowed:
        scope, narrowing = _narrowed_scope(scope, query, params)
    else:
        narrowing = ()
    return (
        yield from keyset_steps(
            dialect,
            columns=RUN_COLUMNS,
            table_columns=runs_t.c,
            read_field=read_field,
            descending=query.sort.descending,
            key_index=_KEY_INDEX[query.sort.field],
            scope=scope,
            cursor=query.cursor,
            per_page=query.per_page,
            params=params,
            cache_key=("automation_runs", viewer is not None, query.status is not None, *narrowing),
        )
    )


def _narrowed_scope(
    scope: tuple[ColumnElement[bool], ...], query: RunListQuery, params: dict[str, Any]
) -> tuple[tuple[ColumnElement[bool], ...], tuple[str, ...]]:
    """The web UI's extra narrowing (trigger, created_at range) as bound conditions,
    and which of them are present (part of the statement cache's key)."""
    present = []
    if query.trigger is not None:
        scope = (*scope, runs_t.c.trigger == _TRIGGER)
        params["trigger"] = query.trigger
        present.append("trigger")
    if query.created_from is not None:
        scope = (*scope, runs_t.c.created_at >= _CREATED_FROM)
        params["created_from"] = query.created_from
        present.append("from")
    if query.created_before is not None:
        scope = (*scope, runs_t.c.created_at < _CREATED_BEFORE)
        params["created_before"] = query.created_before
        present.append("before")
    return scope, tuple(present)


_AUTOMATION_ID = bindparam("automation_id", type_=runs_t.c.automation_id.type)
_STATUS = bindparam("status", type_=runs_t.c.status.type)
_TRIGGER = bindparam("trigger", type_=runs_t.c.trigger.type)
_CREATED_FROM = bindparam("created_from", type_=runs_t.c.created_at.type)
_CREATED_BEFORE = bindparam("created_before", type_=runs_t.c.created_at.type)
# Built once: the statements are compiled once per shape anyway (keyset's cache_key).
_AUTOMATION_SCOPE: tuple[ColumnElement[bool], ...] = (runs_t.c.automation_id == _AUTOMATION_ID,)
_AUTOMATION_STATUS_SCOPE = (*_AUTOMATION_SCOPE, runs_t.c.status == _STATUS)
# `may_see` as SQL, for list_visible_runs: the automation exists, is not deleted, and
# is the viewer's own, or the viewer is an admin.
_VISIBLE = exists().where(
    automations.c.id == _AUTOMATION_ID,
    automations.c.deleted.is_(False),
    or_(
        automations.c.user_id == bindparam("viewer_id", type_=automations.c.user_id.type),
        bindparam("viewer_is_admin", type_=Boolean()),
    ),
)


def change_run(
    conn: Connection, run_id: int, change: Callable[[AutomationRun], AutomationRun]
) -> tuple[AutomationRun, AutomationRun]:
    """Apply a lifecycle decision of `conveyor.domain.runs` to the run, guarded by the
    state it was decided from (for callers in `store`, e.g. `store.run_control`)."""
    return _apply(conn, run_id, change)
