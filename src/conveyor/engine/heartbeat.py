"""Heartbeats: one thread per engine extends the lease of every run its workers hold.

A worker registers a claim while it works on it; the thread extends each
registered lease every third of the lease's length, and flags a claim whose
lease is gone (another worker took the run over) so the work loop stops.
One long-lived thread rather than one per claim: claims are short and many.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from conveyor.store import engine as engine_store
from conveyor.store.database import Database

log = logging.getLogger("conveyor.engine")
# The thread ends after this many beats with nothing to extend, and restarts on demand.
IDLE_BEATS = 30


class Heartbeat:
    """One held claim: `lost` is set once the lease turned out to be someone else's."""

    def __init__(self, keeper: LeaseKeeper, run_id: int, worker_id: str) -> None:
        self.keeper = keeper
        self.run_id = run_id
        self.worker_id = worker_id
        self.lost = threading.Event()

    def __enter__(self) -> Heartbeat:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.keeper.drop(self)


class LeaseKeeper:
    def __init__(self, db: Database, lease_until: Callable[[], int], interval: float) -> None:
        self.db = db
        self.lease_until = lease_until
        self.interval = interval
        self._held: dict[int, Heartbeat] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def hold(self, run_id: int, worker_id: str) -> Heartbeat:
        beat = Heartbeat(self, run_id, worker_id)
        with self._lock:
            self._held[id(beat)] = beat
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
                self._thread.start()
        return beat

    def drop(self, beat: Heartbeat) -> None:
        with self._lock:
            self._held.pop(id(beat), None)

    def _run(self) -> None:
        idle = 0
        while True:
            time.sleep(self.interval)
            with self._lock:
                beats = list(self._held.values())
                if not beats:
                    idle += 1
                    if idle >= IDLE_BEATS:
                        self._thread = None
                        return
                    continue
            idle = 0
            for beat in beats:
                self._extend(beat)

    def _extend(self, beat: Heartbeat) -> None:
        try:
            held = self.db.run_write(
                lambda conn: engine_store.extend_lease(
                    conn, beat.run_id, beat.worker_id, self.lease_until()
                )
            )
        except SQLAlchemyError:
            log.warning("heartbeat of automation run %s failed; retrying", beat.run_id)
            return
        if not held:
            beat.lost.set()
            self.drop(beat)
