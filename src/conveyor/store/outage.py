"""Database outages: telling them apart from other database errors, and waiting them out.

An outage is a state of the database, not a fault of the request: it is
unreachable, shutting down or starting up (a PostgreSQL restart), read-only,
or out of space. The API answers it with a 503 the client may retry
(`conveyor.api.errors`), /readyz reports it, and `conveyor serve` / `conveyor
worker` wait for the database at start-up (`wait`) instead of exiting. Any
other database error (a constraint, a bug in a query) stays what it is.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import psycopg
from psycopg_pool import PoolTimeout
from sqlalchemy import make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

if TYPE_CHECKING:
    from conveyor.store.database import Database

T = TypeVar("T")

# PostgreSQL SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html)
# whose condition passes with time, not with a different request.
_UNREACHABLE = "the database is unreachable"
_RESTARTING = "the database is shutting down or starting up"
_PG_CLASSES = {
    "08": _UNREACHABLE,  # connection exception
    "53": "the database is out of disk space or resources",  # insufficient resources
    "57": _RESTARTING,  # operator intervention
    "58": "the database had an I/O error",  # system error
}
_PG_STATES = {"25006": "the database is read-only"}  # read_only_sql_transaction
_PG_NOT_OUTAGES = {"57014"}  # query_canceled: a statement timeout, not an outage
# A connection the server turned away carries no SQLSTATE in libpq, only its message;
# these say that waiting will not help (a wrong password, role or database name).
_PG_REFUSALS = ("authentication failed", "does not exist", "no pg_hba.conf entry")

# SQLite primary result codes (https://sqlite.org/rescode.html).
_BUSY = "the database is busy"
_SQLITE_CODES = {
    5: _BUSY,  # SQLITE_BUSY, once Database.run_write's retries ran out
    7: "the database is out of memory",  # SQLITE_NOMEM
    8: "the database is read-only",  # SQLITE_READONLY
    10: "the database had an I/O error",  # SQLITE_IOERR (a write refused by the OS)
    13: "the database or its disk is full",  # SQLITE_FULL
    14: "the database file cannot be opened",  # SQLITE_CANTOPEN
}

# /readyz reports a write that failed for an outage this long (seconds), unless
# a write succeeded since.
WRITE_FAILURE_MEMORY = 10.0
# Below this many free bytes on the SQLite file's file system, /readyz reports
# the disk full: a write transaction may need that much for its WAL frames.
MIN_FREE_BYTES = 1 << 20


def reason(exc: BaseException) -> str | None:
    """Why the database cannot serve now, if `exc` (or what it wraps) says so; else None."""
    if isinstance(exc, PoolTimeoutError | PoolTimeout):
        return "no database connection came free in time"
    cause: BaseException | None = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(cause, psycopg.Error):
        state = cause.sqlstate
        if state is None:  # a connection refused, reset, closed or turned away
            if not isinstance(cause, psycopg.OperationalError | psycopg.InterfaceError):
                return None
            message = str(cause)
            if any(marker in message for marker in _PG_REFUSALS):
                return None  # the server answered: this configuration will never connect
            return _UNREACHABLE
        if state in _PG_NOT_OUTAGES:
            return None
        return _PG_STATES.get(state) or _PG_CLASSES.get(state[:2])
    if isinstance(cause, sqlite3.Error):
        code = getattr(cause, "sqlite_errorcode", None)
        if code is not None:
            return _SQLITE_CODES.get(code & 0xFF)
        return None
    return None


def disk_full(path: str) -> str | None:
    """The reason to report when the file system holding `path` is (nearly) full."""
    try:
        stats = os.statvfs(path)
    except OSError:
        return None  # the read check reports a file that cannot be reached
    if stats.f_bavail * stats.f_frsize < MIN_FREE_BYTES:
        return "the database's disk is full"
    return None


def check(db: Database, conn: Connection) -> str | None:
    """Why the database cannot take writes now, or None: /readyz's database check.

    `conn` has answered a read already. PostgreSQL: is it a read-only server
    (a standby, or `default_transaction_read_only`)? SQLite: is the disk of its
    file full? Both: did a write of this process fail for an outage lately?
    """
    if db.is_sqlite:
        path = make_url(db.url).database
        why = disk_full(os.path.dirname(os.path.abspath(path))) if path else None
    else:
        read_only = conn.execute(text("SELECT current_setting('transaction_read_only')"))
        why = "the database is read-only" if read_only.scalar_one() == "on" else None
    if why is not None:
        return why
    failed = db.write_failures.recent(WRITE_FAILURE_MEMORY)
    # A database that was unreachable or restarting has just answered, so that one is
    # over; a busy one is contention, not an outage of this process.
    return None if failed in (_UNREACHABLE, _RESTARTING, _BUSY) else failed


class WriteFailures:
    """The last write that failed for an outage, until a write succeeds again.

    A full disk shows in writes first (reads still work), so /readyz reports
    such a failure while it is recent (`within` seconds) and no write has
    succeeded since.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: tuple[float, str] | None = None

    def failed(self, why: str) -> None:
        with self._lock:
            self._last = (time.monotonic(), why)

    def succeeded(self) -> None:
        if self._last is not None:
            with self._lock:
                self._last = None

    def recent(self, within: float) -> str | None:
        last = self._last
        if last is None or time.monotonic() - last[0] > within:
            return None
        return last[1]


def log_failure(log: logging.Logger, message: str, exc: BaseException) -> None:
    """Log a background step's failure: an outage as one warning line (it is expected
    and passes), anything else with its stack."""
    why = reason(exc)
    if why is not None:
        log.warning("%s: %s", message, why)
    else:
        log.error(message, exc_info=exc)


def wait(
    work: Callable[[], T],
    what: str,
    log: logging.Logger,
    *,
    max_delay: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `work` until it succeeds, retrying through outages with a bounded backoff.

    Each outage is logged as one warning (no stack): what waits, why, and when
    it tries again. Any other error is raised at once.
    """
    delay = 0.5
    attempt = 1
    while True:
        try:
            return work()
        except Exception as exc:
            why = reason(exc)
            if why is None:
                raise
            log.warning("%s: %s; attempt %d failed, retrying in %.1f s", what, why, attempt, delay)
        sleep(delay)
        delay = min(delay * 2, max_delay)
        attempt += 1
