"""Engine queries: finding claimable runs, leases and heartbeats, planned operations.

Stage changes and counts still go through `conveyor.store.runs`; this module
adds the bookkeeping around them. Every write that acts for a worker is
guarded on `lease_owner` and on `lease_generation` (the fencing token the
claim returned), so a worker that lost its lease changes nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    Text,
    bindparam,
    column,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection

from conveyor.domain.runs import AutomationRun, MessageLevel, RunStage
from conveyor.store import run_log
from conveyor.store import runs as run_store
from conveyor.store.schema import automation_runs as runs_t
from conveyor.store.schema import automations as automations_t
from conveyor.store.schema import run_messages as messages_t
from conveyor.store.schema import run_operations as ops_t

QUEUED = (RunStage.QUEUED_FOR_EXECUTION, RunStage.QUEUED_FOR_PLANNING)
ACTIVE = (RunStage.PLANNING, RunStage.EXECUTING)
# The column that records when a run entered each stage the engine moves it to.
STAGE_STARTED = {
    RunStage.PLANNING: runs_t.c.planning_at,
    RunStage.QUEUED_FOR_EXECUTION: runs_t.c.queued_for_execution_at,
    RunStage.EXECUTING: runs_t.c.executing_at,
}


class LeaseLost(Exception):
    """This worker no longer holds the run's lease; another worker owns it now."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A run a worker may claim: queued, or active with a lease that ran out (or was released)."""

    id: int
    automation_id: int
    run_stage: RunStage
    lease_owner: str | None
    lease_losses: int
    lease_generation: int = 0
    lease_expires_at: int | None = None
    cancel_requested_at: int | None = None
    # The whole run as the claim read it (locked on PostgreSQL): the claim's change of
    # stage is decided from it, without reading the run again.
    run: AutomationRun | None = None


_CANDIDATE_COLUMNS = (
    *run_store.RUN_COLUMNS,
    runs_t.c.lease_owner,
    runs_t.c.lease_losses,
    runs_t.c.lease_generation,
    runs_t.c.lease_expires_at,
)
_RUN_WIDTH = len(run_store.RUN_COLUMNS)


def _waits_for_an_earlier_run() -> Any:
    """always_serialize_jobs: the run's automation has an earlier run not yet finished.

    Such a run is not planned (so not executed) until every earlier run of its
    automation has finished: one run at a time, in the order they were made.
    """
    earlier = runs_t.alias("earlier")
    return exists(
        select(earlier.c.id)
        .select_from(earlier.join(automations_t, automations_t.c.id == earlier.c.automation_id))
        .where(
            automations_t.c.always_serialize_jobs.is_(True),
            earlier.c.automation_id == runs_t.c.automation_id,
            earlier.c.id < runs_t.c.id,
            earlier.c.run_stage != RunStage.FINISHED.value,
        )
    )


def _candidate_queries(for_update: bool) -> tuple[Any, ...]:
    """next_candidate's three statements, oldest first, built once (bound `now`)."""
    now = bindparam("now", type_=runs_t.c.lease_expires_at.type)
    queries = (
        select(*_CANDIDATE_COLUMNS).where(
            runs_t.c.run_stage.in_([s.value for s in ACTIVE]),
            or_(runs_t.c.lease_expires_at.is_(None), runs_t.c.lease_expires_at < now),
        ),
        select(*_CANDIDATE_COLUMNS).where(runs_t.c.run_stage == RunStage.QUEUED_FOR_EXECUTION),
        select(*_CANDIDATE_COLUMNS).where(
            runs_t.c.run_stage == RunStage.QUEUED_FOR_PLANNING, ~_waits_for_an_earlier_run()
        ),
    )
    ordered = tuple(query.order_by(runs_t.c.id).limit(1) for query in queries)
    if for_update:
        return tuple(query.with_for_update(skip_locked=True) for query in ordered)
    return ordered


# Built once: a claim runs them often, and building a statement (and its cache key)
# costs more CPU than SQLite takes to run it.
_CANDIDATES = {False: _candidate_queries(False), True: _candidate_queries(True)}


