"""Claims as leases: taking a run from the queue or from a dead worker, and giving it back.

A claim is one write transaction: find the oldest claimable run, move it
into its working stage through the lifecycle, write the lease (with the next
lease generation, the claim's fencing token) and a log line. A run whose
lease ran out is taken over, and the loss counted against what was in
flight: the plan (planning) or the first pending operation (executing).
When that has been in flight at more than `max_lease_losses` losses, the run
is to be finished as `failure`: at once in planning; in executing by the
claiming worker after it looked at the disk (`Claim.abort`), since a file
action may have happened that was never recorded.

The claim's transaction also reads what the stage starts from (`Loaded`): the
automation and its owner's grants, and the run and its trigger's input
(planning) or its pending operations (executing), so a worker needs no read
transaction of its own before it plans or executes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from conveyor.domain.automations import Automation
from conveyor.domain.permissions import Grant
from conveyor.domain.runs import AutomationRun, MessageLevel, RunStage
from conveyor.engine.context import EngineContext
from conveyor.observability import runevents
from conveyor.store import automations as automation_store
from conveyor.store import engine as engine_store
from conveyor.store import permissions as permission_store
from conveyor.store import run_control
from conveyor.store import runs as run_store
from conveyor.store import triggers as trigger_store

log = logging.getLogger("conveyor.engine")
# The most pending operations a claim for execution reads in its own transaction;
# a larger run's are read after it, so the claim holds SQLite's write lock briefly.
CLAIM_READS_OPERATIONS = 2000


@dataclass(frozen=True, slots=True)
class Loaded:
    """What a stage starts from, read in the claim's transaction."""

    automation: Automation | None  # deleted or disabled ones too: the stage checks
    grants: list[Grant] | None  # the owner's (None: an admin's, unrestricted)
    run: AutomationRun | None = None  # planning
    inputs: tuple[str, dict[str, Any]] | None = None  # planning: the trigger's input
    scope: run_control.RerunScope | None = None  # planning: what a partial rerun keeps
    # executing: the pending operations' rows in seq order; None when there are more
    # than CLAIM_READS_OPERATIONS (the executor reads them itself).
    pending: list[Any] | None = None


def load(
    conn: Connection,
    run_id: int,
    automation_id: int,
    stage: RunStage,
    run: AutomationRun | None = None,
) -> Loaded:
    """`run`: the run as this transaction just wrote it (planning; else it is read)."""
    automation = automation_store.get_automation(conn, automation_id)
    grants = (
        permission_store.grants_for_user(conn, automation.user_id) if automation is not None else []
    )
    if stage is RunStage.PLANNING:
        if run is None:
            run = run_store.get_run(conn, run_id)
        rerun = run is not None and run.rerun_of_run_id is not None
        return Loaded(
            automation,
            grants,
            run=run,
            inputs=trigger_store.run_input(conn, run_id),
            scope=run_control.rerun_scope(conn, run_id) if rerun else None,
        )
    rows = engine_store.pending_operations(conn, run_id, limit=CLAIM_READS_OPERATIONS + 1)
    return Loaded(automation, grants, pending=rows if len(rows) <= CLAIM_READS_OPERATIONS else None)


def _pending_count(conn: Connection, run_id: int, loaded: Loaded) -> int:
    if loaded.pending is not None:
        return len(loaded.pending)
    return engine_store.count_operations(conn, run_id, "pending")


@dataclass(frozen=True, slots=True)
class Claim:
    run_id: int
    automation_id: int
    stage: RunStage  # PLANNING or EXECUTING
    worker_id: str
    # True when the run was taken over or resumed rather than taken from a queue.
    resumed: bool
    # The lease generation this claim wrote: every write for the run is guarded on it.
    token: int = 0
    # True when the run was taken over from a worker whose lease ran out.
    lost: bool = False
    # Set when the run must end instead (poison): the reason for its last log line.
    abort: str | None = None
    # When the lease this claim wrote runs out (engine clock, microseconds).
    expires_at: int = 0
    # True when the run's cancel was requested before this worker took it over:
    # it is to be finished as canceled after a look at the disk (executor._abort).
    canceled: bool = False
    # What the stage starts from, read in the claim's transaction (None: an abort claim).
    loaded: Loaded | None = None


def _ops(count: int) -> str:
    return "1 operation" if count == 1 else f"{count} operations"


def execution_started(worker_id: str, pending: int) -> str:
    """The log line of a claim for execution (or of a plan that goes on executing)."""
    return f"Execution started (worker {worker_id}): {_ops(pending)} to perform."


def claim_next(engine: EngineContext, worker_id: str) -> Claim | None:
    """Claim the oldest run that needs a worker, or None when there is no work."""
    return engine.db.run_write(lambda conn: _claim(conn, engine, worker_id))


