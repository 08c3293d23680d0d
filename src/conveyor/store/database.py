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
On PostgreSQL the driver's connections are in autocommit and Conveyor sends
`BEGIN` when SQLAlchemy begins a transaction, so `reads()` (statements without
a transaction) and the transactions share one pool without switching modes.
"""

from __future__ import annotations

import os
import random
import select
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, event, make_url
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import InvalidatePoolError, OperationalError
from sqlalchemy.pool import NullPool

from conveyor.store import outage

T = TypeVar("T")

WRITE_OPTION = "conveyor_write"
# On PostgreSQL: a connection of `Database.reads()`, whose statements run each on its own.
READS_OPTION = "conveyor_reads"
LOCK_RETRIES = 12
# Seconds to wait for a PostgreSQL server to answer a new connection (with_connect_timeout).
CONNECT_TIMEOUT = 5


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
        pool_size: int = 8,
        null_pool: bool = False,
        timeouts: SessionTimeouts | None = None,
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if null_pool:
            kwargs["poolclass"] = NullPool
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size)
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
            if timeouts is not None:
                kwargs["connect_args"] = {"options": timeouts.postgresql_options()}
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
            if not null_pool:
                event.listen(self.engine, "checkout", _check_alive)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection in a read transaction (one snapshot for its queries)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def reads(self) -> Iterator[Connection]:
        """A connection for reads that need not share one snapshot.

        On PostgreSQL each statement runs on its own (autocommit), which saves the
        BEGIN and COMMIT round trips of a transaction; one statement still reads
        one consistent snapshot. On SQLite, where a transaction costs no round
        trip, this is `read()`.
        """
        if self.is_sqlite:
            with self.read() as conn:
                yield conn
            return
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


def driver_conninfo(database_url: str) -> str:
    """A PostgreSQL URL as psycopg itself takes it (without SQLAlchemy's driver name)."""
    url = make_url(with_connect_timeout(database_url))
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def socket_readable(fileno: int) -> bool:
    """Has the connection's socket something to read? An idle pooled connection has
    not, unless its server process ended (`_check_alive`). poll(), not select(),
    which refuses descriptors above 1023."""
    poller = select.poll()
    poller.register(fileno, select.POLLIN)
    return bool(poller.poll(0))


def _begin_postgresql(conn: Connection) -> None:
    """BEGIN for a transaction SQLAlchemy begins, except on a `reads()` connection."""
    if not conn.get_execution_options().get(READS_OPTION, False):
        conn.exec_driver_sql("BEGIN")


def _check_alive(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """A pooled PostgreSQL connection's liveness check at checkout, without a round trip.

    A connection that idles in the pool has nothing to read on its socket. When
    its server process ends (a restart, `pg_terminate_backend`,
    `idle_session_timeout`), the server's last message and the close make the
    socket readable. Only then is the connection pinged (`SELECT 1`, the check
    SQLAlchemy's `pool_pre_ping` runs on every checkout); if that fails, every
    connection pooled before now is discarded and a new one is made, as
    `pool_pre_ping` does. A checkout under load thus costs one `select()`
    instead of a statement. What it cannot see, like `pool_pre_ping` until its
    TCP timeout, is a peer that vanished without closing the connection.
    """
    if not socket_readable(dbapi_conn.fileno()):
        return
    try:
        dbapi_conn.execute("SELECT 1")  # in autocommit, as every pooled connection is
    except Exception as exc:
        raise InvalidatePoolError(f"the pooled connection is gone: {exc}") from exc


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
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
