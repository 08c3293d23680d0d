"""Pruning expired runs in bounded batches, and what the API shows about expiry.

A batch is one short write transaction: up to N ids of finished runs whose
retention has passed (found through the (automation_id, created_at, id)
index: a run completed before the cutoff was also created before it), then
their rows in every table that references runs, then the runs, taking
them off the chart's per-day counts (run_daily_counts). Nothing
reads or locks more than the batch, so the API and the engine interleave.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Column, Table, delete, select, update
from sqlalchemy.engine import Connection

from conveyor.domain.retention import cutoff, log_expires_at, retention_days
from conveyor.domain.runs import RunStage
from conveyor.store.runs import DAY_US, add_daily_counts
from conveyor.store.schema import automation_runs as runs_t
from conveyor.store.schema import automations as automations_t
from conveyor.store.schema import metadata

FINISHED = RunStage.FINISHED.value


def _children() -> list[tuple[Table, Column[int]]]:
    """Every (table, column) with a foreign key to automation_runs.id: messages,
    operations, and whatever later migrations add."""
    found = []
    for table in metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table is runs_t:
                found.append((table, fk.parent))
    return found


@dataclass(frozen=True, slots=True)
class Policy:
    automation_id: int
    days: int


def policies(conn: Connection, default_days: int) -> list[Policy]:
    """Each automation (deleted ones too: their runs stay until they expire) that expires runs."""
    rows = conn.execute(
        select(automations_t.c.id, automations_t.c.retention_days).order_by(automations_t.c.id)
    )
    out = [Policy(row.id, retention_days(row.retention_days, default_days)) for row in rows]
    return [policy for policy in out if policy.days > 0]


def expired_ids(conn: Connection, policy: Policy, now: int, limit: int) -> list[int]:
    """Up to `limit` finished runs of the automation whose retention has passed, oldest first."""
    before = cutoff(now, policy.days)
    return list(
        conn.execute(
            select(runs_t.c.id)
            .where(
                runs_t.c.automation_id == policy.automation_id,
                runs_t.c.created_at < before,
                runs_t.c.run_stage == FINISHED,
                runs_t.c.completed_at < before,
            )
            .order_by(runs_t.c.created_at, runs_t.c.id)
            .limit(limit)
        ).scalars()
    )


def delete_runs(conn: Connection, ids: Sequence[int]) -> int:
    """Delete the runs and everything that references them; unfinished runs are left alone."""
    if not ids:
        return 0
    finished = list(
        conn.execute(
            select(runs_t.c.id).where(runs_t.c.id.in_(ids), runs_t.c.run_stage == FINISHED)
        ).scalars()
    )
    if not finished:
        return 0
    for table, column in _children():
        conn.execute(delete(table).where(column.in_(finished)))
    deleted = conn.execute(
        delete(runs_t)
        .where(runs_t.c.id.in_(finished), runs_t.c.run_stage == FINISHED)
        .returning(runs_t.c.automation_id, runs_t.c.created_at, runs_t.c.status)
    ).all()
    # The chart's per-day counts lose exactly the deleted runs, in the same transaction.
    gone = Counter((row.automation_id, row.created_at // DAY_US, row.status) for row in deleted)
    add_daily_counts(conn, [(*key, -n) for key, n in sorted(gone.items())])
    return len(deleted)


def prune_batch(conn: Connection, now: int, default_days: int, limit: int) -> int:
    """One batch: at most `limit` expired runs, across automations; returns how many went."""
    ids: list[int] = []
    for policy in policies(conn, default_days):
        ids += expired_ids(conn, policy, now, limit - len(ids))
        if len(ids) >= limit:
            break
    return delete_runs(conn, ids)


@dataclass(frozen=True, slots=True)
class RunRetention:
    completed_at: int | None
    override_days: int | None


def run_retention(conn: Connection, run_id: int) -> RunRetention | None:
    row = conn.execute(
        select(runs_t.c.completed_at, automations_t.c.retention_days)
        .select_from(runs_t.join(automations_t, automations_t.c.id == runs_t.c.automation_id))
        .where(runs_t.c.id == run_id)
    ).first()
    return None if row is None else RunRetention(row.completed_at, row.retention_days)


def get_override(conn: Connection, automation_id: int) -> int | None:
    value = conn.execute(
        select(automations_t.c.retention_days).where(automations_t.c.id == automation_id)
    ).scalar()
    return None if value is None else int(value)


def set_override(conn: Connection, automation_id: int, days: int | None) -> None:
    conn.execute(
        update(automations_t).where(automations_t.c.id == automation_id).values(retention_days=days)
    )


def log_expiry(conn: Connection, run_id: int, default_days: int) -> int | None:
    """`log_expires_at` of a run (microseconds), None while unfinished or kept forever.

    For the web UI and Conveyor's own API; the Files.com-compatible run body
    does not carry it.
    """
    found = run_retention(conn, run_id)
    if found is None:
        return None
    return log_expires_at(found.completed_at, found.override_days, default_days)
