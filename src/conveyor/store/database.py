"""The database handle: engine creation, SQLite pragmas, and the one write path.

Reads use `Database.read()`; every write goes through `Database.write()` or
`Database.run_write()`. On SQLite a write transaction starts with
`BEGIN IMMEDIATE`, so two writers never deadlock on a lock upgrade, and
`database is locked` is retried a bounded number of times with backoff.
Inside one process, SQLite writers of the same file also take turns on a
lock of the process (`_writer_lock`) before `BEGIN IMMEDIATE`: a waiting
writer starts the moment the previous one commits, instead of sleeping in
SQLite's busy handler (1, 2, 5, ... up to 100 ms between looks), which made
every contended write of the API and the engine wait milliseconds for nothing.
On both databases the driver's connections are in autocommit and Conveyor sends
`BEGIN` when SQLAlchemy begins a transaction, so `reads()` (statements without
a transaction) and the transactions share one pool without switching modes.

Connections come from one pool per driver, each a maintained library's with its
own health check: SQLAlchemy's pool (`pool_pre_ping`) for every `Database`, and
psycopg_pool's `AsyncConnectionPool` (`check()` once a request's first statement
finds its connection lost) for the API's run reads on the event loop on
PostgreSQL (`async_read_pool`). `POOLS` is the one
place that says how many connections each part of a process opens.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import create_engine, event, make_url
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from conveyor.store import outage

T = TypeVar("T")
# psycopg_pool's pool of asyncio connections, as the API's run reads use it (async_read_pool).
AsyncReadPool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]

WRITE_OPTION = "conveyor_write"
# A connection of `Database.reads()`, whose statements run each on its own.
READS_OPTION = "conveyor_reads"
LOCK_RETRIES = 12
# Seconds to wait for a PostgreSQL server to answer a new connection (with_connect_timeout).
CONNECT_TIMEOUT = 5
# Seconds a request waits for a pooled connection to come free before it is answered
# as an outage (conveyor.store.outage: a 503 with Retry-After). SQLAlchemy's pool makes
# a missing connection in the request itself and fails it at once when the server is
# down; psycopg_pool makes them in the background and lets the request wait, so its
# wait is bounded as a new connection's is (CONNECT_TIMEOUT).
POOL_TIMEOUT = 30

# The most connections to the database each pool of one process opens (the one place
# that says so; docs/configuration.md, "Connections"). Each pool's connections carry
# its role as their PostgreSQL `application_name` ("conveyor api", ...), so
# pg_stat_activity shows them by role. A SQLAlchemy pool keeps half of its figure
# open and makes the other half only for bursts (pool_size = max_overflow); SQLite
# keeps one file handle per pooled connection and has no server to count them.
#
# - api: the app's `Database` in `conveyor serve`: every request's reads and writes
#   outside the run reads, the web UI, and the scheduler, file watcher, retention and
#   heartbeat services started with the app; also any CLI command's.
# - api-reads: PostgreSQL only, `async_read_pool`: the run list and find on the
#   event loop.
# - engine: the engine's `Database` (with SessionTimeouts, docs/engine.md "Fencing")
#   in `conveyor worker`, or in `conveyor serve` with embedded workers: the workers'
#   claims and outcomes, their heartbeat and the temp-file sweeper.
# - listen: PostgreSQL only, the engine's LISTEN connection (engine.wakeup), made
#   outside any pool.
POOLS: dict[str, int] = {"api": 16, "api-reads": 8, "engine": 16, "listen": 1}


# One lock per SQLite file (real path) for the whole process, shared by every
# Database on it (the API's and the engine's): see the module docstring.
_WRITER_LOCKS: dict[str, threading.RLock] = {}
_WRITER_LOCKS_GUARD = threading.Lock()


def _writer_lock(file: str | None) -> threading.RLock | None:
    if not file or file == ":memory:" or file.startswith("file:"):
        return None
    key = os.path.realpath(file)
    with _WRITER_LOCKS_GUARD:
        return _WRITER_LOCKS.setdefault(key, threading.RLock())


def _is_sqlite_busy(exc: BaseException) -> bool:
    text = str(getattr(exc, "orig", exc)).lower()
    return "database is locked" in text or "database is busy" in text


@dataclass(frozen=True, slots=True)
class SessionTimeouts:
    """Bounds on how long a connection's statements, lock waits and open transactions may
    last, in milliseconds (the engine's, tied to its lease: docs/engine.md). PostgreSQL:
    `statement_timeout`, `lock_timeout`, `idle_in_transaction_session_timeout`, set when
    the connection opens; SQLite: `lock_ms` is the busy timeout."""

    statement_ms: int
    lock_ms: int
    idle_in_transaction_ms: int

    @classmethod
    def for_lease(cls, lease_seconds: float) -> SessionTimeouts:
        """No statement outlives a lease, no lock wait a third of it, and a transaction
        left idle (its client stalled) ends after half of it, releasing its locks
        before the lease it was guarding runs out."""
        lease_ms = int(lease_seconds * 1000)
        return cls(
            statement_ms=max(lease_ms, 1000),
            lock_ms=max(lease_ms // 3, 200),
            idle_in_transaction_ms=max(lease_ms // 2, 500),
        )

    def postgresql_options(self) -> str:
        return (
            f"-c statement_timeout={self.statement_ms} -c lock_timeout={self.lock_ms} "
            f"-c idle_in_transaction_session_timeout={self.idle_in_transaction_ms}"
        )


class Database:
    """One engine per process; connections come from its pool."""

    def __init__(
        self,
        url: str,
        *,
        role: str = "api",
        null_pool: bool = False,
        timeouts: SessionTimeouts | None = None,
    ) -> None:
        """`role` is the pool's entry in POOLS: its size and `application_name`."""
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if null_pool:
            kwargs["poolclass"] = NullPool
        else:
            half = POOLS[role] // 2
            kwargs.update(
                pool_size=half, max_overflow=POOLS[role] - half, pool_timeout=POOL_TIMEOUT
            )
        self.timeouts = timeouts
        self._writer: threading.RLock | None = None
        busy_ms = 5000 if timeouts is None else timeouts.lock_ms
        self._writer_wait = busy_ms / 1000
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            file = make_url(url).database
            if file and file != ":memory:" and not file.startswith("file:"):
                create_private(Path(file))
            self._writer = _writer_lock(file)
        else:
            connect_args: dict[str, Any] = {"application_name": f"conveyor {role}"}
            if timeouts is not None:
                connect_args["options"] = timeouts.postgresql_options()
            kwargs["connect_args"] = connect_args
            # SQLAlchemy's health check: a pooled connection is pinged as it is checked
            # out; when the ping fails, every connection pooled before it is discarded.
            kwargs["pool_pre_ping"] = not null_pool
            # The driver never begins a transaction by itself; Conveyor sends BEGIN
            # when SQLAlchemy begins one (below), as on SQLite, so `reads()` need not
            # switch a pooled connection in and out of autocommit.
            kwargs["isolation_level"] = "AUTOCOMMIT"
            url = with_connect_timeout(url)
        self.engine: Engine = create_engine(url, **kwargs)
        self.write_failures = outage.WriteFailures()
        self._reads_engine = self.engine.execution_options(**{READS_OPTION: True})
        if self.is_sqlite:
            _install_sqlite_hooks(self.engine, busy_ms)
        else:
            event.listen(self.engine, "begin", _begin_postgresql)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection in a read transaction (one snapshot for its queries)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def reads(self) -> Iterator[Connection]:
        """A connection for reads that need not share one snapshot.

        Each statement runs on its own (no transaction: autocommit on PostgreSQL,
        SQLite's own per-statement transaction), which saves a transaction's
        BEGIN and COMMIT: round trips on PostgreSQL, two more driver calls on
        SQLite. One statement still reads one consistent snapshot.
        """
        with self._reads_engine.connect() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: committed on exit, rolled back on error.

        A write that fails for an outage (a full disk, a read-only or vanished
        database) is remembered in `write_failures` until one succeeds, for /readyz.
        On SQLite the process's writer lock is held from before `BEGIN IMMEDIATE`
        until the commit; waiting for it longer than the busy timeout fails as
        SQLite's own `database is locked` would.
        """
        lock = self._writer
        if lock is not None and not lock.acquire(timeout=self._writer_wait):
            raise OperationalError(
                "BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")
            )
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    yield conn
        except Exception as exc:
            why = outage.reason(exc)
            if why is not None:
                self.write_failures.failed(why)
            raise
        finally:
            if lock is not None:
                lock.release()
        self.write_failures.succeeded()

    def run_write(self, work: Callable[[Connection], T], retries: int = LOCK_RETRIES) -> T:
        """Run `work` in a write transaction, retrying it when SQLite is busy.

        `work` must be safe to run again from the start: each attempt is a
        fresh transaction, and a failed one has been rolled back entirely.
        """
        delay = 0.005
        for attempt in range(retries + 1):
            try:
                with self.write() as conn:
                    return work(conn)
            except OperationalError as exc:
                if not (self.is_sqlite and _is_sqlite_busy(exc)) or attempt == retries:
                    raise
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.5)
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        self.engine.dispose()


def with_connect_timeout(database_url: str) -> str:
    """A PostgreSQL URL with `connect_timeout` (CONNECT_TIMEOUT s) unless it names one.

    Without it, connecting to a server that does not answer (a network partition,
    a host that drops packets) waits for the operating system's TCP timeout, minutes
    during which a request, /readyz or a worker's claim hangs instead of failing
    as an outage (conveyor.store.outage)."""
    url = make_url(database_url)
    if "connect_timeout" in url.query:
        return database_url
    return url.update_query_dict({"connect_timeout": str(CONNECT_TIMEOUT)}).render_as_string(
        hide_password=False
    )


def async_read_pool(database_url: str) -> AsyncReadPool:
    """The pool of psycopg's asyncio connections for the API's reads on the event loop
    (PostgreSQL; POOLS["api-reads"]), not yet open: `await pool.open()` on the loop
    that will use it, `await pool.close()` at shutdown.

    Its connections are in autocommit (each statement reads its own snapshot, as
    `Database.reads()` does) and made on demand, one kept open. A request waits at
    most CONNECT_TIMEOUT for a connection, then is answered as an outage; a
    connection returned mid-statement (its request was cancelled) or broken is
    discarded by psycopg_pool itself.

    No check runs as a connection is handed out: psycopg_pool's (an empty
    statement) would cost every request a round trip. A connection found lost
    by the request's first statement is handled where the statement runs
    (`conveyor.api.steps.run_request_steps`): the idle connections are checked
    at once (`pool.check()`, which replaces the broken ones, as SQLAlchemy's
    pool discards them all after a failed ping) and the statement runs again on
    another connection."""

    pool: AsyncReadPool = AsyncConnectionPool(
        driver_conninfo(database_url),
        min_size=1,
        max_size=POOLS["api-reads"],
        kwargs={"autocommit": True, "application_name": "conveyor api-reads"},
        timeout=CONNECT_TIMEOUT,
        name="api-reads",
        open=False,
    )
    return pool


def driver_conninfo(database_url: str) -> str:
    """A PostgreSQL URL as psycopg itself takes it (without SQLAlchemy's driver name)."""
    url = make_url(with_connect_timeout(database_url))
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _begin_postgresql(conn: Connection) -> None:
    """BEGIN for a transaction SQLAlchemy begins, except on a `reads()` connection."""
    if not conn.get_execution_options().get(READS_OPTION, False):
        conn.exec_driver_sql("BEGIN")


def create_private(path: Path) -> None:
    """Create `path` as an empty file readable by its owner only (0600), unless it exists.

    The database holds the signing secret and API key hashes; SQLite gives its
    -wal and -shm files the database file's mode."""
    with suppress(FileExistsError, FileNotFoundError):  # no folder: SQLite says so itself
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))


def _install_sqlite_hooks(engine: Engine, busy_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Conveyor issues BEGIN itself (below), so the driver must not.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get(READS_OPTION, False):  # `Database.reads()`: no transaction
            return
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get(WRITE_OPTION, False) else "BEGIN")
