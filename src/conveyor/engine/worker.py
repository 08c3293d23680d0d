"""A worker: a loop of short named steps (claim, plan or execute, wait) until told to stop."""

from __future__ import annotations

import logging

from sqlalchemy.engine import Connection

from conveyor.domain.runs import MessageLevel, RunStage
from conveyor.engine.context import EngineContext
from conveyor.engine.executor import execute_run
from conveyor.engine.leases import Claim, claim_next, release
from conveyor.engine.planner import describe_error, plan_run
from conveyor.engine.wakeup import Wakeup
from conveyor.store import engine as engine_store
from conveyor.store import outage

log = logging.getLogger("conveyor.engine")
# The longest wait between claims while the database is unavailable (seconds).
OUTAGE_MAX_PAUSE = 5.0


class Worker:
    def __init__(self, engine: EngineContext, worker_id: str, *, hand_off: bool = True) -> None:
        """`hand_off`: a plan committed in one transaction moves its run on to executing
        under the same lease, for this worker's next step (False: every plan queues its
        run for execution, as a plan over PLAN_CHUNK operations always does)."""
        self.engine = engine
        self.id = worker_id
        self.hand_off = hand_off
        # The execution this worker's last plan moved its run on to, under the same
        # lease (planner._start_execution): the next step works it without a claim.
        self.next: Claim | None = None

    def step(self) -> bool:
        """Claim one run (or take the one its last plan handed on) and work its stage;
        False when there was nothing to claim (or stopping)."""
        if self.engine.stop.is_set():
            self.hand_back()
            return False
        claim, self.next = self.next, None
        if claim is None:
            claim = claim_next(self.engine, self.id)
        if claim is None:
            return False
        self.work(claim)
        return True

    def work(self, claim: Claim) -> None:
        try:
            if claim.stage is RunStage.PLANNING:
                self.next = plan_run(self.engine, claim, hand_off=self.hand_off)
            else:
                execute_run(self.engine, claim)
        except Exception as exc:
            # Leave the run alone: its lease runs out and another worker takes
            # it over; a run that keeps failing this way ends after
            # max_lease_losses takeovers instead of looping forever. Its log
            # says what happened each time (but a database outage, which it
            # could not record, only in the server's log).
            why = outage.reason(exc)
            if why is not None:  # not the run's fault: one line, no stack
                log.warning(
                    "worker %s: automation run %s interrupted in %s: %s",
                    self.id,
                    claim.run_id,
                    claim.stage.value,
                    why,
                )
                return
            log.exception(
                "worker %s: automation run %s failed unexpectedly in %s",
                self.id,
                claim.run_id,
                claim.stage.value,
            )
            self._note_failure(claim, exc)

    def _note_failure(self, claim: Claim, exc: Exception) -> None:
        text = (
            f"Worker {self.id} stopped working on the run during {claim.stage.value}: "
            f"{describe_error(exc)}; another worker takes over when its lease runs out."
        )

        def note(conn: Connection) -> None:
            now = self.engine.clock.now()
            engine_store.insert_messages(conn, claim.run_id, now, [(MessageLevel.ERROR, text)])

        try:
            self.engine.db.run_write(note)
        except Exception:  # the database may be what failed: the server log has it
            log.warning("automation run %s: could not log the failure", claim.run_id)

    def drain(self) -> int:
        """Work until nothing is claimable; returns how many steps did work (for tests)."""
        steps = 0
        while self.step():
            steps += 1
        return steps

    def run(self, wakeup: Wakeup) -> None:
        """The loop: claim while there is work, then sleep until woken or the poll interval."""
        stop = self.engine.stop
        poll = self.engine.settings.poll_interval
        pause = poll
        while not stop.is_set():
            wakeup.clear()
            try:
                worked = self.step()
                pause = poll
            except Exception as exc:
                # Never let the thread die; try again later. While the database is
                # unavailable, back off (up to OUTAGE_MAX_PAUSE) and log one line per try.
                why = outage.reason(exc)
                if why is not None:
                    log.warning("worker %s: %s; retrying in %.1f s", self.id, why, pause)
                    stop.wait(pause)
                    pause = min(pause * 2, max(poll, OUTAGE_MAX_PAUSE))
                    continue
                log.exception(
                    "worker %s: claiming failed; retrying after the poll interval", self.id
                )
                worked = False
            if not worked and not stop.is_set():
                wakeup.wait(poll)
        self.hand_back()

    def hand_back(self) -> None:
        """Release the run a plan handed on for execution, if the stop came before this
        worker's next step: the next claim resumes it at once, with no lease loss (left
        held, it would wait for its lease to run out and be counted as lost)."""
        claim, self.next = self.next, None
        if claim is not None:
            release(self.engine, claim)