def next_candidate(conn: Connection, now: int) -> Candidate | None:
    """The oldest run needing a worker, locked for this transaction.

    Runs whose worker died come first (they have waited longest), then runs
    ready to execute (finish what was started), then runs to plan (except
    those of an always_serialize_jobs automation with an earlier unfinished
    run). On
    PostgreSQL rows locked by another claimer are skipped; on SQLite the
    caller's BEGIN IMMEDIATE transaction already excludes other claimers.
    """
    for query in _CANDIDATES[conn.dialect.name == "postgresql"]:
        row = conn.execute(query, {"now": now}).first()
        if row is not None:
            return Candidate(
                row.id,
                row.automation_id,
                RunStage(row.run_stage),
                row.lease_owner,
                row.lease_losses,
                row.lease_generation,
                row.lease_expires_at,
                row.cancel_requested_at,
                run_store.run_from_row(row[:_RUN_WIDTH]),
            )
    return None


def take_lease(
    conn: Connection,
    candidate: Candidate,
    worker_id: str,
    now: int,
    expires_at: int,
    *,
    stage: RunStage,
    lost: bool,
) -> int:
    """Make `worker_id` the run's lease holder, guarded on the generation the claimer
    saw; returns the new generation, the fencing token of every write the holder makes.

    `lost` counts a lease that ran out while held (a dead or stalled worker).
    `stage` (the run's stage now) gets its start time unless it already has one.
    """
    token = candidate.lease_generation + 1
    result = conn.execute(
        _take_lease(lost, stage),
        {
            "b_run": candidate.id,
            "b_seen": candidate.lease_generation,
            "b_owner": worker_id,
            "b_until": expires_at,
            "b_token": token,
            "b_now": now,
        },
    )
    if result.rowcount != 1:
        raise LeaseLost(f"automation run {candidate.id} was claimed concurrently")
    return token


@functools.cache
def _take_lease(lost: bool, stage: RunStage) -> Any:
    """take_lease's UPDATE, built once per (lost, stage): every claim runs one."""
    values: dict[str, Any] = {
        "lease_owner": bindparam("b_owner", type_=runs_t.c.lease_owner.type),
        "lease_expires_at": bindparam("b_until", type_=runs_t.c.lease_expires_at.type),
        "lease_generation": bindparam("b_token", type_=runs_t.c.lease_generation.type),
    }
    if lost:
        values["lease_losses"] = runs_t.c.lease_losses + 1
    started = STAGE_STARTED.get(stage)
    if started is not None:
        values[started.name] = func.coalesce(started, bindparam("b_now", type_=started.type))
    return (
        update(runs_t)
        .where(
            runs_t.c.id == bindparam("b_run", type_=runs_t.c.id.type),
            runs_t.c.lease_generation == bindparam("b_seen", type_=runs_t.c.lease_generation.type),
        )
        .values(**values)
    )


def _held(run_id: int, worker_id: str, token: int) -> tuple[Any, ...]:
    """The guard of every write the lease holder makes: its id and its fencing token."""
    return (
        runs_t.c.id == run_id,
        runs_t.c.lease_owner == worker_id,
        runs_t.c.lease_generation == token,
    )


# Built once (every commit of a worker runs it): the heartbeat's and hold_lease's UPDATE.
_EXTEND = (
    update(runs_t)
    .where(
        runs_t.c.id == bindparam("b_run", type_=runs_t.c.id.type),
        runs_t.c.lease_owner == bindparam("b_owner", type_=runs_t.c.lease_owner.type),
        runs_t.c.lease_generation == bindparam("b_token", type_=runs_t.c.lease_generation.type),
        runs_t.c.run_stage.in_([s.value for s in ACTIVE]),
    )
    .values(lease_expires_at=bindparam("b_until", type_=runs_t.c.lease_expires_at.type))
)


def extend_lease(
    conn: Connection, run_id: int, worker_id: str, token: int, expires_at: int
) -> bool:
    """The heartbeat: push the lease's expiry out; False if this worker lost it."""
    result = conn.execute(
        _EXTEND, {"b_run": run_id, "b_owner": worker_id, "b_token": token, "b_until": expires_at}
    )
    return bool(result.rowcount == 1)


