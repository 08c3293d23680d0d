"""The retention service: prunes expired finished runs in bounded batches, in the background.

Every CONVEYOR_RETENTION_INTERVAL seconds it deletes batches of
CONVEYOR_RETENTION_BATCH_SIZE runs (with their status messages and
operations), pausing CONVEYOR_RETENTION_PAUSE seconds between batches so
the API's and the engine's writes get the database in between, until no
expired run is left. Several processes may run it at once: a run deleted
by one is simply not found by the other.

The same pass forgets the Idempotency-Keys of bulk actions older than 24 hours
(`store.bulk.expire_keys`), in batches of the same size.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial

from sqlalchemy.exc import SQLAlchemyError

from conveyor.clock import Clock
from conveyor.config import Settings
from conveyor.context import AppContext
from conveyor.store import bulk, outage
from conveyor.store import retention as store
from conveyor.store.database import Database

log = logging.getLogger("conveyor.retention")


class Pruner:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: Settings,
        stop: threading.Event | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.stop = stop or threading.Event()
        self.sleep = sleep

    def prune_batch(self) -> int:
        """Delete one batch of expired runs; returns how many were deleted."""
        now = self.clock.now()
        return self.db.run_write(
            lambda conn: store.prune_batch(
                conn, now, self.settings.retention_days, self.settings.retention_batch_size
            )
        )

    def expire_bulk_keys(self) -> int:
        """Forget the bulk actions' Idempotency-Keys older than 24 hours, in batches."""
        total = 0
        size = self.settings.retention_batch_size
        while not self.stop.is_set():
            gone = self.db.run_write(partial(bulk.expire_keys, now=self.clock.now(), limit=size))
            total += gone
            if gone < size:
                break
        return total

    def prune(self, max_batches: int | None = None) -> int:
        """Batches until none is full (nothing expired is left), the stop event, or
        max_batches; then the bulk actions' expired keys."""
        self.expire_bulk_keys()
        total = batches = 0
        while not self.stop.is_set():
            deleted = self.prune_batch()
            total += deleted
            batches += 1
            if deleted < self.settings.retention_batch_size:
                break
            if max_batches is not None and batches >= max_batches:
                break
            if self.settings.retention_pause:
                self.sleep(self.settings.retention_pause)
        if total:
            log.info(
                "pruned %d expired runs in %d batches",
                total,
                batches,
                extra={"pruned_runs": total, "batches": batches},
            )
        return total


def start_retention(db: Database, clock: Clock, settings: Settings) -> Callable[[], None]:
    """Prune now, then every retention interval, on a thread; returns the function that stops it."""
    stop = threading.Event()
    pruner = Pruner(db, clock, settings, stop)

    def loop() -> None:
        while not stop.is_set():
            try:
                pruner.prune()
            except SQLAlchemyError as exc:
                outage.log_failure(
                    log, "pruning expired runs failed; trying again next interval", exc
                )
            stop.wait(settings.retention_interval)

    thread = threading.Thread(target=loop, name="retention", daemon=True)
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join(timeout=30)

    return halt


def retention_service(context: AppContext) -> Callable[[], None]:
    """The app-lifespan Service (conveyor.context) of `conveyor serve`."""
    return start_retention(context.db, context.clock, context.settings)
