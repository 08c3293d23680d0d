"""`Database.reads()`: reads without a transaction on PostgreSQL, a read transaction on
SQLite; the pooled connection is transactional again for the next `read()`."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import psycopg
import pytest
from sqlalchemy.exc import DBAPIError

from conveyor.store.database import POOLS, Database


def test_reads_run_outside_a_transaction_on_postgresql_only(db: Database) -> None:
    with db.reads() as conn:
        if db.is_sqlite:
            conn.exec_driver_sql("SAVEPOINT inside")  # a transaction is open
        else:
            # Each statement is its own transaction: there is none to set a savepoint in.
            with pytest.raises(DBAPIError, match="transaction blocks"):
                conn.exec_driver_sql("SAVEPOINT inside")
    # The same pooled connections serve read() as before: in a transaction.
    for _ in range(10):
        with db.read() as conn:
            conn.exec_driver_sql("SAVEPOINT inside")
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_pooled_connections_whose_server_process_ended_are_replaced(db: Database) -> None:
    """A restart of PostgreSQL, or `pg_terminate_backend`, ends every pooled connection's
    server process while the connections idle in the pool; the next checkout's ping
    (SQLAlchemy's pool_pre_ping) fails, the pool discards every connection it held and
    hands out new ones: no request meets a dead one."""
    with ExitStack() as held:  # fill the pool: eight connections at once
        conns = [held.enter_context(db.engine.connect()) for _ in range(8)]
        pids = {conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() for conn in conns}
    with psycopg.connect(db.url.replace("postgresql+psycopg://", "postgresql://")) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,))
    seen = set()
    for n in range(30):
        with db.reads() if n % 3 == 0 else db.read() if n % 3 == 1 else db.write() as conn:
            seen.add(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar())
    assert seen and not seen & pids


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_read_and_write_are_one_transaction_and_reads_are_not(db: Database) -> None:
    """PostgreSQL's now() is the start of the transaction: equal across the statements
    of read() and write() (Conveyor sends their BEGIN), apart in reads()."""

    def starts(connection: Any) -> set[Any]:
        seen = set()
        with connection() as conn:
            for _ in range(3):
                seen.add(conn.exec_driver_sql("SELECT now()").scalar())
                time.sleep(0.01)
        return seen

    assert len(starts(db.read)) == 1
    assert len(starts(db.write)) == 1
    assert len(starts(db.reads)) == 3
    with pytest.raises(RuntimeError), db.write() as conn:  # rolled back: nothing stays
        conn.exec_driver_sql("CREATE TABLE written_then_rolled_back (n int)")
        raise RuntimeError
    with db.read() as conn:
        found = conn.exec_driver_sql("SELECT to_regclass('written_then_rolled_back')")
        assert found.scalar() is None


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_pool_opens_at_most_its_share_of_connections_named_by_its_role(db: Database) -> None:
    """POOLS bounds each role's connections; pg_stat_activity shows them by role."""
    engine_db = Database(db.url, role="engine")
    most = 0
    lock = threading.Lock()

    def hold(_: int) -> None:
        nonlocal most
        with engine_db.read() as conn:
            open_now = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'conveyor engine'"
            ).scalar_one()
            time.sleep(0.02)
        with lock:
            most = max(most, open_now)

    try:
        with ThreadPoolExecutor(3 * POOLS["engine"]) as pool:
            list(pool.map(hold, range(6 * POOLS["engine"])))
    finally:
        engine_db.dispose()
    assert POOLS["engine"] // 2 < most <= POOLS["engine"]