def hold_lease(conn: Connection, run_id: int, worker_id: str, token: int, expires_at: int) -> None:
    """Check (and extend) the lease inside the transaction that commits work; LeaseLost if gone.

    On PostgreSQL the UPDATE also locks the run's row until commit, so no
    claimer can take the run between this check and the commit.
    """
    if not extend_lease(conn, run_id, worker_id, token, expires_at):
        raise LeaseLost(f"worker {worker_id} no longer holds automation run {run_id}")


def clear_lease(
    conn: Connection, run_id: int, stage_started: RunStage | None = None, now: int | None = None
) -> None:
    """No one holds the run (it is queued or finished now); optionally stamp a stage start."""
    values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}
    if stage_started is not None:
        values[STAGE_STARTED[stage_started].name] = now
    conn.execute(update(runs_t).where(runs_t.c.id == run_id).values(**values))


def end_lease(
    conn: Connection,
    run_id: int,
    worker_id: str,
    token: int,
    stage_started: RunStage | None = None,
    now: int | None = None,
) -> None:
    """Give up the lease as the last write of a transaction that moved the run on.

    Guarded on the owner: if another worker took the run over meanwhile,
    LeaseLost rolls the whole transaction back.
    """
    result = conn.execute(
        _end_lease(stage_started),
        {"b_run": run_id, "b_owner": worker_id, "b_token": token, "b_now": now},
    )
    if result.rowcount != 1:
        raise LeaseLost(f"worker {worker_id} no longer holds automation run {run_id}")


# Built once (every small plan's commit runs it): the hand-over from planning to executing.
_START_EXECUTING = (
    update(runs_t)
    .where(
        runs_t.c.id == bindparam("b_run", type_=runs_t.c.id.type),
        runs_t.c.lease_owner == bindparam("b_owner", type_=runs_t.c.lease_owner.type),
        runs_t.c.lease_generation == bindparam("b_token", type_=runs_t.c.lease_generation.type),
    )
    .values(
        lease_expires_at=bindparam("b_until", type_=runs_t.c.lease_expires_at.type),
        queued_for_execution_at=bindparam("b_now", type_=runs_t.c.queued_for_execution_at.type),
        executing_at=bindparam("b_now", type_=runs_t.c.executing_at.type),
    )
)


def keep_lease_to_execute(
    conn: Connection, run_id: int, worker_id: str, token: int, now: int, expires_at: int
) -> None:
    """The planner's lease carries on into executing (the run's stage moved with it):
    stamp both stages' start and extend the lease, guarded on the holder and its token;
    LeaseLost (the whole transaction rolls back) if another worker took the run over."""
    result = conn.execute(
        _START_EXECUTING,
        {
            "b_run": run_id,
            "b_owner": worker_id,
            "b_token": token,
            "b_until": expires_at,
            "b_now": now,
        },
    )
    if result.rowcount != 1:
        raise LeaseLost(f"worker {worker_id} no longer holds automation run {run_id}")


@functools.cache
def _end_lease(stage_started: RunStage | None) -> Any:
    """end_lease's UPDATE, built once per stage stamped: every plan and finish runs one."""
    values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}
    if stage_started is not None:
        column = STAGE_STARTED[stage_started]
        values[column.name] = bindparam("b_now", type_=column.type)
    return (
        update(runs_t)
        .where(
            runs_t.c.id == bindparam("b_run", type_=runs_t.c.id.type),
            runs_t.c.lease_owner == bindparam("b_owner", type_=runs_t.c.lease_owner.type),
            runs_t.c.lease_generation == bindparam("b_token", type_=runs_t.c.lease_generation.type),
        )
        .values(**values)
    )


def release_lease(conn: Connection, run_id: int, worker_id: str, token: int) -> bool:
    """Give a run back without finishing it (worker stopping): the next claim is no loss."""
    result = conn.execute(
        update(runs_t)
        .where(*_held(run_id, worker_id, token))
        .values(lease_owner=None, lease_expires_at=None)
    )
    return bool(result.rowcount == 1)


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    lease_owner: str | None
    lease_expires_at: int | None
    lease_losses: int
    planning_at: int | None
    queued_for_execution_at: int | None
    executing_at: int | None
    lease_generation: int


