"""Metrics and a JSON log line for every run transition, emitted when its transaction commits.

`conveyor.store.runs` calls its observers with (conn, before, after, extra)
for each run it creates or changes, inside the writer's transaction. What
they note is held on the connection and emitted by the engine-wide `commit`
event, or dropped by `rollback`, so a transaction retried after a lock or a
lost lease is counted once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import bindparam, event, select
from sqlalchemy.engine import Connection, Engine

from conveyor.domain.runs import AutomationRun, RunStage
from conveyor.observability import metrics
from conveyor.store import runs as runs_store
from conveyor.store.schema import automation_runs as runs_t

log = logging.getLogger("conveyor.runs")
_PENDING = "conveyor_after_commit"
_installed = False


def on_commit(conn: Connection, action: Callable[[], None]) -> None:
    """Run `action` when `conn`'s transaction commits; forget it if it rolls back."""
    conn.info.setdefault(_PENDING, []).append(action)


def _committed(conn: Connection) -> None:
    actions = conn.info.pop(_PENDING, None)
    if actions:
        for action in actions:
            try:
                action()
            except Exception:  # reporting must never fail a commit
                log.exception("could not record a run event")


def _rolled_back(conn: Connection) -> None:
    # An invalidated connection (lost to a disconnect) took its info, and the
    # actions noted in it, with it; reading it would raise over the real error.
    if not conn.invalidated:
        conn.info.pop(_PENDING, None)


def _seconds(start: int | None, end: int | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start) / 1_000_000)


def _log_stage(run: AutomationRun, trigger: str | None = None) -> None:
    extra: dict[str, Any] = {
        "run_id": run.id,
        "automation_id": run.automation_id,
        "stage": run.run_stage.value,
        "status": run.status.value,
    }
    if trigger is not None:
        extra["trigger"] = trigger
    if run.finished:
        extra["successful_operations"] = run.successful_operations
        extra["failed_operations"] = run.failed_operations
    log.info("automation run %s: %s", run.id, run.run_stage.value, extra=extra)


# Built once: every run's finish reads them.
_STAGE_STAMPS = select(
    runs_t.c.planning_at, runs_t.c.queued_for_execution_at, runs_t.c.executing_at
).where(runs_t.c.id == bindparam("run_id", type_=runs_t.c.id.type))


def observe(
    conn: Connection, before: AutomationRun | None, after: AutomationRun, extra: dict[str, Any]
) -> None:
    """The store's observer: decide what to report now, report it on commit."""
    if before is None:
        trigger = str(extra.get("trigger") or "manual")
        lag = (
            _seconds(after.runtime, after.created_at) if after.runtime < after.created_at else None
        )

        def created() -> None:
            metrics.RUNS_CREATED.labels(trigger).inc()
            if lag is not None:
                metrics.SCHEDULER_LAG.observe(lag)
            if log.isEnabledFor(logging.INFO):
                _log_stage(after, trigger)

        on_commit(conn, created)
        return
    ok = after.successful_operations - before.successful_operations
    failed = after.failed_operations - before.failed_operations
    stage_changed = after.run_stage is not before.run_stage
    waits: dict[str, float | None] = {}
    duration = None
    if stage_changed and after.finished:
        duration = _seconds(after.created_at, after.completed_at)
        row = conn.execute(_STAGE_STAMPS, {"run_id": after.id}).first()
        if row is not None:
            waits["planning"] = _seconds(after.created_at, row.planning_at)
            waits["execution"] = _seconds(row.queued_for_execution_at, row.executing_at)

    def changed() -> None:
        if ok > 0:
            metrics.OPERATIONS.labels("success").inc(ok)
        if failed > 0:
            metrics.OPERATIONS.labels("failure").inc(failed)
        if stage_changed:
            if after.run_stage is RunStage.FINISHED:
                metrics.RUNS_FINISHED.labels(after.status.value).inc()
                if duration is not None:
                    metrics.RUN_DURATION.observe(duration)
                for queue, wait in waits.items():
                    if wait is not None:
                        metrics.QUEUE_WAIT.labels(queue).observe(wait)
            if log.isEnabledFor(logging.INFO):
                _log_stage(after)

    on_commit(conn, changed)


def lease_lost(conn: Connection) -> None:
    """Count a lease that ran out under its worker, when the takeover commits."""
    on_commit(conn, metrics.LEASE_LOSSES.inc)


def install() -> None:
    """Hook into every database engine and the run store; once per process."""
    global _installed
    if _installed:
        return
    event.listen(Engine, "commit", _committed)
    event.listen(Engine, "rollback", _rolled_back)
    runs_store.RUN_OBSERVERS.append(observe)
    _installed = True
