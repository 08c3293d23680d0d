"""A run's status messages, read through its signed `status_messages_url`: once, or followed live.

The log endpoint is plain text and needs no API key (the link carries an
expiring signature). It answers with the whole log every time, so following
a run counts the lines already yielded and yields only the ones after them;
the log is append-only, so the first lines never change.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from conveyor.sdk.error import APIConnectionError
from conveyor.sdk.http import HttpSession
from conveyor.sdk.records import AutomationRun

__all__ = [
    "DEFAULT_FOLLOW_INTERVAL",
    "MAX_FOLLOW_INTERVAL",
    "MIN_FOLLOW_INTERVAL",
    "RunLogFollower",
    "log_lines",
    "read_log",
]

DEFAULT_FOLLOW_INTERVAL = 1.0
# Below this a follower is a busy loop on the server; above it a person
# watching waits too long for a line.
MIN_FOLLOW_INTERVAL = 0.05
MAX_FOLLOW_INTERVAL = 60.0
FINISHED = "finished"


def read_log(session: HttpSession, run: AutomationRun) -> str:
    """The run's log as the server renders it: one ``TIME [LEVEL] message`` line per message."""
    if not run.status_messages_url:
        raise APIConnectionError(f"Automation run {run.id} came without a status_messages_url.")
    response = session.get_url(run.status_messages_url)
    return response.content.decode("utf-8", errors="replace")


def log_lines(text: str) -> list[str]:
    """The lines of a log text, without their line ends.

    Split on ``\\n`` only: the server ends each message with it, while a
    message itself may hold other characters that `str.splitlines` breaks on.
    """
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def check_interval(interval: float) -> float:
    if not MIN_FOLLOW_INTERVAL <= interval <= MAX_FOLLOW_INTERVAL:
        raise ValueError(
            f"interval must be between {MIN_FOLLOW_INTERVAL} and {MAX_FOLLOW_INTERVAL} "
            f"seconds, got {interval}"
        )
    return interval


class RunLogFollower:
    """Iterating yields each log line of a run once, as it is written, and stops when the run
    is finished.

    Each poll asks for the run first (its stage, and a freshly signed link, so
    an expiring link never ends a long follow) and then for its log. In that
    order, the log read after the run was seen `finished` is complete: a
    finished run's log is closed. Between polls the follower waits `interval`
    seconds. After the walk, `run` is the finished run as last seen.
    """

    def __init__(
        self,
        find: Callable[[], AutomationRun],
        read: Callable[[AutomationRun], str],
        interval: float = DEFAULT_FOLLOW_INTERVAL,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._find = find
        self._read = read
        self._interval = check_interval(interval)
        self._sleep = sleep
        self.run: AutomationRun | None = None
        self.lines_seen = 0
        self.polls = 0

    def __iter__(self) -> Iterator[str]:
        while True:
            run = self._find()
            self.run = run
            lines = log_lines(self._read(run))
            self.polls += 1
            # Counted before each yield: a caller that stops early has seen exactly lines_seen.
            while self.lines_seen < len(lines):
                line = lines[self.lines_seen]
                self.lines_seen += 1
                yield line
            if run.run_stage == FINISHED:
                return
            self._sleep(self._interval)