def unfinished_runs(conn: Connection, run_ids: Sequence[int]) -> set[int]:
    """Those of `run_ids` that exist and are not finished (they may still resume)."""
    alive: set[int] = set()
    for start in range(0, len(run_ids), 500):
        chunk = list(run_ids[start : start + 500])
        alive.update(
            conn.execute(
                select(runs_t.c.id).where(
                    runs_t.c.id.in_(chunk), runs_t.c.run_stage != RunStage.FINISHED.value
                )
            ).scalars()
        )
    return alive


def lease_info(conn: Connection, run_id: int) -> LeaseInfo | None:
    row = conn.execute(
        select(
            runs_t.c.lease_owner,
            runs_t.c.lease_expires_at,
            runs_t.c.lease_losses,
            runs_t.c.planning_at,
            runs_t.c.queued_for_execution_at,
            runs_t.c.executing_at,
            runs_t.c.lease_generation,
        ).where(runs_t.c.id == run_id)
    ).first()
    return None if row is None else LeaseInfo(*row)


# ------------------------------------------------------------------ operations


def _rows_as_arrays(name: str, columns: Sequence[tuple[str, Any]]) -> Any:
    """PostgreSQL: `unnest` of one array parameter per column (`<column>s`), as a
    table named `name`: many rows in one statement, their values given as arrays."""
    return (
        func.unnest(*(bindparam(f"{col}s", type_=ARRAY(kind)) for col, kind in columns))
        .table_valued(*(column(col, kind) for col, kind in columns))
        .render_derived(name=name)
    )


_PLANNED = _rows_as_arrays(
    "p",
    [
        ("p_seq", Integer),
        ("p_kind", Text),
        ("p_source", Text),
        ("p_destination", Text),
        ("p_detail", Text),
        ("p_at", BigInteger),
        ("p_after", BigInteger),
    ],
)
# PostgreSQL: a chunk of a plan in one statement (as _COMPLETE_ALL).
_INSERT_ALL = ops_t.insert().from_select(
    [
        "run_id",
        "seq",
        "kind",
        "source",
        "destination",
        "state",
        "detail",
        "planned_at",
        "planned_after",
    ],
    select(
        bindparam("p_run", type_=BigInteger),
        _PLANNED.c.p_seq,
        _PLANNED.c.p_kind,
        _PLANNED.c.p_source,
        _PLANNED.c.p_destination,
        literal("pending"),
        _PLANNED.c.p_detail,
        _PLANNED.c.p_at,
        _PLANNED.c.p_after,
    ),
)


def insert_operations(conn: Connection, run_id: int, rows: Sequence[dict[str, Any]]) -> None:
    """Persist a plan: each row has seq, kind, source, destination and optionally
    detail, planned_at, planned_after; all pending. On PostgreSQL one INSERT ...
    SELECT FROM unnest(...) for all of them."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(
            _INSERT_ALL,
            {
                "p_run": run_id,
                "p_seqs": [row["seq"] for row in rows],
                "p_kinds": [row["kind"] for row in rows],
                "p_sources": [row["source"] for row in rows],
                "p_destinations": [row["destination"] for row in rows],
                "p_details": [row.get("detail") for row in rows],
                "p_ats": [row.get("planned_at") for row in rows],
                "p_afters": [row.get("planned_after") for row in rows],
            },
        )
        return
    conn.execute(ops_t.insert(), [{**row, "run_id": run_id, "state": "pending"} for row in rows])


def discard_operations(conn: Connection, run_id: int) -> int:
    """Remove the run's operations (what a planner that died mid-plan saved); how many."""
    return conn.execute(delete(ops_t).where(ops_t.c.run_id == run_id)).rowcount or 0


def pending_operations(conn: Connection, run_id: int, limit: int | None = None) -> list[Any]:
    """The run's pending operations in seq order (the first `limit` of them)."""
    return list(conn.execute(_pending_query(limit), {"run_id": run_id}))


@functools.cache
def _pending_query(limit: int | None) -> Any:
    """pending_operations' statement, built once per limit (every claim for execution
    and every small plan's commit reads them; the limits are a couple of constants)."""
    query = (
        select(
            ops_t.c.id,
            ops_t.c.seq,
            ops_t.c.kind,
            ops_t.c.source,
            ops_t.c.destination,
            ops_t.c.detail,
        )
        .where(
            ops_t.c.run_id == bindparam("run_id", type_=ops_t.c.run_id.type),
            ops_t.c.state == "pending",
        )
        .order_by(ops_t.c.seq)
    )
    return query if limit is None else query.limit(limit)


