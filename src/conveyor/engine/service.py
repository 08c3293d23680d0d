"""Running workers: a pool of worker threads, as a service inside `conveyor serve` or on its own.

`embedded_services()` is what `conveyor serve` starts with the app;
`run_worker_process()` is `conveyor worker`, which runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from types import FrameType

from conveyor.clock import Clock, SystemClock
from conveyor.config import Settings
from conveyor.context import AppContext, Service
from conveyor.engine.context import EngineContext
from conveyor.engine.hooks import Hooks
from conveyor.engine.retention import start_retention
from conveyor.engine.scheduler import Scheduler, start_scheduler
from conveyor.engine.storage import Storage
from conveyor.engine.sweep import Sweeper
from conveyor.engine.wakeup import Wakeup, listen
from conveyor.engine.watcher import Watcher, start_watcher
from conveyor.engine.worker import Worker
from conveyor.observability.heartbeat import WorkerHeartbeat
from conveyor.store.database import Database, SessionTimeouts

log = logging.getLogger("conveyor.engine")
JOIN_TIMEOUT = 60.0


def worker_prefix() -> str:
    """Host and process: with a thread number, a worker id unique across machines (64 chars max)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}"


class WorkerPool:
    """`concurrency` worker threads sharing one wakeup (and one LISTEN connection on PostgreSQL)."""

    def __init__(self, engine: EngineContext, concurrency: int) -> None:
        self.engine = engine
        self.wakeup = Wakeup()
        prefix = worker_prefix()
        self.workers = [Worker(engine, f"{prefix}:{n}") for n in range(1, concurrency + 1)]
        self._threads: list[threading.Thread] = []
        self.heartbeat: WorkerHeartbeat | None = None
        self.sweeper: Sweeper | None = None

    def start(self) -> None:
        for worker in self.workers:
            thread = threading.Thread(
                target=worker.run, args=(self.wakeup,), name=f"worker-{worker.id}", daemon=True
            )
            self._threads.append(thread)
        if not self.engine.db.is_sqlite:
            self._threads.append(
                threading.Thread(
                    target=listen,
                    args=(
                        self.engine.db.url,
                        self.wakeup,
                        self.engine.stop,
                        self.engine.settings.poll_interval,
                    ),
                    name="listen",
                    daemon=True,
                )
            )
        for thread in self._threads:
            thread.start()
        self.sweeper = Sweeper(self.engine, self.engine.settings.temp_sweep_interval).start()
        # /readyz and conveyor_workers_alive see this process while its workers run.
        workers = self._threads[: len(self.workers)]
        self.heartbeat = WorkerHeartbeat(
            self.engine.db,
            self.engine.clock,
            kind="worker",
            timeout=self.engine.settings.heartbeat_timeout,
            alive=lambda: any(thread.is_alive() for thread in workers),
        ).start()

    def stop(self) -> None:
        """Ask every worker to stop after its current operation, and wait for them."""
        self.engine.stop.set()
        self.wakeup.notify_all()
        for thread in self._threads:
            thread.join(JOIN_TIMEOUT)
            if thread.is_alive():
                log.warning("%s did not stop within %.0f s", thread.name, JOIN_TIMEOUT)
        if self.heartbeat is not None:
            self.heartbeat.stop()
        if self.sweeper is not None:
            self.sweeper.stop()
        self.engine.db.dispose()


def make_engine(settings: Settings, db: Database, clock: Clock | None = None) -> EngineContext:
    """The engine of a worker pool, with connections of its own to `db`'s database whose
    waits are bounded by the lease (SessionTimeouts.for_lease): a stalled worker's
    transaction cannot hold a run's row past its lease."""
    settings.storage_root.mkdir(parents=True, exist_ok=True)
    return EngineContext(
        db=Database(
            db.url, role="engine", timeouts=SessionTimeouts.for_lease(settings.lease_seconds)
        ),
        settings=settings,
        clock=clock or SystemClock(),
        storage=Storage(settings.storage_root, durable=settings.durable_writes),
        hooks=Hooks.from_env(),
    )


def start_embedded(context: AppContext) -> Callable[[], None]:
    """The app-lifespan service: `embedded_workers` workers, woken by the app's new runs."""
    count = context.settings.embedded_workers
    if count == 0:
        return lambda: None
    pool = WorkerPool(make_engine(context.settings, context.db, context.clock), count)
    context.on_run_created = pool.wakeup.notify
    pool.start()
    return pool.stop


def embedded_services() -> list[Service]:
    # Scheduler and file watcher: duplicates with other processes are impossible
    # (docs/triggers.md), so every `conveyor serve` may run them.
    return [start_embedded, start_scheduler, start_watcher]


def run_worker_process(
    settings: Settings,
    db: Database,
    concurrency: int,
    *,
    scheduler: bool = True,
    watcher: bool = False,
) -> int:
    """`conveyor worker`: run the engine until SIGTERM or SIGINT; the exit status.

    `scheduler` and `watcher` also run the triggers in this process (docs/triggers.md);
    retention prunes expired runs here as in `conveyor serve`.
    """
    stop_retention = start_retention(db, SystemClock(), settings)
    pool = WorkerPool(make_engine(settings, db), concurrency)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    pool.start()
    triggers: list[Scheduler | Watcher] = []
    if scheduler:
        clock = pool.engine.clock
        interval = settings.scheduler_interval
        triggers.append(Scheduler(db, clock, interval, pool.wakeup.notify).start())
    if watcher:
        triggers.append(
            Watcher(
                db,
                pool.engine.clock,
                settings.storage_root,
                debounce=settings.watch_debounce,
                rescan=settings.watch_rescan,
                on_run_created=pool.wakeup.notify,
            ).start()
        )
    ids = ", ".join(worker.id for worker in pool.workers)
    print(
        f"Conveyor worker started: {concurrency} worker(s) [{ids}], "
        f"storage {settings.storage_root}",
        flush=True,
    )
    while not stopping.wait(0.5):
        pass
    print("Conveyor worker stopping: finishing current operations.", flush=True)
    for trigger in triggers:
        trigger.stop()
    pool.stop()
    stop_retention()
    print("Conveyor worker stopped.", flush=True)
    sys.stdout.flush()
    return 0
