"""Claims as leases: taking a run from the queue or from a dead worker, and giving it back.

A claim is one write transaction: find the oldest claimable run, move it
into its working stage through the lifecycle, write the lease and a log
line. A run whose lease ran out is taken over, and the loss counted; past
`max_lease_losses` takeovers the run is finished as `failure` instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from conveyor.domain.runs import MessageLevel, RunStage
from conveyor.engine.context import EngineContext
from conveyor.observability import runevents
from conveyor.store import engine as engine_store
from conveyor.store import runs as run_store

log = logging.getLogger("conveyor.engine")


@dataclass(frozen=True, slots=True)
class Claim:
    run_id: int
    automation_id: int
    stage: RunStage  # PLANNING or EXECUTING
    worker_id: str
    # True when the run was taken over or resumed rather than taken from a queue.
    resumed: bool


def _ops(count: int) -> str:
    return "1 operation" if count == 1 else f"{count} operations"


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
            run_store.advance_stage(conn, found.id, stage)
            engine_store.take_lease(conn, found, worker_id, now, until, stage=stage, lost=False)
            if stage is RunStage.PLANNING:
                text = f"Planning started (worker {worker_id})."
            else:
                pending = engine_store.count_operations(conn, found.id, "pending")
                text = f"Execution started (worker {worker_id}): {_ops(pending)} to perform."
            engine_store.insert_messages(conn, found.id, now, [(MessageLevel.INFO, text)])
            return Claim(found.id, found.automation_id, stage, worker_id, resumed=False)

        lost = found.lease_owner is not None
        losses = found.lease_losses + (1 if lost else 0)
        engine_store.take_lease(
            conn, found, worker_id, now, until, stage=found.run_stage, lost=lost
        )
        if lost:
            runevents.lease_lost(conn)
        if lost and losses > limit:
            engine_store.abort_run(
                conn,
                found.id,
                now,
                f"Run failed: the lease of worker {found.lease_owner} ran out during "
                f"{found.run_stage.value}; that is lease loss {losses}, more than the "
                f"{limit} takeovers allowed (CONVEYOR_MAX_LEASE_LOSSES), so the run is "
                "not retried again.",
            )
            continue
        if found.run_stage is RunStage.PLANNING:
            rest = "plans again from scratch (nothing of the earlier plan was saved)"
        else:
            pending = engine_store.count_operations(conn, found.id, "pending")
            rest = f"resumes with the {_ops(pending)} not yet done"
        if lost:
            text = (
                f"The lease of worker {found.lease_owner} ran out during "
                f"{found.run_stage.value} (lease loss {losses} of at most {limit}); "
                f"worker {worker_id} takes over and {rest}."
            )
        else:
            text = f"Worker {worker_id} picks up the run its previous worker released and {rest}."
        level = MessageLevel.WARNING if lost else MessageLevel.INFO
        engine_store.insert_messages(conn, found.id, now, [(level, text)])
        return Claim(found.id, found.automation_id, found.run_stage, worker_id, resumed=True)


def release(engine: EngineContext, claim: Claim) -> None:
    """Hand an unfinished run back (the worker is stopping); the next claim is not a loss."""
    try:
        engine.db.run_write(
            lambda conn: engine_store.release_lease(conn, claim.run_id, claim.worker_id)
        )
    except SQLAlchemyError:
        log.exception("could not release automation run %s; its lease will expire", claim.run_id)
