"""Which database errors are outages (a 503 to retry) and which are not (a 500 stays a 500).

The driver errors are the real classes PostgreSQL's SQLSTATEs map to in psycopg
and real SQLite errors; the end-to-end behaviour is in tests/ops/test_outage.py.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from conveyor.store import outage
from conveyor.store.database import Database
from conveyor.testing.postgres import PostgresServer


@pytest.mark.parametrize(
    ("sqlstate", "why"),
    [
        ("08006", "the database is unreachable"),  # connection_failure
        ("57P01", "the database is shutting down or starting up"),  # admin_shutdown
        ("57P03", "the database is shutting down or starting up"),  # cannot_connect_now
        ("53100", "the database is out of disk space or resources"),  # disk_full
        ("53300", "the database is out of disk space or resources"),  # too_many_connections
        ("25006", "the database is read-only"),  # read_only_sql_transaction
        ("58030", "the database had an I/O error"),  # io_error
        ("57014", None),  # query_canceled: a statement timeout is no outage
        ("23505", None),  # unique_violation
        ("42P01", None),  # undefined_table
        ("40001", None),  # serialization_failure
    ],
)
def test_postgresql_states(sqlstate: str, why: str | None) -> None:
    error = psycopg.errors.lookup(sqlstate)("message")
    assert outage.reason(error) == why
    assert outage.reason(OperationalError("SELECT 1", {}, error)) == why  # as SQLAlchemy wraps it


def test_no_server_answer_is_unreachable() -> None:
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect("host=127.0.0.1 port=1 connect_timeout=2")
    assert outage.reason(refused.value) == "the database is unreachable"


def test_a_server_that_turns_the_connection_away_is_no_outage(pg_server: PostgresServer) -> None:
    """A wrong role or database name will never connect: no waiting, no 503, a plain error."""
    for who in ("user=postgres dbname=no_such_database", "user=no_such_role dbname=postgres"):
        with pytest.raises(psycopg.OperationalError) as refused:
            psycopg.connect(f"host=127.0.0.1 port={pg_server.port} {who}")
        assert outage.reason(refused.value) is None


def test_sqlite_full_and_missing(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'capped.db'}")
    with db.write() as conn:
        conn.execute(text("CREATE TABLE t (x BLOB)"))
    with pytest.raises(OperationalError) as full, db.write() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
        conn.exec_driver_sql(f"PRAGMA max_page_count = {pages}")
        conn.execute(text("INSERT INTO t VALUES (zeroblob(100000))"))
    assert outage.reason(full.value) == "the database or its disk is full"
    # The failed write is remembered for /readyz until a write succeeds.
    assert db.write_failures.recent(60) == "the database or its disk is full"
    db.dispose()
    with db.write() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
    assert db.write_failures.recent(60) is None
    db.dispose()

    nowhere = sqlite3.connect(":memory:")
    with pytest.raises(sqlite3.OperationalError) as missing:
        sqlite3.connect(tmp_path / "no" / "such" / "dir.db")
    assert outage.reason(missing.value) == "the database file cannot be opened"
    with pytest.raises(sqlite3.OperationalError) as no_table:
        nowhere.execute("SELECT * FROM nothing")
    assert outage.reason(no_table.value) is None
    nowhere.close()


def test_wait_retries_outages_with_a_bounded_backoff(caplog: pytest.LogCaptureFixture) -> None:
    attempts: list[int] = []
    pauses: list[float] = []

    def work() -> str:
        attempts.append(1)
        if len(attempts) < 7:
            raise psycopg.errors.lookup("57P03")("the database system is starting up")
        return "done"

    with caplog.at_level(logging.WARNING):
        assert outage.wait(work, "start", logging.getLogger("t"), sleep=pauses.append) == "done"
    assert pauses == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]
    assert len(caplog.records) == 6 and "attempt 6 failed" in caplog.records[-1].getMessage()

    def broken() -> None:
        raise psycopg.errors.lookup("42P01")("relation does not exist")

    with pytest.raises(psycopg.errors.UndefinedTable):
        outage.wait(broken, "start", logging.getLogger("t"), sleep=pauses.append)


def test_readiness_remembers_only_failures_a_read_cannot_see(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'ready.db'}")
    with db.read() as conn:
        assert outage.check(db, conn) is None
        for over in ("the database is unreachable", "the database is busy"):
            db.write_failures.failed(over)  # the read above shows it is over
            assert outage.check(db, conn) is None
        db.write_failures.failed("the database is read-only")
        assert outage.check(db, conn) == "the database is read-only"
    db.dispose()
