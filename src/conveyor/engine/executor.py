"""Execution: perform a run's pending operations, commit their outcomes in batches, then finish.

A batch's outcomes commit in one transaction, guarded on the lease: for each
operation its new state, its count and its log line. A batch is committed
when it holds `outcome_batch_size` outcomes or is `outcome_batch_seconds`
old (and COMMIT_SHARE times as old as the last commit took), before an
operation that removes or replaces a file that existed when the run was
planned, and before the worker stops; the last batch commits
with the finish. A worker that dies loses at most its uncommitted batch,
whose operations are still pending and are performed again (every action is
idempotent), so nothing is counted or logged twice.

Fencing: right before a file action that removes or replaces a file the
worker checks that it still holds the lease for the safety margin (its
heartbeat's fence); if not, it stops without acting and notes on the run
what it did not do. After a takeover from a lost lease, outcomes commit one
at a time for the first `outcome_batch_size` operations, so the operation
in flight at a further loss is known (poison detection, leases.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from conveyor.domain import runs as lifecycle
from conveyor.engine import access
from conveyor.engine.context import EngineContext
from conveyor.engine.heartbeat import Heartbeat
from conveyor.engine.leases import Claim, release
from conveyor.engine.operations import (
    Action,
    Fenced,
    Kind,
    Operation,
    Outcome,
    State,
    observe,
    perform,
)
from conveyor.engine.planner import check_automation
from conveyor.store import engine as engine_store
from conveyor.store import run_control
from conveyor.store import runs as run_store
from conveyor.store.engine import LeaseLost, OperationOutcome

log = logging.getLogger("conveyor.engine")
# A batch is committed by age only once it is this many times as old as the last
# commit took: commits then cost at most about a fifth of a run's time.
COMMIT_SHARE = 4
# Between commits, the cancel flag is read once this share of outcome_batch_seconds has
# passed since it was last read (one primary-key read), so a cancel is seen within a
# quarter of the batch interval and the batch it commits with is small.
CANCEL_CHECK_SHARE = 4
# The level of a run's last log line follows its final status.
_LEVELS = {
    lifecycle.RunStatus.SUCCESS: lifecycle.MessageLevel.INFO,
    lifecycle.RunStatus.PARTIAL_FAILURE: lifecycle.MessageLevel.WARNING,
    lifecycle.RunStatus.FAILURE: lifecycle.MessageLevel.ERROR,
}


def _changes_existing(op: Operation) -> bool:
    """Whether performing `op` may remove or replace a file that existed when planned.

    Only such an operation can change what an earlier operation of the same
    batch read or wrote (a copy's source moved away, a destination replaced),
    so that redoing the earlier one after a crash would give another result.
    Everything else only creates what did not exist at planning, or nothing.
    """
    if op.kind is Kind.DELETE:
        return True
    if op.kind is Kind.MOVE:
        return op.action is not Action.SKIP
    return op.kind is Kind.COPY and op.action is Action.OVERWRITE


@dataclass
class _Batch:
    """Outcomes performed but not yet committed, and the folders to fsync before they are."""

    engine: EngineContext
    claim: Claim
    outcomes: list[OperationOutcome] = field(default_factory=list)
    folders: set[str] = field(default_factory=set)
    started: float = 0.0
    first_seq: int = 0
    # True while every operation in the batch is a delete (or a refusal): deletes
    # of distinct files never affect each other, so they share a batch.
    only_deletes: bool = True
    # Operations still to be committed one at a time (after a takeover from a loss).
    careful: int = 0
    # How long the last commit took: a batch waits at least COMMIT_SHARE times that
    # long, so slow commits (a busy disk, a remote database) get fuller batches.
    commit_seconds: float = 0.0
    # Set when a commit found the run's cancel requested (read back by that commit's
    # own UPDATE of the run: no statement of its own), or a check between commits did.
    canceled: bool = False
    # When the cancel flag was last read (monotonic): by the claim, a commit or a check.
    checked: float = field(default_factory=time.monotonic)
    # The run as the last commit left it (its counts), for the finish in the same
    # transaction as the last batch.
    run: lifecycle.AutomationRun | None = None

    def add(self, op: Operation, outcome: Outcome, at: int) -> None:
        if not self.outcomes:
            self.started = time.monotonic()
            self.first_seq = op.seq
        self.only_deletes = self.only_deletes and op.kind in (Kind.DELETE, Kind.REFUSE)
        self.outcomes.append(
            OperationOutcome(
                op.id,
                outcome.state.value,
                outcome.succeeded,
                at,
                outcome.message,
                op.detail(outcome.message),
            )
        )

    def must_commit_before(self, op: Operation) -> bool:
        if not self.outcomes or not _changes_existing(op):
            return False
        return not (op.kind is Kind.DELETE and self.only_deletes)

    def full(self) -> bool:
        settings = self.engine.settings
        if self.careful > 0:
            self.careful -= 1
            return True
        age = settings.outcome_batch_seconds
        if age > 0:
            age = max(age, COMMIT_SHARE * self.commit_seconds)
        return (
            len(self.outcomes) >= settings.outcome_batch_size
            or time.monotonic() - self.started >= age
        )

    def record(self, conn: Connection, *, hold: bool = True) -> None:
        """Commit the outcomes in the caller's transaction (after the files are durable).
        `hold=False`: the caller ends the transaction with its own lease guard."""
        now = self.engine.clock.now()
        run = engine_store.complete_operations(
            conn,
            self.claim.run_id,
            self.claim.worker_id,
            self.claim.token,
            now + self.engine.lease_us,
            self.outcomes,
            hold=hold,
        )
        self.run = run
        self.canceled = run.cancel_requested_at is not None
        self.checked = time.monotonic()
        if self.outcomes:
            self.engine.hooks.in_commit(self.claim.run_id, self.first_seq)

    def cancel_seen(self) -> bool:
        """Whether the run's cancel was requested, as last read. Commits read it for
        free, but they come as far apart as COMMIT_SHARE times a commit's duration;
        once a CANCEL_CHECK_SHARE of `outcome_batch_seconds` has passed since the last
        read, it is read here (one primary-key read), so a cancel waits for at most
        that plus the operation in progress, however slow commits are."""
        interval = self.engine.settings.outcome_batch_seconds / CANCEL_CHECK_SHARE
        if not self.canceled and interval > 0 and time.monotonic() - self.checked >= interval:
            with self.engine.db.read() as conn:
                self.canceled = engine_store.cancel_requested(conn, self.claim.run_id)
            self.checked = time.monotonic()
        return self.canceled

    def sync(self) -> None:
        """With durable writes: fsync the folders of the batch's files before committing."""
        self.engine.storage.sync_folders(self.folders)

    def note_refusals(self) -> None:
        """The lease is gone: note on the run the actions of this batch that were refused
        (their outcomes cannot be recorded any more)."""
        refused = [o.message for o in self.outcomes if o.state == State.FAILED.value]
        _note(self.engine, self.claim, [f"it refused: {text}" for text in refused])

    def flush(self) -> bool:
        """Commit the batch; False if the lease was lost (nothing was recorded)."""
        if not self.outcomes:
            return True
        self.sync()
        started = time.monotonic()
        try:
            self.engine.db.run_write(self.record)
        except LeaseLost:
            log.warning(
                "automation run %s: lease lost; outcomes of %s operations left to the "
                "worker that took over",
                self.claim.run_id,
                len(self.outcomes),
            )
            self.note_refusals()
            return False
        self.commit_seconds = time.monotonic() - started
        self.outcomes = []
        self.only_deletes = True
        return True


def _clear_stale_temps(engine: EngineContext, run_id: int, pending: list[Operation]) -> None:
    """Remove the temp files interrupted attempts of this run's operations left behind.

    A temp file of an operation exists only until its rename, so any left is
    from an attempt that never committed: the operation is pending and will be
    performed again. One listing per destination folder, once per resumption.
    """
    folders = {
        op.destination.rpartition("/")[0]
        for op in pending
        if op.kind in (Kind.COPY, Kind.MOVE) and op.destination is not None
    }
    for folder in sorted(folders):
        engine.storage.clear_temps(folder, f"r{run_id}-o")


def _note(engine: EngineContext, claim: Claim, what: list[str]) -> None:
    """Log on the run what a worker that lost its lease did not do.

    Not an outcome (those are refused by the lease guard): one warning line per
    action it refused, written even after the run finished, so the run's log
    says why nothing happened to the file.
    """
    if not what:
        return
    prefix = (
        f"Worker {claim.worker_id} no longer held the lease (generation {claim.token}) "
        "and did not act"
    )
    lines = [(lifecycle.MessageLevel.WARNING, f"{prefix}: {text}") for text in what]
    try:
        engine.db.run_write(
            lambda conn: engine_store.insert_messages(conn, claim.run_id, engine.clock.now(), lines)
        )
    except Exception:  # the note is best effort: the database may be what failed
        log.exception("automation run %s: could not log what was not done", claim.run_id)


def _fence(
    engine: EngineContext, claim: Claim, heartbeat: Heartbeat
) -> Callable[[Operation], Callable[[], None]]:
    """The check run right before an operation's first destructive file action."""

    def for_operation(op: Operation) -> Callable[[], None]:
        def fence() -> None:
            if not heartbeat.fence():
                raise Fenced(op.seq)
            engine.hooks.before_action(claim.run_id, op.seq)

        return fence

    return for_operation


def execute_run(engine: EngineContext, claim: Claim) -> None:
    """The executing stage for a claimed run."""
    # `places`: the folders this batch's file actions resolved, each once (Storage.folders).
    with engine.heartbeat(claim) as heartbeat, closing(engine.storage.folders()) as places:
        if claim.abort is not None or claim.canceled:
            _abort(engine, claim)
            return
        # A run that waited in the queue re-checks its automation; one already
        # executing (resumed) carries on with what it started.
        if not claim.resumed and check_automation(engine, claim) is None:
            return
        assert claim.loaded is not None
        rows = claim.loaded.pending
        if rows is None:  # more than the claim reads in its transaction
            with engine.db.read() as conn:
                rows = engine_store.pending_operations(conn, claim.run_id)
        pending = [Operation.from_row(row) for row in rows]
        if claim.resumed:
            _clear_stale_temps(engine, claim.run_id, pending)
        batch = _Batch(engine, claim)
        if claim.lost:
            batch.careful = engine.settings.outcome_batch_size
        fence = _fence(engine, claim, heartbeat)
        guard = access.Guard(engine, claim.automation_id, claim.loaded.grants)
        for op in pending:
            if batch.cancel_seen():  # stop at this boundary
                where = f"worker {claim.worker_id} stopped before operation #{op.seq}"
                _cancel(engine, claim, batch, where)
                return
            if engine.stop.is_set():
                if batch.flush():
                    release(engine, claim)
                return
            if heartbeat.lost.is_set():
                log.warning("automation run %s: lease lost; stopping its execution", claim.run_id)
                batch.note_refusals()
                return
            if batch.must_commit_before(op) and not batch.flush():
                return
            if not batch.outcomes:  # each batch re-reads the owner's folder permissions
                guard.refresh()
                places.close()  # and resolves its folders again
            try:
                outcome = guard.check(op) or perform(
                    op,
                    engine.storage,
                    f"r{claim.run_id}-o{op.seq}",
                    batch.folders,
                    fence(op),
                    places,
                )
            except Fenced:
                log.warning(
                    "automation run %s: lease lost before operation %s; nothing done",
                    claim.run_id,
                    op.seq,
                )
                batch.flush()  # refused by the lease guard unless the lease is still ours
                if heartbeat.lost.is_set():  # not merely a failed write: someone else has it
                    _note(engine, claim, [f"#{op.seq}: {op.describe()}."])
                return
            at = engine.clock.now()
            engine.hooks.after_operation(claim.run_id, op.seq)
            batch.add(op, outcome, at)
            if batch.full() and not batch.flush():
                return
        batch.sync()
        try:
            engine.db.run_write(lambda conn: _finish(conn, engine, claim, batch))
        except LeaseLost:
            log.warning("automation run %s: lease lost before finishing", claim.run_id)


def _finish(conn: Connection, engine: EngineContext, claim: Claim, batch: _Batch) -> None:
    """Commit the last batch (if any) and finish the run, in one transaction."""
    now = engine.clock.now()
    if batch.outcomes:
        # Guarded on each operation still pending; the lease is checked by end_lease,
        # this transaction's last statement (whatever it commits, it commits it).
        batch.record(conn, hold=False)
        run = batch.run
    else:
        engine_store.hold_lease(conn, claim.run_id, claim.worker_id, claim.token, now)
        run = run_store.get_run(conn, claim.run_id)
    assert run is not None
    if run.cancel_requested_at is not None:  # asked before the run could finish
        where = f"worker {claim.worker_id} had performed every operation"
        run_control.finish_canceled(conn, claim.run_id, now, where)
        engine_store.end_lease(conn, claim.run_id, claim.worker_id, claim.token)
        return
    status = lifecycle.final_status(run.successful_operations, run.failed_operations)
    message = (
        f"Run finished with status {status.value}: {run.successful_operations} "
        f"operation{'' if run.successful_operations == 1 else 's'} succeeded, "
        f"{run.failed_operations} failed."
    )
    if run.failed_operations:
        # The last line says why, not only how many: the first failure's own line.
        first = run_store.first_error_message(conn, claim.run_id)
        if first is not None:
            message += f" First failure: {first[:500]}"
    run_store.finish_run(
        conn, claim.run_id, now, message=message, level=_LEVELS[status], current=run
    )
    engine_store.end_lease(conn, claim.run_id, claim.worker_id, claim.token)


def _cancel(engine: EngineContext, claim: Claim, batch: _Batch, where: str) -> None:
    """Finish the run as canceled at an operation boundary, committing the batch in
    hand (if any) in the same transaction: one commit from seeing the cancel to the
    run's final state."""
    batch.sync()

    def commit(conn: Connection) -> None:
        now = engine.clock.now()
        if batch.outcomes:
            batch.record(conn)  # guarded on the lease; end_lease below guards the finish
        else:
            engine_store.hold_lease(
                conn, claim.run_id, claim.worker_id, claim.token, now + engine.lease_us
            )
        run_control.finish_canceled(conn, claim.run_id, now, where)
        engine_store.end_lease(conn, claim.run_id, claim.worker_id, claim.token)

    try:
        engine.db.run_write(commit)
    except LeaseLost:
        log.warning("automation run %s: lease lost before it could be canceled", claim.run_id)
        batch.note_refusals()


def _abort(engine: EngineContext, claim: Claim) -> None:
    """End a run whose operation in flight kept losing the lease (`claim.abort`), or
    whose cancel was requested before this worker took it over (`claim.canceled`).

    Before the pending operations are marked not performed, the disk is looked
    at (outside any transaction): an operation whose effect is there (a copy's
    destination with the planned size, a move's or delete's source gone) is
    recorded as done with what was found. The run's temp files are removed.
    """
    reason = claim.abort
    with engine.db.read() as conn:
        pending = [
            Operation.from_row(row) for row in engine_store.pending_operations(conn, claim.run_id)
        ]
    found = [(op, observe(op, engine.storage)) for op in pending]
    _clear_stale_temps(engine, claim.run_id, pending)

    def commit(conn: Connection) -> None:
        now = engine.clock.now()
        engine_store.complete_operations(
            conn,
            claim.run_id,
            claim.worker_id,
            claim.token,
            now + engine.lease_us,
            [
                OperationOutcome(
                    op.id,
                    seen.state.value,
                    seen.succeeded,
                    now,
                    seen.message,
                    op.detail(seen.message),
                )
                for op, seen in found
                if seen is not None
            ],
        )
        if reason is None:  # canceled: the disk decided what the last worker did
            where = (
                f"worker {claim.worker_id} took the run over and stopped it after looking "
                "on disk for what its previous worker did"
            )
            run_control.finish_canceled(conn, claim.run_id, now, where)
            engine_store.clear_lease(conn, claim.run_id)
        else:
            engine_store.abort_run(conn, claim.run_id, now, reason)

    try:
        engine.db.run_write(commit)
    except LeaseLost:
        log.warning("automation run %s: lease lost before it could be ended", claim.run_id)
