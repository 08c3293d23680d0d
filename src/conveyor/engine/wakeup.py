"""Waking idle workers when work arrives: an in-process event, and PostgreSQL LISTEN/NOTIFY.

Polling every `poll_interval` stays the fallback, so a lost wakeup only
delays a run, never strands it.
"""

from __future__ import annotations

import logging
import threading

import psycopg

from conveyor.store.database import driver_conninfo

log = logging.getLogger("conveyor.engine")

# store.runs.create_run sends NOTIFY on this channel in the creating transaction.
CHANNEL = "conveyor_runs"


class Wakeup:
    """Shared by a process's workers: `notify` wakes one waiting worker (a new run needs
    one claim; waking them all made every other one run a claim that found nothing, in
    the woken one's way), or, if none waits, the next to wait returns at once.

    A worker clears it before each claim and waits only after a claim found nothing,
    so a run committed between that claim and the wait is never missed."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._set = False

    def notify(self, _run_id: int | None = None) -> None:
        with self._cond:
            self._set = True
            self._cond.notify()

    def notify_all(self) -> None:
        """Wake every waiting worker (stopping)."""
        with self._cond:
            self._set = True
            self._cond.notify_all()

    def clear(self) -> None:
        with self._cond:
            self._set = False

    def wait(self, timeout: float) -> None:
        with self._cond:
            if not self._set:
                self._cond.wait(timeout)
            self._set = False


def listen(database_url: str, wakeup: Wakeup, stop: threading.Event, retry: float) -> None:
    """Forward NOTIFYs on CHANNEL to `wakeup` until `stop` is set; reconnect on errors."""
    while not stop.is_set():
        try:
            with psycopg.connect(
                driver_conninfo(database_url), autocommit=True, application_name="conveyor listen"
            ) as conn:
                conn.execute(f"LISTEN {CHANNEL}")
                # Runs created while we were not listening are found by this claim round.
                wakeup.notify()
                while not stop.is_set():
                    for _note in conn.notifies(timeout=0.5, stop_after=1):
                        wakeup.notify()
        except psycopg.Error as exc:
            log.warning("LISTEN %s failed (%s); retrying", CHANNEL, exc)
            stop.wait(retry)