def _claim(conn: Connection, engine: EngineContext, worker_id: str) -> Claim | None:
    limit = engine.settings.max_lease_losses
    while True:
        now = engine.clock.now()
        found = engine_store.next_candidate(conn, now)
        if found is None:
            return None
        until = now + engine.lease_us
        if found.run_stage in engine_store.QUEUED:
            stage = (
                RunStage.PLANNING
                if found.run_stage is RunStage.QUEUED_FOR_PLANNING
                else RunStage.EXECUTING
            )
            run = run_store.advance_stage(conn, found.id, stage, current=found.run)
            token = engine_store.take_lease(
                conn, found, worker_id, now, until, stage=stage, lost=False
            )
            loaded = load(conn, found.id, found.automation_id, stage, run)
            if stage is RunStage.PLANNING:
                text = f"Planning started (worker {worker_id})."
            else:
                pending = _pending_count(conn, found.id, loaded)
                text = execution_started(worker_id, pending)
            engine_store.insert_messages(conn, found.id, now, [(MessageLevel.INFO, text)])
            return Claim(
                found.id,
                found.automation_id,
                stage,
                worker_id,
                resumed=False,
                token=token,
                expires_at=until,
                loaded=loaded,
            )

        lost = found.lease_owner is not None
        token = engine_store.take_lease(
            conn, found, worker_id, now, until, stage=found.run_stage, lost=lost
        )
        # The claim of a run taken over, or picked up after a release; each way out
        # below adds what it found.
        resumed = Claim(
            found.id,
            found.automation_id,
            found.run_stage,
            worker_id,
            resumed=True,
            token=token,
            lost=lost,
            expires_at=until,
        )
        executing = found.run_stage is RunStage.EXECUTING
        in_flight = ""
        if lost:
            runevents.lease_lost(conn)
        if found.cancel_requested_at is not None:  # a cancel its last worker did not honour
            if not executing:  # nothing was done on disk: drop what the planner saved
                engine_store.discard_operations(conn, found.id)
                where = f"worker {worker_id} took the run over during planning and stopped it"
                run_control.finish_canceled(conn, found.id, now, where)
                engine_store.clear_lease(conn, found.id)
                continue
            return replace(resumed, canceled=True)
        if lost:
            # What was in flight: the plan, or the first pending operation. A whole
            # process restart (every run it held loses its lease) charges each run's
            # operation in hand, which differs from one restart to the next while
            # the run makes progress; only a run that keeps killing its worker at
            # the same point exhausts the budget.
            if executing:
                charged = engine_store.charge_loss(conn, found.id)
                seq, at = charged if charged is not None else (0, 0)
                culprit = f"operation #{seq}"
                in_flight = (
                    f"operation #{seq} was in flight at {at} of at most {limit} lease losses"
                    if charged is not None
                    else "no operation was in flight"
                )
            else:
                at = found.lease_losses + 1
                culprit = "the planning"
                in_flight = f"lease loss {at} of at most {limit}"
            if at > limit:
                reason = (
                    f"Run failed: the lease of worker {found.lease_owner} ran out during "
                    f"{found.run_stage.value}; {culprit} was in flight at {at} lease losses, "
                    f"more than the {limit} takeovers allowed (CONVEYOR_MAX_LEASE_LOSSES), so "
                    "the run is not retried again."
                )
                if not executing:
                    engine_store.abort_run(conn, found.id, now, reason)
                    continue
                # Finished by the claiming worker after it looked at the disk.
                return replace(resumed, abort=reason)
        loaded = load(conn, found.id, found.automation_id, found.run_stage)
        if not executing:
            rest = "plans again from scratch (nothing of the earlier plan was saved)"
        else:
            pending = _pending_count(conn, found.id, loaded)
            rest = f"resumes with the {_ops(pending)} not yet done"
        if lost:
            # How long after its expiry the lease was taken over: the takeover delay.
            expired = found.lease_expires_at
            late = f" {(now - expired) / 1e6:.1f} s ago" if expired is not None else ""
            text = (
                f"The lease of worker {found.lease_owner} ran out{late} during "
                f"{found.run_stage.value} ({in_flight}); worker {worker_id} takes over "
                f"and {rest}."
            )
        else:
            text = f"Worker {worker_id} picks up the run its previous worker released and {rest}."
        level = MessageLevel.WARNING if lost else MessageLevel.INFO
        engine_store.insert_messages(conn, found.id, now, [(level, text)])
        return replace(resumed, loaded=loaded)


def release(engine: EngineContext, claim: Claim) -> None:
    """Hand an unfinished run back (the worker is stopping); the next claim is not a loss."""
    try:
        engine.db.run_write(
            lambda conn: engine_store.release_lease(
                conn, claim.run_id, claim.worker_id, claim.token
            )
        )
    except SQLAlchemyError:
        log.exception("could not release automation run %s; its lease will expire", claim.run_id)
