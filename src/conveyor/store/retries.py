"""Automatic retries (Files.com's `retry_on_failure_*`): the scheduler's half.

A run that ends `failure` or `partial_failure` with retries left gets its
`retry_at` in the transaction that finishes it (`store.runs.finish_run`).
When that time has come, a scheduler pass calls `create_due_retries`, which
makes the retry run and links the two, both ways, in one transaction:

- the new run, made by `store.runs.create_run` (per-day counts, observers,
  the engine's wake-up) with `retry_of_run_id` = the failed run, the next
  `retry_attempt`, the failed run's `runtime`, trigger and trigger inputs;
- the failed run's `retried_at` and `retried_in_run_id`, written by an
  UPDATE guarded on `retried_in_run_id IS NULL`.

Exactly once per attempt, with any number of schedulers: the due runs are
read locked (PostgreSQL: FOR UPDATE SKIP LOCKED, so concurrent passes share
the backlog instead of queueing on it; SQLite: the pass's BEGIN IMMEDIATE),
and the guarded UPDATE is the final word: if it matches no row, another pass
linked the run first, and this transaction, its new run included, rolls back.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.engine import Connection

from conveyor.clock import to_rfc3339
from conveyor.domain.runs import MessageLevel, retry_allowed
from conveyor.store import runs as run_store
from conveyor.store import triggers
from conveyor.store.schema import automation_runs as runs_t
from conveyor.store.schema import automations as automations_t
from conveyor.store.schema import run_messages as messages_t

# Due retries one pass makes in one transaction; the rest wait for the next pass.
BATCH = 500


class RetryRaced(Exception):
    """Another scheduler linked this failed run first; the transaction must roll back."""


@dataclass(frozen=True, slots=True)
class RetryMade:
    failed_run_id: int
    retry_run_id: int | None  # None: abandoned (automation disabled, deleted or retries off)


def _due(now: int) -> tuple[ColumnElement[bool], ...]:
    # The predicate of ix_runs_retry_due, so the planner can use the partial index.
    return (
        runs_t.c.retry_at.is_not(None),
        runs_t.c.retried_in_run_id.is_(None),
        runs_t.c.retry_at <= now,
    )


def any_due(conn: Connection, now: int) -> bool:
    """Is any retry due? One probe of the partial index: most passes stop here."""
    return conn.execute(select(runs_t.c.id).where(*_due(now)).limit(1)).first() is not None


def create_due_retries(conn: Connection, now: int, limit: int = BATCH) -> list[RetryMade]:
    """Make the retry run of every run whose `retry_at` has come (oldest first, at most
    `limit`), in the caller's transaction; see the module docstring."""
    a = automations_t.c
    query = (
        select(
            runs_t.c.id,
            runs_t.c.automation_id,
            runs_t.c.runtime,
            runs_t.c.trigger,
            runs_t.c.status,
            runs_t.c.completed_at,
            runs_t.c.retry_attempt,
            a.disabled,
            a.deleted,
            a.retry_on_failure_number_of_attempts,
            a.retry_on_failure_interval_in_minutes,
        )
        .select_from(runs_t.join(automations_t, a.id == runs_t.c.automation_id))
        .where(*_due(now))
        .order_by(runs_t.c.retry_at, runs_t.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=runs_t)
    made: list[RetryMade] = []
    for row in conn.execute(query).all():
        attempt = int(row.retry_attempt) + 1
        attempts = row.retry_on_failure_number_of_attempts
        if not retry_allowed(
            attempt - 1, attempts, disabled=bool(row.disabled), deleted=bool(row.deleted)
        ):
            # Retries were turned off (or the automation disabled or deleted) since the
            # run failed: it will not be retried, and says so by losing its retry_at.
            _link(conn, row.id, values={"retry_at": None})
            made.append(RetryMade(row.id, None))
            continue
        retry = run_store.create_run(
            conn,
            row.automation_id,
            now,
            row.runtime,
            trigger=row.trigger,
            retry_of_run_id=row.id,
            retry_attempt=attempt,
        )
        triggers.copy_run_input(conn, row.id, retry.id)
        text = (
            f"Retry {attempt} of {attempts} of automation run {row.id}, which ended "
            f"{row.status} at {to_rfc3339(row.completed_at)}; planned from scratch."
        )
        conn.execute(
            messages_t.insert().values(
                run_id=retry.id, created_at=now, level=MessageLevel.INFO.value, message=text
            )
        )
        link_retry(conn, row.id, retry.id, now)
        made.append(RetryMade(row.id, retry.id))
    return made


def link_retry(conn: Connection, run_id: int, retry_run_id: int, now: int) -> None:
    """The failed run's side of the link: `retried_at`, `retried_in_run_id`; RetryRaced
    (roll back) if another retry was linked to it first."""
    _link(conn, run_id, values={"retried_at": now, "retried_in_run_id": retry_run_id})


def _link(conn: Connection, run_id: int, *, values: dict[str, object]) -> None:
    """Write the failed run's side of the retry, guarded: only while no retry is linked."""
    result = conn.execute(
        update(runs_t)
        .where(runs_t.c.id == run_id, runs_t.c.retried_in_run_id.is_(None))
        .values(**values)
    )
    if result.rowcount != 1:
        raise RetryRaced(f"automation run {run_id} was retried by another scheduler")
