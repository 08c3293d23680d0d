"""Heartbeats: one thread per engine extends the lease of every run its workers hold.

A worker registers a claim while it works on it; the thread extends each
registered lease every third of the lease's length, and flags a claim whose
lease is gone (another worker took the run over) so the work loop stops.
One long-lived thread rather than one per claim: claims are short and many.

Each held claim knows until when its lease was last written (`held_until`,
set only after the write committed). `Heartbeat.fence()` is the check a
worker makes right before a destructive file action: the lease must still be
held for at least the safety margin, or be extended now by a write guarded
on the claim's lease generation (the fencing token).
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

    def __init__(
        self, keeper: LeaseKeeper, run_id: int, worker_id: str, token: int, held_until: int
    ) -> None:
        self.keeper = keeper
        self.run_id = run_id
        self.worker_id = worker_id
        self.token = token
        self.held_until = held_until
        self.lost = threading.Event()

    def fence(self) -> bool:
        """Whether this worker may still act: it holds the lease for at least the margin
        from now, as last written, or extends it now (one guarded write)."""
        if self.lost.is_set():
            return False
        if self.keeper.now() + self.keeper.margin_us < self.held_until:
            return True
        return self.keeper.extend(self)

    def __enter__(self) -> Heartbeat:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.keeper.drop(self)


class LeaseKeeper:
    def __init__(
        self,
        db: Database,
        lease_until: Callable[[], int],
        interval: float,
        now: Callable[[], int],
        margin_us: int,
    ) -> None:
        self.db = db
        self.lease_until = lease_until
        self.interval = interval
        self.now = now
        self.margin_us = margin_us
        self._held: dict[int, Heartbeat] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def hold(self, run_id: int, worker_id: str, token: int, held_until: int) -> Heartbeat:
        beat = Heartbeat(self, run_id, worker_id, token, held_until)
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
                self.extend(beat)

    def extend(self, beat: Heartbeat) -> bool:
        """Extend the claim's lease (guarded on its token); False if it is gone or the
        write failed (then the fence stays shut until a beat succeeds)."""
        until = self.lease_until()  # taken before the write: never later than the row's
        try:
            held = self.db.run_write(
                lambda conn: engine_store.extend_lease(
                    conn, beat.run_id, beat.worker_id, beat.token, until
                )
            )
        except SQLAlchemyError:
            log.warning("heartbeat of automation run %s failed; retrying", beat.run_id)
            return False
        if not held:
            beat.lost.set()
            self.drop(beat)
            return False
        beat.held_until = max(beat.held_until, until)
        return True
