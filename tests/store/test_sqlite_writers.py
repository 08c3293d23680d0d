"""SQLite writers of one process take turns on the process's writer lock (store.database).

Two Database handles on one file (as the API's and the engine's are) share the
lock: a second writer waits for the first to commit instead of polling in
SQLite's busy handler, and one that waits longer than the busy timeout fails
as SQLite itself would, with `database is locked`, which run_write retries.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from conveyor.store.database import Database, SessionTimeouts


def _make(path: Path, lock_ms: int | None = None) -> Database:
    timeouts = None if lock_ms is None else SessionTimeouts(1000, lock_ms, 1000)
    return Database(f"sqlite:///{path}", timeouts=timeouts)


def test_a_second_writer_of_the_process_waits_for_the_first_to_commit(tmp_path: Path) -> None:
    api, engine = _make(tmp_path / "c.db"), _make(tmp_path / "c.db")
    with api.write() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    order: list[str] = []
    holding, release = threading.Event(), threading.Event()

    def first() -> None:
        with api.write() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
            holding.set()
            release.wait(10)
            order.append("first commits")

    def second() -> None:
        holding.wait(10)
        engine.run_write(lambda conn: conn.execute(text("INSERT INTO t VALUES (2)")))
        order.append("second committed")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    holding.wait(10)
    # The second writer is blocked on the lock, not inside a transaction of its own.
    threads[1].join(0.3)
    assert threads[1].is_alive() and order == []
    release.set()
    for thread in threads:
        thread.join(10)
    assert order == ["first commits", "second committed"]
    with engine.read() as conn:
        assert conn.execute(text("SELECT n FROM t ORDER BY n")).scalars().all() == [1, 2]
    api.dispose()
    engine.dispose()


def test_a_writer_waiting_longer_than_the_busy_timeout_fails_as_sqlite_would(
    tmp_path: Path,
) -> None:
    holder, waiter = _make(tmp_path / "c.db"), _make(tmp_path / "c.db", lock_ms=50)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with holder.write() as conn:
            conn.execute(text("CREATE TABLE t (n INTEGER)"))
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait(10)
    with pytest.raises(OperationalError, match="database is locked"), waiter.write():
        pass
    release.set()
    thread.join(10)
    with waiter.write() as conn:  # free again
        conn.execute(text("INSERT INTO t VALUES (1)"))
    holder.dispose()
    waiter.dispose()
