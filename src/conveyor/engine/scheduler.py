"""The scheduler: every pass creates the runs of the schedule slots that came due.

A pass is a constant number of queries whatever the number of automations:
one read finds the automations that are due, changed or never seen (most
passes stop there); then one write transaction reads them again under a
share lock, decides each in Python (`conveyor.domain.schedules.decide`),
inserts the runs with ON CONFLICT DO NOTHING on (automation_id,
schedule_slot) and saves the scheduler's state, in multi-row statements.

Any number of schedulers, in any number of processes on any machines, may
run against one database: the unique index makes a second run for a slot
impossible, so they never duplicate work, they only repeat a cheap check.

The same pass makes the automatic retries that came due (Files.com's
`retry_on_failure_*`; `conveyor.store.retries`), in a transaction of their
own: one probe of a partial index when none is due, and each retry made
exactly once however many schedulers race for it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from conveyor.clock import Clock, to_rfc3339
from conveyor.context import AppContext
from conveyor.domain.automations import Automation
from conveyor.domain.errors import ConveyorError
from conveyor.domain.schedules import (
    Decision,
    ScheduleState,
    decide,
    human_readable_schedule,
    local_iso,
    schedule_of,
)
from conveyor.observability import components
from conveyor.store import outage, retries
from conveyor.store import triggers as store
from conveyor.store.database import Database

log = logging.getLogger("conveyor.scheduler")
T = TypeVar("T")

# PostgreSQL deadlock and serialization failures: the pass is retried from the start.
_RETRYABLE_PGCODES = frozenset({"40P01", "40001"})
_RETRIES = 5
JOIN_TIMEOUT = 30.0
COMPONENT = "scheduler"  # its name in /readyz


@dataclass(frozen=True, slots=True)
class PassResult:
    examined: int  # automations the pass decided on (due, changed or new)
    created: list[int]  # ids of the runs this pass created


def _message(automation: Automation, decision: Decision) -> str:
    assert decision.run_slot is not None
    schedule = schedule_of(automation)
    assert schedule is not None
    text = (
        f"Started by its schedule ({human_readable_schedule(automation)}) for the slot "
        f"{local_iso(decision.run_slot, schedule.zone)} ({to_rfc3339(decision.run_slot)})."
    )
    if decision.caught_up:
        text += (
            " Earlier slots passed while no scheduler was running; only the most recent one runs."
        )
    return text


def _decide_all(
    candidates: list[tuple[Automation, ScheduleState | None]], now: int
) -> tuple[list[store.SlotRun], list[tuple[int, ScheduleState]]]:
    wanted: list[store.SlotRun] = []
    states: list[tuple[int, ScheduleState]] = []
    for automation, state in candidates:
        try:
            decision = decide(automation, state, now)
        except ConveyorError as exc:
            # A stored time zone the machine's tz database no longer knows: skip
            # this automation, keep scheduling the others.
            log.error("automation %s: cannot compute its schedule: %s", automation.id, exc)
            continue
        states.append((automation.id, decision.state))
        if decision.run_slot is not None:
            wanted.append(
                store.SlotRun(
                    automation.id,
                    decision.run_slot,
                    automation.trigger.value,
                    _message(automation, decision),
                    serialized=automation.always_serialize_jobs,
                )
            )
    return wanted, states


def _write(db: Database, work: Callable[[Connection], T]) -> T:
    """`work` in a write transaction, again from the start after a PostgreSQL deadlock
    or serialization failure with another scheduler."""
    for attempt in range(_RETRIES + 1):
        try:
            return db.run_write(work)
        except DBAPIError as exc:
            code = getattr(exc.orig, "sqlstate", None)
            if code not in _RETRYABLE_PGCODES or attempt == _RETRIES:
                raise
            log.info("scheduler pass conflicted with another (%s); retrying", code)
    raise AssertionError("unreachable")


def run_pass(
    db: Database, clock: Clock, on_run_created: Callable[[int], None] | None = None
) -> PassResult:
    """One scheduler pass at `clock.now()`: the due schedule slots, then the due
    automatic retries; returns what it did."""
    now = clock.now()
    with db.read() as conn:
        slots_due = store.any_schedule_candidate(conn, now)
        retries_due = retries.any_due(conn, now)

    def slots(conn: Connection) -> PassResult:
        candidates = store.schedule_candidates(conn, now, lock=True)
        wanted, states = _decide_all(candidates, now)
        created = store.create_slot_runs(conn, now, wanted)
        store.save_schedule_states(conn, now, states)
        return PassResult(len(states), created)

    result = _write(db, slots) if slots_due else PassResult(0, [])
    if retries_due:
        made = _make_retries(db, now)
        result = PassResult(result.examined, result.created + made)
    if on_run_created is not None:
        for run_id in result.created:
            on_run_created(run_id)
    return result


def _make_retries(db: Database, now: int) -> list[int]:
    """The retry runs that came due (a batch at a time), ids of those this pass made."""
    made: list[int] = []
    while True:
        try:
            batch = _write(db, lambda conn: retries.create_due_retries(conn, now))
        except retries.RetryRaced as exc:  # rolled back; the other scheduler made it
            log.info("%s", exc)
            return made
        made += [m.retry_run_id for m in batch if m.retry_run_id is not None]
        if len(batch) < retries.BATCH:
            return made


class Scheduler:
    """Runs passes every `interval` seconds until stopped."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        interval: float,
        on_run_created: Callable[[int], None] | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.interval = interval
        self.on_run_created = on_run_created
        self.stop_event = threading.Event()
        self.passes = 0
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                result = run_pass(self.db, self.clock, self.on_run_created)
                if result.created:
                    log.info("scheduler created %d run(s)", len(result.created))
                components.report(COMPONENT, self, None)
            except Exception as exc:  # a pass must never kill the scheduler; the next one retries
                outage.log_failure(log, "scheduler pass failed", exc)
                components.report(COMPONENT, self, f"its last pass failed ({type(exc).__name__})")
            self.passes += 1
            self.stop_event.wait(self.interval)

    def start(self) -> Scheduler:

        def supervised() -> None:
            # Restarted with backoff should it ever die (conveyor.observability.components).
            components.supervise(COMPONENT, self, self.run, self.stop_event)

        self._thread = threading.Thread(target=supervised, name="scheduler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(JOIN_TIMEOUT)
        components.forget(COMPONENT, self)


def start_scheduler(context: AppContext) -> Callable[[], None]:
    """The app-lifespan service: a scheduler thread in this process."""
    scheduler = Scheduler(
        context.db,
        context.clock,
        context.settings.scheduler_interval,
        # Looked up per call: the engine installs its wakeup after services start.
        lambda run_id: context.on_run_created(run_id),
    )
    scheduler.start()
    return scheduler.stop