def charge_loss(conn: Connection, run_id: int) -> tuple[int, int] | None:
    """Count a lease loss against the operation that was in flight: the first pending
    one (after a loss the next worker commits operations one at a time until it is
    past the lost batch, so the same operation is first at each loss it causes).
    Returns its (seq, losses so far), or None when nothing is pending."""
    first = conn.execute(
        select(ops_t.c.id, ops_t.c.seq, ops_t.c.lease_losses)
        .where(ops_t.c.run_id == run_id, ops_t.c.state == "pending")
        .order_by(ops_t.c.seq)
        .limit(1)
    ).first()
    if first is None:
        return None
    conn.execute(
        update(ops_t).where(ops_t.c.id == first.id).values(lease_losses=first.lease_losses + 1)
    )
    return int(first.seq), int(first.lease_losses) + 1


def count_operations(conn: Connection, run_id: int, state: str | None = None) -> int:
    query = select(func.count()).select_from(ops_t).where(ops_t.c.run_id == run_id)
    if state is not None:
        query = query.where(ops_t.c.state == state)
    return int(conn.execute(query).scalar_one())


@dataclass(frozen=True, slots=True)
class OperationOutcome:
    """One performed operation's outcome, to be committed with others of its batch."""

    op_id: int
    state: str
    succeeded: bool
    finished_at: int
    message: str
    # The operation's record with its outcome message: the run's log line and the
    # AutomationLog's `message`. None keeps the planned record, and the line is then
    # written as a message row.
    detail: str | None = None


_COMPLETE = (
    update(ops_t)
    .where(
        ops_t.c.id == bindparam("b_id"),
        ops_t.c.run_id == bindparam("b_run"),
        ops_t.c.state == "pending",
    )
    .values(
        state=bindparam("b_state"),
        finished_at=bindparam("b_at"),
        detail=func.coalesce(bindparam("b_detail", type_=ops_t.c.detail.type), ops_t.c.detail),
        logged_after=bindparam("b_after", type_=ops_t.c.logged_after.type),
    )
)


# PostgreSQL: the whole batch in one statement, its rows given as arrays (one statement
# per row, even pipelined, cost about 1 ms each on a busy server).
_BATCH = _rows_as_arrays(
    "b",
    [
        ("b_id", BigInteger),
        ("b_state", Text),
        ("b_at", BigInteger),
        ("b_detail", Text),
        ("b_after", BigInteger),
    ],
)
_COMPLETE_ALL = (
    update(ops_t)
    .where(
        ops_t.c.id == _BATCH.c.b_id,
        ops_t.c.run_id == bindparam("b_run"),
        ops_t.c.state == "pending",
    )
    .values(
        state=_BATCH.c.b_state,
        finished_at=_BATCH.c.b_at,
        detail=func.coalesce(_BATCH.c.b_detail, ops_t.c.detail),
        logged_after=_BATCH.c.b_after,
    )
)


def _complete_rows(
    conn: Connection, run_id: int, outcomes: Sequence[OperationOutcome], after: int | None
) -> int:
    """Mark the batch's operations with their outcomes (each only if still pending);
    returns how many rows changed: on PostgreSQL with one `UPDATE ... FROM unnest(...)`,
    on SQLite (in-process, where a statement costs microseconds) one UPDATE per row."""
    if conn.dialect.name == "postgresql":
        params = {
            "b_run": run_id,
            "b_ids": [o.op_id for o in outcomes],
            "b_states": [o.state for o in outcomes],
            "b_ats": [o.finished_at for o in outcomes],
            "b_details": [o.detail for o in outcomes],
            "b_afters": [None if o.detail is None else after for o in outcomes],
        }
        return int(conn.execute(_COMPLETE_ALL, params).rowcount)
    rows = [
        {
            "b_id": o.op_id,
            "b_run": run_id,
            "b_state": o.state,
            "b_at": o.finished_at,
            "b_detail": o.detail,
            "b_after": None if o.detail is None else after,
        }
        for o in outcomes
    ]
    return int(conn.execute(_COMPLETE, rows).rowcount)


