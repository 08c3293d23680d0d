"""Move a run through its whole lifecycle from a background thread while a test follows its log.

The steps call the store's lifecycle functions (`advance_stage`,
`append_message`, `record_operation`, `finish_run`), the same ones the engine
calls, each in its own write transaction. After each step that writes log
lines the driver waits until the follower under test has shown them, so a
follower that only printed the log once the run was over would fail, as
would one that repeats or drops a line.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable

from sqlalchemy.engine import Connection

from conveyor.clock import Clock, SystemClock
from conveyor.domain.runs import MessageLevel, RunStage
from conveyor.store import runs
from conveyor.store.database import Database

__all__ = ["LIVE_RUN_LOG", "LOG_LINE", "LiveRunDriver", "ObservedLines", "log_entries"]

# One line of a run's plain-text log, as the status-messages endpoint renders it.
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \[(info|warning|error)\] (.*)")

# The (level, text) of each line the driver logs, in order.
LIVE_RUN_LOG: tuple[tuple[str, str], ...] = (
    ("info", "Planning: 3 folders to create under reports/"),
    ("info", "Planned 3 operations"),
    ("info", "Created folder reports/2024"),
    ("error", "Could not create folder reports/locked: permission denied"),
    ("info", "Created folder reports/archive"),
    ("warning", "Run finished with status partial_failure: 2 operations succeeded, 1 failed."),
)


def log_entries(lines: Iterable[str]) -> list[tuple[str, str]]:
    """(level, text) of each log line; a line not in the log's format fails the test."""
    found = []
    for line in lines:
        matched = LOG_LINE.fullmatch(line)
        assert matched is not None, f"not a log line: {line!r}"
        found.append((matched.group(1), matched.group(2)))
    return found


class ObservedLines:
    """The lines a follower has shown so far, shared between the test and the driver thread."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._changed = threading.Condition()

    def add(self, line: str) -> None:
        with self._changed:
            self._lines.append(line)
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        """Whether `count` lines were shown within `timeout` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self._lines) >= count, timeout)

    @property
    def lines(self) -> list[str]:
        with self._changed:
            return list(self._lines)


class LiveRunDriver(threading.Thread):
    """Drives run `run_id` (queued_for_planning) to finished, logging LIVE_RUN_LOG.

    `timeout` bounds each wait for the follower (a guard against a hang, not a
    timing assertion). Whatever happens, the run ends finished, so the
    follower under test can stop; `error` then says what went wrong.
    """

    def __init__(
        self,
        db: Database,
        run_id: int,
        observed: ObservedLines,
        *,
        clock: Clock | None = None,
        timeout: float = 60.0,
    ) -> None:
        super().__init__(name=f"live-run-{run_id}", daemon=True)
        self.db = db
        self.run_id = run_id
        self.observed = observed
        self.clock = clock or SystemClock()
        self.timeout = timeout
        self.logged = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        run_id = self.run_id
        try:
            # A stage change with nothing logged: the follower keeps polling.
            self._step(lambda conn, now: runs.advance_stage(conn, run_id, RunStage.PLANNING))
            self._step(lambda conn, now: runs.append_message(conn, run_id, now, _text(0)), lines=1)
            self._step(lambda conn, now: runs.append_message(conn, run_id, now, _text(1)), lines=1)
            self._step(
                lambda conn, now: runs.advance_stage(conn, run_id, RunStage.QUEUED_FOR_EXECUTION)
            )
            self._step(lambda conn, now: runs.advance_stage(conn, run_id, RunStage.EXECUTING))
            self._step(
                lambda conn, now: runs.record_operation(conn, run_id, True, now, _text(2)), lines=1
            )
            # Two outcomes in two transactions with no wait between them: they
            # may reach the follower in one poll and must still show once each.
            self._step(lambda conn, now: runs.record_operation(conn, run_id, False, now, _text(3)))
            self._step(
                lambda conn, now: runs.record_operation(conn, run_id, True, now, _text(4)), lines=2
            )
            self._step(
                lambda conn, now: runs.finish_run(
                    conn, run_id, now, message=_text(5), level=MessageLevel.WARNING
                ),
                lines=1,
            )
        except BaseException as exc:  # reported to the test through `error`
            self.error = exc
            self._finish_anyway()

    def _step(self, write: Callable[[Connection, int], object], lines: int = 0) -> None:
        with self.db.write() as conn:
            write(conn, self.clock.now())
        self.logged += lines
        if lines and not self.observed.wait_for(self.logged, self.timeout):
            raise AssertionError(
                f"the follower had shown {len(self.observed.lines)} of {self.logged} "
                f"logged lines after {self.timeout} s"
            )

    def _finish_anyway(self) -> None:
        with self.db.write() as conn:
            run = runs.get_run(conn, self.run_id)
            if run is not None and run.run_stage != RunStage.FINISHED:
                runs.finish_run(conn, self.run_id, self.clock.now(), planning_failed=True)


def _text(index: int) -> str:
    return LIVE_RUN_LOG[index][1]
