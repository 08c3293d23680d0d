"""`Database.reads()`: reads without a transaction on PostgreSQL, a read transaction on
SQLite; the pooled connection is transactional again for the next `read()`."""

from __future__ import annotations

import os
import resource
import socket
import time
from contextlib import ExitStack
from typing import Any

import psycopg
import pytest
from sqlalchemy.exc import DBAPIError

from conveyor.store.database import Database, socket_readable


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
    server process while the connections idle in the pool; the next checkouts see it on
    the socket and hand out new connections: no request meets a dead one."""
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


def test_socket_readable_sees_data_and_close_on_any_descriptor() -> None:
    """The liveness check's look at a socket, on descriptors select() would refuse too."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048 <= hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (2048, hard))
    ours, theirs = socket.socketpair()
    try:
        high = os.dup2(ours.fileno(), 1500) if max(soft, 2048) <= hard else ours.fileno()
        assert not socket_readable(high)  # idle: nothing to read
        theirs.sendall(b"x")
        assert socket_readable(high)
        ours.recv(1)
        assert not socket_readable(high)
        theirs.close()  # the other end went away: readable (end of file)
        assert socket_readable(high)
    finally:
        if high != ours.fileno():
            os.close(high)
        ours.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