def complete_operations(
    conn: Connection,
    run_id: int,
    worker_id: str,
    token: int,
    lease_until: int,
    outcomes: Sequence[OperationOutcome],
    *,
    hold: bool = True,
) -> AutomationRun:
    """Commit a batch of outcomes: each operation's state and log line (its `detail`
    and `logged_after`, store.run_log) and the run's counts, in the caller's
    transaction.

    Guarded twice: every operation must still be pending, and the worker must
    hold the lease (checked and extended last), so an outcome is never counted
    twice; otherwise LeaseLost, and the caller's transaction rolls back with
    nothing recorded. The lease check is the last statement on purpose: on
    PostgreSQL a transaction left idle right after a pipelined executemany is
    not ended by idle_in_transaction_session_timeout (measured with psycopg 3);
    after a plain statement it is, so a worker stalled before its commit
    cannot hold the run's row lock past half a lease. `hold=False` leaves the lease
    check to the caller, whose transaction must end with its own guarded statement
    (the finish's end_lease) before it commits.
    """
    if not outcomes:
        hold_lease(conn, run_id, worker_id, token, lease_until)
        run = run_store.get_run(conn, run_id)
        assert run is not None
        return run
    # Each outcome's log line is its operation row (detail holds the text), after the
    # run's last message row (store.run_log).
    after = run_log.anchor(conn, run_id)
    if _complete_rows(conn, run_id, outcomes, after) != len(outcomes):
        raise LeaseLost(f"an operation of automation run {run_id} was already recorded")
    succeeded = sum(1 for o in outcomes if o.succeeded)
    run = run_store.count_outcomes(conn, run_id, succeeded, len(outcomes) - succeeded)
    # An outcome without its record (detail) keeps its line as a message row.
    bare = [o for o in outcomes if o.detail is None]
    if bare:
        conn.execute(
            messages_t.insert(),
            [
                {
                    "run_id": run_id,
                    "created_at": o.finished_at,
                    "level": (MessageLevel.INFO if o.succeeded else MessageLevel.ERROR).value,
                    "message": o.message,
                }
                for o in bare
            ],
        )
    if hold:
        hold_lease(conn, run_id, worker_id, token, lease_until)
    return run


def cancel_requested(conn: Connection, run_id: int) -> bool:
    """Whether the run's cancel was requested: one primary-key read, for a worker whose
    batch commits (which read it for free) come further apart than the batch interval."""
    found = conn.execute(
        select(runs_t.c.cancel_requested_at).where(runs_t.c.id == run_id)
    ).scalar_one_or_none()
    return found is not None


def not_performed(conn: Connection, run_id: int) -> int:
    """How many of the run's operations are still pending: at a finish, those it never
    performed. They are left as they are (docs/data-model.md: an operation still
    `pending` in a finished run was not performed), so finishing a run early costs one
    index range count, not an update of every operation it did not reach."""
    return count_operations(conn, run_id, "pending")


_INSERT_MESSAGES = messages_t.insert()


def insert_messages(
    conn: Connection, run_id: int, now: int, lines: Sequence[tuple[MessageLevel, str]]
) -> None:
    """Append several log lines at once (a plan's listing); the run must not be finished."""
    if lines:
        conn.execute(
            _INSERT_MESSAGES,
            [
                {"run_id": run_id, "created_at": now, "level": level.value, "message": text}
                for level, text in lines
            ],
        )


def abort_run(conn: Connection, run_id: int, now: int, reason: str) -> AutomationRun:
    """Finish the run as `failure` without performing what is left, logging `reason`.

    For runs that must not go on: their automation was deleted or disabled,
    or their workers kept dying. Pending operations stay pending (not performed).
    """
    abandoned = not_performed(conn, run_id)
    suffix = f" {abandoned} planned operations were not performed." if abandoned else ""
    finished = run_store.finish_run(
        conn,
        run_id,
        now,
        planning_failed=True,
        message=reason + suffix,
        level=MessageLevel.ERROR,
    )
    clear_lease(conn, run_id)
    return finished
