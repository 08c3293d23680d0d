"""Execution: perform a run's pending operations one by one, committing each outcome, then finish.

Each outcome commits in one transaction with the run's count, the log line
and the operation's new state, guarded on the lease; a resumed run only sees
the operations still pending, so nothing is counted or logged twice.
"""

from __future__ import annotations

import logging
from functools import partial

from sqlalchemy.engine import Connection

from conveyor.domain import runs as lifecycle
from conveyor.engine.context import EngineContext
from conveyor.engine.leases import Claim, release
from conveyor.engine.operations import Operation, Outcome, perform
from conveyor.engine.planner import check_automation
from conveyor.store import engine as engine_store
from conveyor.store import runs as run_store
from conveyor.store.engine import LeaseLost

log = logging.getLogger("conveyor.engine")
# The level of a run's last log line follows its final status.
_LEVELS = {
    lifecycle.RunStatus.SUCCESS: lifecycle.MessageLevel.INFO,
    lifecycle.RunStatus.PARTIAL_FAILURE: lifecycle.MessageLevel.WARNING,
    lifecycle.RunStatus.FAILURE: lifecycle.MessageLevel.ERROR,
}


def execute_run(engine: EngineContext, claim: Claim) -> None:
    """The executing stage for a claimed run."""
    with engine.heartbeat(claim.run_id, claim.worker_id) as heartbeat:
        # A run that waited in the queue re-checks its automation; one already
        # executing (resumed) carries on with what it started.
        if not claim.resumed and check_automation(engine, claim) is None:
            return
        with engine.db.read() as conn:
            pending = [
                Operation.from_row(row)
                for row in engine_store.pending_operations(conn, claim.run_id)
            ]
        for op in pending:
            if engine.stop.is_set():
                release(engine, claim)
                return
            if heartbeat.lost.is_set():
                log.warning("automation run %s: lease lost; stopping its execution", claim.run_id)
                return
            outcome = perform(op, engine.storage, tag=f"r{claim.run_id}-o{op.seq}")
            engine.hooks.after_operation(claim.run_id, op.seq)
            try:
                engine.db.run_write(
                    partial(_record, engine=engine, claim=claim, op=op, outcome=outcome)
                )
            except LeaseLost:
                log.warning(
                    "automation run %s: lease lost; outcome of operation %s left to "
                    "the worker that took over",
                    claim.run_id,
                    op.seq,
                )
                return
        try:
            engine.db.run_write(lambda conn: _finish(conn, engine, claim))
        except LeaseLost:
            log.warning("automation run %s: lease lost before finishing", claim.run_id)


def _record(
    conn: Connection, *, engine: EngineContext, claim: Claim, op: Operation, outcome: Outcome
) -> None:
    now = engine.clock.now()
    engine_store.complete_operation(
        conn,
        claim.run_id,
        op.id,
        claim.worker_id,
        now + engine.lease_us,
        state=outcome.state.value,
        succeeded=outcome.succeeded,
        now=now,
        message=outcome.message,
    )


def _finish(conn: Connection, engine: EngineContext, claim: Claim) -> None:
    now = engine.clock.now()
    run = run_store.get_run(conn, claim.run_id)
    assert run is not None
    status = lifecycle.final_status(run.successful_operations, run.failed_operations)
    message = (
        f"Run finished with status {status.value}: {run.successful_operations} "
        f"operation{'' if run.successful_operations == 1 else 's'} succeeded, "
        f"{run.failed_operations} failed."
    )
    run_store.finish_run(conn, claim.run_id, now, message=message, level=_LEVELS[status])
    engine_store.end_lease(conn, claim.run_id, claim.worker_id)
