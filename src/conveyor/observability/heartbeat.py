"""A thread that writes an engine process's heartbeat (store.heartbeats) while its workers live.

The engine starts one per process with a function telling whether its work
loops are still running; when they all stopped (or crashed), the beats stop
and /readyz turns 503 once CONVEYOR_HEARTBEAT_TIMEOUT has passed.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from conveyor.clock import Clock
from conveyor.store import heartbeats
from conveyor.store.database import Database

log = logging.getLogger("conveyor.engine")


class WorkerHeartbeat:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        kind: str,
        timeout: float,
        alive: Callable[[], bool],
    ) -> None:
        self.db = db
        self.clock = clock
        self.kind = kind
        self.alive = alive
        # Four beats per timeout: one slow write does not make a live worker look dead.
        self.interval = timeout / 4
        self.worker_id = f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(3)}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-heartbeat", daemon=True)

    def start(self) -> WorkerHeartbeat:
        try:
            self._beat()
        except SQLAlchemyError:  # the database is down: the thread beats once it is back
            log.warning("first heartbeat of %s failed; retrying", self.worker_id)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        try:
            self.db.run_write(lambda conn: heartbeats.forget(conn, self.worker_id))
        except SQLAlchemyError:
            log.warning("could not remove the heartbeat row of %s", self.worker_id)

    def _beat(self) -> None:
        hostname = socket.gethostname()[:255]
        self.db.run_write(
            lambda conn: heartbeats.beat(
                conn, self.worker_id, self.kind, hostname, os.getpid(), self.clock.now()
            )
        )

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if not self.alive():
                log.error("engine workers of %s stopped; heartbeats stop too", self.worker_id)
                return
            try:
                self._beat()
            except SQLAlchemyError:
                log.warning("heartbeat of %s failed; retrying", self.worker_id)
