"""A worker: a loop of short named steps (claim, plan or execute, wait) until told to stop."""

from __future__ import annotations

import logging

from conveyor.domain.runs import RunStage
from conveyor.engine.context import EngineContext
from conveyor.engine.executor import execute_run
from conveyor.engine.leases import Claim, claim_next
from conveyor.engine.planner import plan_run
from conveyor.engine.wakeup import Wakeup
from conveyor.store import outage

log = logging.getLogger("conveyor.engine")
# The longest wait between claims while the database is unavailable (seconds).
OUTAGE_MAX_PAUSE = 5.0


class Worker:
    def __init__(self, engine: EngineContext, worker_id: str) -> None:
        self.engine = engine
        self.id = worker_id

    def step(self) -> bool:
        """Claim one run and work its stage; False when there was nothing to claim (or stopping)."""
        if self.engine.stop.is_set():
            return False
        claim = claim_next(self.engine, self.id)
        if claim is None:
            return False
        self.work(claim)
        return True

    def work(self, claim: Claim) -> None:
        try:
            if claim.stage is RunStage.PLANNING:
                plan_run(self.engine, claim)
            else:
                execute_run(self.engine, claim)
        except Exception as exc:
            # Leave the run alone: its lease runs out and another worker takes
            # it over; a run that keeps failing this way ends after
            # max_lease_losses takeovers instead of looping forever.
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
